"""The REST contract: status codes, bodies, auth scoping and problem+json errors."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from memos.core import MemOS
from memos.memcube import keys


def _problem(response, status: int, detail_part: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["type"] == "about:blank" and body["title"]
    assert detail_part in body["detail"], body
    return body


def test_add_get_update_delete_round_trip(client: TestClient) -> None:
    r = client.post("/v1/memories", json={
        "text": "Carol manages the billing service.", "user_id": "carol",
        "category": "org", "tags": ["team"], "metadata": {"src": "slack"}, "ttl_s": 3600,
    })  # fmt: skip
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["created"] is True and created["version"] == 1
    assert created["expires_at"] is not None
    memory_id = created["id"]

    got = client.get(f"/v1/memories/{memory_id}").json()
    assert got["text"] == "Carol manages the billing service."
    assert got["tags"] == ["team"] and got["metadata"] == {"src": "slack"}

    patched = client.patch(f"/v1/memories/{memory_id}", json={"text": "Carol manages payments."})
    assert patched.status_code == 200 and patched.json()["version"] == 2

    history = client.get(f"/v1/memories/{memory_id}/history").json()
    assert [v["operation"] for v in history["versions"]] == ["create", "update"]
    assert history["versions"][0]["source"] == "api"
    assert history["versions"][0]["actor"].startswith("key:mk_")

    rolled = client.post(f"/v1/memories/{memory_id}/rollback", json={"version": 1})
    assert (
        rolled.status_code == 200 and rolled.json()["text"] == "Carol manages the billing service."
    )

    assert client.delete(f"/v1/memories/{memory_id}").status_code == 204
    _problem(client.get(f"/v1/memories/{memory_id}"), 404, "deleted")


def test_duplicate_add_answers_200_with_the_existing_id(client: TestClient) -> None:
    first = client.post("/v1/memories", json={"text": "same words"})
    again = client.post("/v1/memories", json={"text": "same words"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    forced = client.post("/v1/memories", json={"text": "same words", "dedupe": False})
    assert forced.status_code == 201 and forced.json()["id"] != first.json()["id"]


def test_batch_add_and_search_with_filters(client: TestClient) -> None:
    items = [
        {"text": "Dana is on call this week.", "user_id": "dana", "tags": ["oncall"]},
        {"text": "Erik is on call next week.", "user_id": "erik", "tags": ["oncall"]},
        {"text": "The cafeteria closes at 3pm.", "user_id": "dana"},
    ]
    r = client.post("/v1/memories/batch", json={"items": items})
    assert r.status_code == 201 and len(r.json()["ids"]) == 3
    hits = client.post("/v1/memories/search", json={
        "query": "who is on call", "top_k": 5, "filters": {"user_id": "dana", "tags": ["oncall"]},
    }).json()["results"]  # fmt: skip
    assert [h["text"] for h in hits] == ["Dana is on call this week."]
    assert 0 < hits[0]["score"] <= 1
    listed = client.get("/v1/memories", params={"user_id": "dana", "limit": 1}).json()
    assert len(listed["items"]) == 1 and listed["next_cursor"]
    rest = client.get("/v1/memories", params={"user_id": "dana", "cursor": listed["next_cursor"]})
    assert len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
    tagged = client.get("/v1/memories", params={"tag": ["oncall"]}).json()["items"]
    assert len(tagged) == 2


def test_namespaces_cannot_see_each_other(client: TestClient, other_client: TestClient) -> None:
    theirs = other_client.post("/v1/memories", json={"text": "Other tenant's secret plan."}).json()
    for response in (
        client.get(f"/v1/memories/{theirs['id']}"),
        client.get(f"/v1/memories/{theirs['id']}/history"),
        client.patch(f"/v1/memories/{theirs['id']}", json={"text": "x"}),
        client.delete(f"/v1/memories/{theirs['id']}"),
        client.post(f"/v1/memories/{theirs['id']}/rollback", json={"version": 1}),
    ):
        _problem(response, 404, "not found")
    assert client.post("/v1/memories/search", json={"query": "secret plan"}).json()["results"] == []
    assert client.get("/v1/memories").json()["items"] == []
    assert other_client.get(f"/v1/memories/{theirs['id']}").status_code == 200


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing Authorization"),
        ({"Authorization": "Basic abc"}, "Bearer"),
        ({"Authorization": "Bearer mk_not-a-real-key"}, "unknown or revoked"),
    ],
)
def test_requests_without_a_valid_key_get_401(
    client: TestClient, headers: dict, detail: str
) -> None:
    client.headers.pop("Authorization")
    r = client.get("/v1/memories", headers=headers)
    _problem(r, 401, detail)
    assert r.headers["www-authenticate"] == "Bearer"


def test_revoked_key_gets_401(memos: MemOS, client: TestClient, ns: str) -> None:
    with memos.db.unit_of_work() as session:
        info, secret = keys.create_key(session, ns)
        keys.revoke_key(session, info.id)
    _problem(
        client.get("/v1/memories", headers={"Authorization": f"Bearer {secret}"}), 401, "revoked"
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("post", "/v1/memories", {"text": ""}, 422, "text must not be empty"),
        ("post", "/v1/memories", {"text": 42}, 422, "Expected `str`"),
        ("post", "/v1/memories", {}, 422, "missing required field `text`"),
        ("post", "/v1/memories", {"text": "x", "colour": "red"}, 422, "unknown field `colour`"),
        ("post", "/v1/memories", {"text": "x", "ttl_s": -5}, 422, "ttl_s"),
        ("post", "/v1/memories", {"text": "x", "importance": "high"}, 422, "Expected `float`"),
        ("post", "/v1/memories", {"text": "x" * 40_000}, 413, "limit is"),
        ("post", "/v1/memories/batch", {"items": [{"text": "a"}, {"text": ""}]}, 422, "items[1].text"),
        ("post", "/v1/memories/search", {"query": ""}, 422, "query must not be empty"),
        ("post", "/v1/memories/search", {"query": "x", "top_k": 0}, 422, "top_k"),
        ("post", "/v1/memories/search", {"query": "x", "filters": {"kind": "video"}}, 422, "kind"),
        ("post", "/v1/memories/search", {"query": "x", "filters": {"colour": 1}}, 422, "colour"),
        ("post", "/v1/memories/search", {"query": "x", "filters": {"created_after": "yesterday"}},
         422, "datetime"),
        ("get", "/v1/memories?limit=0", None, 422, "limit"),
        ("get", "/v1/memories?limit=abc", None, 422, "limit"),
        ("get", "/v1/memories?created_after=2026-01-02T00:00:00Z&created_before=2026-01-01T00:00:00Z",
         None, 422, "earlier"),
        ("get", "/v1/memories/0190a000-0000-7000-8000-000000000000", None, 404, "not found"),
        ("patch", "/v1/memories/0190a000-0000-7000-8000-000000000000", {"text": "x"}, 404,
         "not found"),
        ("get", "/v1/nowhere", None, 404, ""),
    ],
)  # fmt: skip
def test_bad_requests_get_precise_problems(
    client: TestClient, method: str, path: str, body: dict | None, status: int, detail: str
) -> None:
    kwargs = {"json": body} if body is not None else {}
    _problem(getattr(client, method)(path, **kwargs), status, detail)


def test_bad_patch_and_rollback_bodies(client: TestClient) -> None:
    memory_id = client.post("/v1/memories", json={"text": "patch me"}).json()["id"]
    _problem(client.patch(f"/v1/memories/{memory_id}", json={"text": ""}), 422, "empty")
    _problem(client.patch(f"/v1/memories/{memory_id}", json={"importance": 7}), 422, "importance")
    _problem(
        client.post(f"/v1/memories/{memory_id}/rollback", json={"version": 5}), 404, "no version 5"
    )
    _problem(client.post(f"/v1/memories/{memory_id}/rollback", json={"version": "one"}), 422, "int")
    assert client.get(f"/v1/memories/{memory_id}").json()["version"] == 1


def test_oversized_body_gets_413(memos: MemOS, client: TestClient) -> None:
    huge = "x" * (memos.settings.max_request_bytes + 10)
    r = client.post("/v1/memories", content=huge, headers={"content-type": "application/json"})
    _problem(r, 413, "larger")


def test_health_ready_metrics_and_schema(client: TestClient) -> None:
    client.post("/v1/memories", json={"text": "count me"})
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    replica = ready.pop("replica", None)
    assert ready == {"status": "ready", "chat": "off"}
    if client.app.state.memos.follower is None:  # SQLite: one process, no change feed
        assert replica is None
    else:  # PostgreSQL: where this replica is in the change feed
        assert replica["applied_seq"] >= 0 and isinstance(replica["listening"], bool)
    metrics = client.get("/metrics").text
    assert "memos_index_vectors " in metrics and "memos_requests_total" in metrics
    assert "namespace=" not in metrics  # tenant names stay out of unauthenticated output
    schema = client.get("/schema/openapi.json").json()
    assert "/v1/memories/search" in schema["paths"]
    # without a language model the chat routes are neither served nor documented
    assert "/v1/chat/completions" not in schema["paths"]
    assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 404
