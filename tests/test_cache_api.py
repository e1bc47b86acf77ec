"""/v1/cache over HTTP: store, look up, invalidate, stats and policy, each scoped to the
key's namespace, and bad input answered with a precise 4xx problem+json."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

MEMORY_ID = "0192f0c4-5b6e-7a8b-9c0d-1e2f3a4b5c6d"  # an id in the form the store writes


def test_store_lookup_and_invalidate(client: TestClient, other_client: TestClient) -> None:
    r = client.post("/v1/cache", json={"query": "How do I reset my password?",
                                       "response": "Use the reset link.", "model": "smol",
                                       "memory_ids": [MEMORY_ID], "ttl_s": 600})  # fmt: skip
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored["category"] == "general" and stored["evicted"] == []

    hit = client.post("/v1/cache/lookup", json={"query": "How can I reset my password?"}).json()
    assert hit["hit"] is True and hit["entry"]["id"] == stored["id"]
    assert hit["entry"]["response"] == "Use the reset link." and hit["entry"]["hits"] == 1
    assert hit["similarity"] >= hit["threshold"]
    miss = client.post("/v1/cache/lookup", json={"query": "Is the museum open today?"}).json()
    assert miss["hit"] is False and miss["entry"] is None

    theirs = other_client.post("/v1/cache/lookup", json={"query": "How do I reset my password?"})
    assert theirs.json()["hit"] is False  # never across namespaces
    assert other_client.get(f"/v1/cache/entries/{stored['id']}").status_code == 404
    assert other_client.delete(f"/v1/cache/entries/{stored['id']}").status_code == 404

    stats = client.get("/v1/cache/stats").json()
    assert stats["hits"] == 1 and stats["misses"] == 1
    assert stats["categories"]["general"]["lookup_p99_ms"] is not None
    assert other_client.get("/v1/cache/stats").json()["hits"] == 0

    assert client.delete(f"/v1/cache/entries/{stored['id']}").status_code == 204
    assert client.get(f"/v1/cache/entries/{stored['id']}").status_code == 404
    client.post("/v1/cache", json={"query": "q1 about invoices", "response": "a"})
    client.post("/v1/cache", json={"query": "q2 about refunds", "response": "b"})
    assert client.delete("/v1/cache/categories/general").json() == {"deleted": 2}
    client.post("/v1/cache", json={"query": "q3 about shipping", "response": "c"})
    assert client.delete("/v1/cache").json() == {"deleted": 1}


def test_policy_is_readable(client: TestClient) -> None:
    policy = client.get("/v1/cache/policy").json()
    general = policy["categories"]["general"]
    assert general["threshold"] == 0.95 and general["eviction"] == "lru"
    assert general["effective_threshold"] == 0.95 and policy["load"]["pressure"] == 0.0


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("post", "/v1/cache/lookup", {"query": ""}, 422, "query must be a non-empty string"),
        ("post", "/v1/cache/lookup", {"query": "x", "category": "nope"}, 422,
         "unknown cache category 'nope'"),
        ("post", "/v1/cache", {"query": "q", "response": "a", "ttl_s": -5}, 422, "ttl_s: Expected `float` > 0.0"),
        ("post", "/v1/cache", {"query": "q", "response": "a" * 70_000}, 413,
         "response has 70000 characters; the limit is 65536"),
        ("post", "/v1/cache", {"query": "q"}, 422, "response"),
        ("post", "/v1/cache", {"query": "q", "response": "a", "colour": 1}, 422, "colour"),
        ("delete", "/v1/cache/categories/nope", None, 404, "unknown cache category"),
        ("delete", "/v1/cache/entries/not-an-entry", None, 404, "not found"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_precise_4xx(
    client: TestClient, method: str, path: str, body, status: int, detail: str
) -> None:
    r = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert detail in r.json()["detail"], r.json()
    assert client.delete("/v1/cache").json() == {"deleted": 0}  # nothing was stored


def test_cache_needs_a_key(client: TestClient) -> None:
    r = client.post("/v1/cache/lookup", json={"query": "x"}, headers={"Authorization": ""})
    assert r.status_code == 401
