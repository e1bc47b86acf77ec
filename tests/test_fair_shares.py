"""Background work in fair shares: training jobs run namespaces in turn, a namespace has
a bounded share of the queue (429 naming the bound) and a job a bounded cost (422); a
scheduler pass a namespace asked for answers everyone who asks while it runs, and a
namespace may start one a second (429)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from litestar.testing import TestClient

from memos.config import Settings
from memos.core import MemOS
from memos.embeddings import Embedder
from memos.fair_queue import FairQueue
from memos.server.app import create_app
from tests.conftest import MODEL_CACHE, api_key
from tests.test_parametric_api import QUICK, add_facts, wait


def test_namespaces_take_turns() -> None:
    queue = FairQueue("test")
    ran: list[str] = []
    gate = threading.Event()
    done = threading.Event()

    def work(label: str) -> None:
        if label == "a0":
            gate.wait(10)
        ran.append(label)
        if len(ran) == 9:
            done.set()

    for n in range(6):
        queue.submit("a", lambda n=n: work(f"a{n}"))
    while queue.waiting("a") == 6:  # a0 is taken and waits at the gate
        time.sleep(0.01)
    queue.submit("b", lambda: work("b0"))
    queue.submit("c", lambda: work("c0"))
    queue.submit("b", lambda: work("b1"))
    gate.set()
    assert done.wait(10)
    queue.close()
    assert ran == ["a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4", "a5"]
    queue.submit("a", lambda: ran.append("again"))  # a closed queue starts again
    queue.close()
    assert ran[-1] == "again"


@pytest.fixture
def shared(tmp_path: Path, embedder: Embedder, chat_model_dir: Path, sqlite_url: str,
           ns: str, other_ns: str) -> Iterator[tuple[TestClient, TestClient, MemOS]]:  # fmt: skip
    settings = Settings(data_dir=tmp_path / "data", database_url=sqlite_url,
                        model_dir_override=MODEL_CACHE, jobs_per_namespace=2,
                        max_job_tokens=1_000_000)  # fmt: skip
    memos = MemOS(settings, embedder=embedder)
    try:
        with TestClient(create_app(memos, background_jobs=False)) as first, \
                TestClient(first.app) as second:  # fmt: skip
            first.headers["Authorization"] = f"Bearer {api_key(memos, ns)}"
            second.headers["Authorization"] = f"Bearer {api_key(memos, other_ns)}"
            yield first, second, memos
    finally:
        memos.close()


def test_training_jobs_have_fair_shares(shared: tuple[TestClient, TestClient, MemOS]) -> None:
    mine, theirs, _ = shared
    ids = [m["id"] for m in add_facts(mine)]
    their_ids = [m["id"] for m in add_facts(theirs)]
    expensive = mine.post("/v1/parametric", json={"name": "big", "memory_ids": ids,
                                                 **{**QUICK, "steps": 2000, "batch_size": 64,
                                                    "max_tokens": 512}})  # fmt: skip
    assert expensive.status_code == 422 and "MEMOS_MAX_JOB_TOKENS" in expensive.json()["detail"]
    long = mine.post("/v1/parametric", json={"name": "long", "memory_ids": ids,
                                            **{**QUICK, "steps": 2000}}).json()  # fmt: skip
    while mine.get(f"/v1/jobs/{long['id']}").json()["state"] == "queued":
        time.sleep(0.05)
    second = mine.post("/v1/parametric", json={"name": "second", "memory_ids": ids, **QUICK})
    assert second.status_code == 202
    third = mine.post("/v1/parametric", json={"name": "third", "memory_ids": ids, **QUICK})
    assert third.status_code == 429 and third.headers["Retry-After"] == "30"
    assert "MEMOS_JOBS_PER_NAMESPACE" in third.json()["detail"]
    # another namespace queues behind the running job, but ahead of this one's next
    other = theirs.post("/v1/parametric", json={"name": "theirs", "memory_ids": their_ids,
                                               **QUICK})  # fmt: skip
    assert other.status_code == 202
    assert mine.post(f"/v1/jobs/{long['id']}/cancel").status_code == 202
    while theirs.get(f"/v1/jobs/{other.json()['id']}").json()["state"] == "queued":
        time.sleep(0.05)
    assert mine.get(f"/v1/jobs/{second.json()['id']}").json()["state"] == "queued"
    for client, job in ((theirs, other), (mine, second)):
        assert client.post(f"/v1/jobs/{job.json()['id']}/cancel").status_code == 202
        assert wait(client, job.json()["id"])["state"] == "cancelled"
    assert wait(mine, long["id"])["state"] == "cancelled"


def test_scheduler_passes_asked_for_are_shared_and_bounded(
    shared: tuple[TestClient, TestClient, MemOS],
) -> None:
    mine, theirs, _ = shared
    scheduler = mine.app.state.kernel.scheduler
    before = scheduler.passes
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: mine.post("/v1/scheduler/run"), range(10)))
    assert [a.status_code for a in answers].count(200) >= 1
    refused = [a for a in answers if a.status_code != 200]
    assert all(a.status_code == 429 for a in refused)
    # every caller that got a 200 shared a pass: far fewer passes than callers
    assert scheduler.passes - before <= 2
    again = mine.post("/v1/scheduler/run")
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 1
    assert "MEMOS_SCHEDULER_RUN_MIN_INTERVAL_S" in again.json()["detail"]
    assert theirs.post("/v1/scheduler/run").status_code == 200  # another namespace's own
