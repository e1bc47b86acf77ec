"""Idempotency keys on SQLite and PostgreSQL: a retried add with the same key stores
once and gets the first answer again; the same key with another request is refused;
keys are per namespace and expire."""

from __future__ import annotations

from litestar.testing import TestClient

from memos.core import MemOS


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
