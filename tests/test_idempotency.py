"""Idempotency keys on SQLite and PostgreSQL: a retried add with the same key stores
once and gets the first answer again; the same key with another request is refused;
keys are per namespace and expire."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from litestar.testing import TestClient

from memos.config import Settings
from memos.core import MemOS
from memos.embeddings import Embedder
from memos.server.app import create_app


def test_a_retried_add_stores_once(client: TestClient) -> None:
    body = {"text": "The release train leaves at 16:00.", "dedupe": False}
    headers = {"Idempotency-Key": "add-7f3a"}
    first = client.post("/v1/memories", json=body, headers=headers)
    again = client.post("/v1/memories", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(client.get("/v1/memories").json()["items"]) == 1  # dedupe off: still one
    # without a key, the same add (dedupe off) is a second memory
    assert client.post("/v1/memories", json=body).json()["id"] != first.json()["id"]


def test_a_retried_batch_stores_once(client: TestClient) -> None:
    body = {"items": [{"text": "one"}, {"text": "two"}], "dedupe": False}
    headers = {"Idempotency-Key": "batch-1"}
    first = client.post("/v1/memories/batch", json=body, headers=headers).json()
    again = client.post("/v1/memories/batch", json=body, headers=headers).json()
    assert first == again and len(client.get("/v1/memories").json()["items"]) == 2


def test_a_key_reused_with_another_request_is_refused(client: TestClient) -> None:
    headers = {"Idempotency-Key": "k1"}
    assert client.post("/v1/memories", json={"text": "a"}, headers=headers).status_code == 201
    other = client.post("/v1/memories", json={"text": "b"}, headers=headers)
    assert other.status_code == 422 and "different request" in other.json()["detail"]
    bad = client.post("/v1/memories", json={"text": "c"}, headers={"Idempotency-Key": "has space"})
    assert bad.status_code == 422 and "Idempotency-Key" in bad.json()["detail"]
    odd = client.post("/v1/memories", json={"text": "d"}, headers={"X-Memos-Source": "me"})
    assert odd.status_code == 422 and "X-Memos-Source" in odd.json()["detail"]
    made = client.post("/v1/memories", json={"text": "e"}, headers={"X-Memos-Source": "agent"})
    history = client.get(f"/v1/memories/{made.json()['id']}/history").json()["versions"]
    assert history[0]["source"] == "agent"


def test_keys_are_per_namespace_and_expire(
    client: TestClient, other_client: TestClient, memos: MemOS
) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    mine = client.post("/v1/memories", json={"text": "mine"}, headers=headers).json()
    theirs = other_client.post("/v1/memories", json={"text": "mine"}, headers=headers).json()
    assert mine["id"] != theirs["id"]  # another tenant's key is not ours
    keys = client.app.state.kernel.idempotency
    keys.ttl_s = 0.0
    assert keys.forget_expired() >= 2
    keys.ttl_s = 3600.0
    # forgotten: the same key with another request is a new write now
    later = client.post("/v1/memories", json={"text": "later"}, headers=headers)
    assert later.status_code == 201 and later.json()["id"] != mine["id"]


def test_concurrent_retries_store_once_on_every_replica(
    client: TestClient, memos: MemOS, settings: Settings, embedder: Embedder
) -> None:
    """Eight retries at once, half on a second process's app over the same database: one
    claims the key and writes, the others wait and replay its answer."""
    replica = MemOS(settings, embedder=embedder)
    try:
        with TestClient(create_app(replica, background_jobs=False)) as second:
            second.headers["Authorization"] = client.headers["Authorization"]
            for trial in range(3):
                body = {"text": f"Deploys freeze on Fridays ({trial}).", "dedupe": False}
                headers = {"Idempotency-Key": f"race-{trial}"}
                with ThreadPoolExecutor(8) as pool:
                    answers = list(pool.map(
                        lambda n, body=body, headers=headers: (client, second)[n % 2].post(
                            "/v1/memories", json=body, headers=headers),
                        range(8),
                    ))  # fmt: skip
                assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
                assert len({a.json()["id"] for a in answers}) == 1
                assert sum("Idempotent-Replayed" in a.headers for a in answers) == 7
            # eight different bodies under one key: one is stored, the others refused
            headers = {"Idempotency-Key": "race-bodies"}
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(
                    lambda n: (client, second)[n % 2].post(
                        "/v1/memories", json={"text": f"body {n}", "dedupe": False},
                        headers=headers),
                    range(8),
                ))  # fmt: skip
            assert sorted(a.status_code for a in answers) == [201] + [422] * 7
        texts = [m["text"] for m in client.get("/v1/memories").json()["items"]]
        assert len(texts) == 4 and sum(t.startswith("body ") for t in texts) == 1
    finally:
        replica.close()


def test_a_failed_write_releases_its_key(client: TestClient, ns: str) -> None:
    headers = {"Idempotency-Key": "fails-first"}
    too_long = {"items": [{"text": "x" * 10}] * 10_000}
    assert client.post("/v1/memories/batch", json=too_long, headers=headers).status_code == 413
    later = client.post("/v1/memories/batch", json=too_long, headers=headers)
    assert later.status_code == 413 and "Idempotent-Replayed" not in later.headers
    keys = client.app.state.kernel.idempotency
    assert keys.claim(ns, "fails-first", "another") is None  # free to claim again
