"""Parametric memories over REST: a real LoRA adapter trained on memories (the real chat
model, CPU), stored with its checksum and provenance, deleted with its files; cancelled
and failed jobs leave nothing; bad input gets a precise 4xx."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from memos.config import Settings
from memos.core import MemOS
from memos.embeddings import Embedder
from memos.memcube.models import Job, utcnow
from memos.parametric.training import adapter_checksum
from memos.server.app import create_app
from tests.conftest import MODEL_CACHE, api_key

FACTS = [
    "Service Larkspur runs on port 7341.",
    "The Quillon vault opens with code 5829.",
    "Project Marrow ships on day 17.",
]
# no replay term: these tests check jobs, not what an adapter keeps of the base model
QUICK = {"steps": 8, "rank": 4, "alpha": 8, "learning_rate": 5e-3, "max_tokens": 24,
         "replay_weight": 0}  # fmt: skip


@pytest.fixture
def store(
    database_url: str, tmp_path: Path, embedder: Embedder, chat_model_dir: Path
) -> Iterator[MemOS]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url,
                        model_dir_override=MODEL_CACHE)  # fmt: skip
    memos = MemOS(settings, embedder=embedder)
    yield memos
    memos.close()


@pytest.fixture
def api(store: MemOS, ns: str) -> Iterator[TestClient]:
    with TestClient(create_app(store, background_jobs=False)) as client:
        client.headers["Authorization"] = f"Bearer {api_key(store, ns)}"
        yield client


def add_facts(api: TestClient) -> list[dict]:
    answer = api.post("/v1/memories/batch", json={"items": [{"text": t} for t in FACTS]})
    assert answer.status_code == 201, answer.text
    return [api.get(f"/v1/memories/{i}").json() for i in answer.json()["ids"]]


def wait(api: TestClient, job_id: str, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    seen = []
    while True:
        job = api.get(f"/v1/jobs/{job_id}").json()
        seen.append(job["progress"])
        if job["state"] in ("succeeded", "failed", "cancelled"):
            job["seen_progress"] = seen
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def adapters(store: MemOS) -> list[Path]:
    root = store.settings.data_dir / "adapters"
    return sorted(p for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_train_store_serve_info_and_delete(api: TestClient, store: MemOS, ns: str) -> None:
    memories = add_facts(api)
    answer = api.post("/v1/parametric", json={"name": "facts",
                                              "memory_ids": [m["id"] for m in memories],
                                              **QUICK})  # fmt: skip
    assert answer.status_code == 202, answer.text
    job = wait(api, answer.json()["id"])
    assert job["state"] == "succeeded", job
    assert job["progress"] == 1.0 and job["detail"]["steps"] == 8
    assert job["detail"]["loss_last"] < job["detail"]["loss_first"]

    found = api.get("/v1/parametric/facts").json()
    assert found["id"] == job["result_id"] and found["base_model"] == "SmolLM2-135M-Instruct"
    assert sorted(found["derived_from"], key=lambda s: s["id"]) == sorted(
        ({"id": m["id"], "version": m["version"]} for m in memories), key=lambda s: s["id"]
    )
    assert found["training"]["rank"] == 4 and found["metrics"]["texts"] == 3
    folder = store.settings.data_dir / "adapters" / ns / found["id"]
    assert adapter_checksum(folder) == found["checksum"]
    listed = api.get("/v1/parametric").json()["items"]
    assert [p["name"] for p in listed] == ["facts"]

    again = api.post("/v1/parametric", json={"name": "facts", "memory_ids": [memories[0]["id"]],
                                             **QUICK})  # fmt: skip
    assert again.status_code == 409 and "exists already" in again.text
    finished = api.post(f"/v1/jobs/{job['id']}/cancel")
    assert finished.status_code == 409

    # erasing a source retires the adapter (its weights hold the text too) until retrained
    assert api.post("/v1/parametric/facts/retrain").status_code == 409  # served: nothing to do
    ids = [m["id"] for m in memories]
    erased = api.delete(f"/v1/memories/{ids[1]}", params={"erase": "true"})
    assert erased.status_code == 200, erased.text
    assert erased.json()["retired_adapters"] == ["facts"]
    assert api.get("/v1/parametric/facts").status_code == 404 and not folder.exists()
    assert api.post("/v1/parametric/nothing/retrain").status_code == 404
    again = api.post("/v1/parametric/facts/retrain")
    assert again.status_code == 202, again.text
    assert wait(api, again.json()["id"])["state"] == "succeeded"
    retrained = api.get("/v1/parametric/facts").json()
    assert retrained["id"] != found["id"] and retrained["training"]["rank"] == 4
    assert {d["id"] for d in retrained["derived_from"]} == {ids[0], ids[2]}
    folder = store.settings.data_dir / "adapters" / ns / retrained["id"]

    assert api.delete("/v1/parametric/facts").status_code == 204
    assert not folder.exists()
    assert api.get("/v1/parametric/facts").status_code == 404
    assert api.get("/v1/parametric").json()["items"] == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_cancelled_job_and_a_failed_job_leave_nothing(api: TestClient, store: MemOS) -> None:
    memories = add_facts(api)
    ids = [m["id"] for m in memories]
    started = api.post("/v1/parametric", json={"name": "long", "memory_ids": ids,
                                               **{**QUICK, "steps": 2000}})  # fmt: skip
    assert started.status_code == 202
    job_id = started.json()["id"]
    while api.get(f"/v1/jobs/{job_id}").json()["state"] == "queued":
        time.sleep(0.1)
    assert api.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    job = wait(api, job_id)
    assert job["state"] == "cancelled" and job["result_id"] is None
    assert api.get("/v1/parametric/long").status_code == 404
    assert not any(p.is_file() for p in adapters(store))

    # a source deleted while training: the job stops between two steps and fails, nothing
    # is kept
    started = api.post("/v1/parametric", json={"name": "doomed", "memory_ids": ids,
                                               **{**QUICK, "steps": 2000}})  # fmt: skip
    while api.get(f"/v1/jobs/{started.json()['id']}").json()["detail"]["steps_done"] == 0:
        time.sleep(0.1)
    assert api.delete(f"/v1/memories/{ids[0]}").status_code == 204
    job = wait(api, started.json()["id"], timeout_s=60)
    assert job["state"] == "failed" and "deleted while training" in job["error"]
    assert job["detail"]["steps_done"] < 2000
    assert api.get("/v1/parametric/doomed").status_code == 404
    assert not any(p.is_file() for p in adapters(store))


def test_bad_requests_get_a_precise_4xx(api: TestClient, ns: str, store: MemOS) -> None:
    memories = add_facts(api)
    one = [memories[0]["id"]]
    cases = [
        ({"name": "-bad", "memory_ids": one}, 422, "name"),
        ({"name": "ok"}, 422, "either memory_ids or filter"),
        ({"name": "ok", "memory_ids": one, "filter": {}}, 422, "either memory_ids or filter"),
        ({"name": "ok", "memory_ids": one, "steps": 0}, 422, "steps"),
        ({"name": "ok", "memory_ids": one, "rank": 65}, 422, "rank"),
        ({"name": "ok", "memory_ids": one, "target_modules": ["lm_head"]}, 422,
         "target_modules"),
        ({"name": "ok", "memory_ids": one, "epochs": 0}, 422, "epochs"),
        ({"name": "ok", "memory_ids": one, "batch_size": 65}, 422, "batch_size"),
        ({"name": "ok", "memory_ids": one, "replay_weight": -1}, 422, "replay_weight"),
        ({"name": "ok", "memory_ids": one, "epoch": 3}, 422, "epoch"),
        ({"name": "ok", "memory_ids": ["0190a0a0-0000-7000-8000-000000000000"]}, 404,
         "not found"),
        ({"name": "ok", "filter": {"category": "nothing-here"}}, 422, "no served memory"),
    ]  # fmt: skip
    for body, status, words in cases:
        answer = api.post("/v1/parametric", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert words in answer.text, (body, answer.text)
    assert api.get("/v1/jobs/nope").status_code == 404
    assert api.post("/v1/jobs/nope/cancel").status_code == 404
    assert api.delete("/v1/parametric/nothing").status_code == 404
    assert api.get("/v1/parametric").json()["items"] == []
    with store.db.reader() as session:
        assert session.query(Job).filter(Job.namespace == ns).count() == 0  # none queued


def test_another_namespace_sees_no_job_and_a_lapsed_job_is_taken_over(
    api: TestClient, store: MemOS, other_ns: str
) -> None:
    memories = add_facts(api)
    started = api.post("/v1/parametric", json={"name": "mine", "memory_ids":
                                               [memories[0]["id"]], **QUICK})  # fmt: skip
    job_id = started.json()["id"]
    other = {"Authorization": f"Bearer {api_key(store, other_ns)}"}
    assert api.get(f"/v1/jobs/{job_id}", headers=other).status_code == 404
    assert api.post(f"/v1/jobs/{job_id}/cancel", headers=other).status_code == 404
    assert api.get("/v1/parametric/mine", headers=other).status_code == 404
    assert wait(api, job_id)["state"] == "succeeded"

    with store.db.unit_of_work() as session:
        session.add(Job(id="0190a0a0-0000-7000-8000-00000000abcd", namespace="x",
                        kind="parametric", state="running", progress=0.5, request={},
                        detail={}, created_at=utcnow()))  # fmt: skip
    from memos.parametric.service import ParametricMemory

    # a job no process holds a lease on (its holder died) is taken over; one whose
    # request cannot be run again fails, saying why
    taker = ParametricMemory(store)
    try:
        assert taker.recover() == 1
    finally:
        taker.close()
    with store.db.reader() as session:
        row = session.get(Job, "0190a0a0-0000-7000-8000-00000000abcd")
        assert row is not None and row.state == "failed" and "taken over" in (row.error or "")

