"""Regressions from the hostile-user review (issue 14): every input below once reached a
500, a silent coercion or an open door; each now gets a precise 4xx or is closed."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from memos.core import MemOS
from memos.validation import MAX_INT32
from tests.conftest import api_key


def _problem(response, status: int, detail_part: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert detail_part in body["detail"], body
    return body


def _nested(levels: int) -> dict:
    """Objects nested ``levels`` deep (``{}`` is one level)."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _memory(client: TestClient, **fields) -> dict:
    r = client.post("/v1/memories", json={"text": "a memory to poke at", **fields})
    assert r.status_code == 201, r.text
    return r.json()


# 2. deeply nested JSON --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/v1/memories"),
        ("post", "/v1/memories/batch"),
        ("post", "/v1/memories/search"),
        ("post", "/v1/cache"),
        ("post", "/v1/cache/lookup"),
        ("post", "/v1/keys"),
    ],
)
def test_json_nested_5000_levels_is_a_422_on_every_json_route(
    client: TestClient, method: str, path: str
) -> None:
    body = '{"metadata": ' + "[" * 5000 + "]" * 5000 + "}"
    r = getattr(client, method)(path, content=body, headers={"content-type": "application/json"})
    _problem(r, 422, "nests deeper than")


def test_nested_bodies_on_id_routes_are_a_422(client: TestClient) -> None:
    memory_id = _memory(client)["id"]
    deep = "[" * 5000 + "]" * 5000
    headers = {"content-type": "application/json"}
    for method, path in (("patch", ""), ("post", "/rollback")):
        r = getattr(client, method)(
            f"/v1/memories/{memory_id}{path}", content=deep, headers=headers
        )
        _problem(r, 422, "nests deeper than")


def test_metadata_depth_is_bounded(client: TestClient) -> None:
    assert (
        client.post("/v1/memories", json={"text": "ok", "metadata": _nested(16)}).status_code == 201
    )
    _problem(
        client.post("/v1/memories", json={"text": "deep", "metadata": _nested(17)}),
        422,
        "metadata is nested more than 16 levels",
    )


# 3. date-times without a time zone ----------------------------------------------------


@pytest.mark.parametrize("field", ["valid_from", "valid_to"])
def test_naive_validity_is_a_422(client: TestClient, field: str) -> None:
    r = client.post("/v1/memories", json={"text": "when?", field: "2026-03-01T09:00:00"})
    _problem(r, 422, field)
    memory_id = _memory(client)["id"]
    r = client.patch(f"/v1/memories/{memory_id}", json={"valid_to": "2026-03-01T09:00:00"})
    _problem(r, 422, "valid_to")


def test_naive_validity_through_python_is_refused(memos: MemOS, ns: str) -> None:
    from datetime import datetime

    from memos.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="valid_from needs a time zone"):
        memos.add("x", namespace=ns, valid_from=datetime(2026, 3, 1))
    assert memos.list(namespace=ns).items == []


# 4. many tags -------------------------------------------------------------------------


def test_a_thousand_filter_tags_are_a_422(client: TestClient) -> None:
    tags = [f"t{i}" for i in range(1000)]
    r = client.post("/v1/memories/search", json={"query": "x", "filters": {"tags": tags}})
    _problem(r, 422, "tags")
    r = client.get("/v1/memories", params=[("tag", t) for t in tags])
    _problem(r, 422, "tag")


def test_the_most_filter_tags_allowed_work(client: TestClient) -> None:
    tags = [f"tag-{i}" for i in range(64)]
    memory = _memory(client, tags=tags)
    listed = client.get("/v1/memories", params=[("tag", t) for t in tags])
    assert listed.status_code == 200 and [m["id"] for m in listed.json()["items"]] == [memory["id"]]
    found = client.post("/v1/memories/search", json={"query": "poke", "filters": {"tags": tags}})
    assert found.status_code == 200 and [m["id"] for m in found.json()["results"]] == [memory["id"]]
    fewer = client.get("/v1/memories", params=[("tag", "tag-3"), ("tag", "tag-63")])
    assert [m["id"] for m in fewer.json()["items"]] == [memory["id"]]
    other = client.get("/v1/memories", params=[("tag", "tag-3"), ("tag", "absent")])
    assert other.json()["items"] == []


# 5. integers beyond what the store holds ---------------------------------------------


@pytest.mark.parametrize("version", [2**63, MAX_INT32 + 1, 0, -1])
def test_rollback_to_an_impossible_version_is_a_422(client: TestClient, version: int) -> None:
    memory_id = _memory(client)["id"]
    _problem(
        client.post(f"/v1/memories/{memory_id}/rollback", json={"version": version}), 422, "version"
    )


def test_rollback_to_the_largest_version_is_a_404(client: TestClient) -> None:
    memory_id = _memory(client)["id"]
    r = client.post(f"/v1/memories/{memory_id}/rollback", json={"version": MAX_INT32})
    _problem(r, 404, f"no version {MAX_INT32}")


# 7. keys on every route but the health checks ------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/cache/policy"),
        ("get", "/v1/cache/stats"),
        ("get", "/v1/memories"),
        ("get", "/v1/keys"),
        ("post", "/v1/memories/search"),
        ("delete", "/v1/keys/k"),
    ],
)
def test_every_route_but_health_needs_a_key(client: TestClient, method: str, path: str) -> None:
    r = getattr(client, method)(path, headers={"Authorization": ""})
    _problem(r, 401, "Authorization")
    r = getattr(client, method)(path, headers={"Authorization": "Bearer mk_not-a-key"})
    _problem(r, 401, "unknown or revoked")


def test_a_request_without_a_key_learns_nothing_about_its_body(client: TestClient) -> None:
    r = client.post("/v1/memories", json={"top_k": "bad"}, headers={"Authorization": ""})
    _problem(r, 401, "Authorization")


# 8. metrics --------------------------------------------------------------------------


def test_metrics_name_no_tenant(client: TestClient, ns: str) -> None:
    _memory(client)
    metrics = client.get("/metrics", headers={"Authorization": ""}).text
    assert ns not in metrics and "memos_index_vectors " in metrics


def test_metrics_token_protects_metrics(memos: MemOS) -> None:
    from dataclasses import replace

    from memos.server.app import create_app

    memos.settings = replace(memos.settings, metrics_token="s3cret-scrape")
    with TestClient(create_app(memos, background_jobs=False)) as client:
        _problem(client.get("/metrics"), 401, "Authorization")
        _problem(client.get("/metrics", headers={"Authorization": "Bearer nope"}), 401, "metrics")
        ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert ok.status_code == 200 and "memos_index_vectors" in ok.text
        assert client.get("/healthz").status_code == 200


# 6, 11. strict types -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/memories/search", {"query": "x", "top_k": "5"}, "top_k"),
        ("/v1/memories", {"text": "x", "dedupe": 0}, "dedupe"),
        ("/v1/memories", {"text": "x", "valid_from": 123}, "valid_from"),
        ("/v1/memories", {"text": "x", "importance": "0.5"}, "importance"),
        ("/v1/memories", {"text": "x", "tags": "one"}, "tags"),
        ("/v1/memories/batch", {"items": [{"text": "x", "ttl_s": "10"}]}, "items[0].ttl_s"),
        ("/v1/cache", {"query": "q", "response": "a", "ttl_s": "60"}, "ttl_s"),
        (
            "/v1/memories/search",
            {"query": "x", "filters": {"created_after": 0.5}},
            "filters.created_after",
        ),
    ],
)
def test_loose_body_types_are_a_422(client: TestClient, path: str, body: dict, field: str) -> None:
    body = _problem(client.post(path, json=body), 422, field)
    assert body["errors"][0]["key"] == field


def test_rollback_version_as_a_string_is_a_422(client: TestClient) -> None:
    memory_id = _memory(client)["id"]
    _problem(
        client.post(f"/v1/memories/{memory_id}/rollback", json={"version": "1"}), 422, "version"
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=1e3", "limit"),
        ("limit=5.0", "limit"),
        ("limit=%205", "limit"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("created_before=0.5", "created_before"),
        ("created_after=2026-03-01T09:00:00", "created_after"),
        ("colour=red", "colour"),
        ("limit=5&limit=6", "limit"),
    ],
)
def test_loose_query_values_are_a_422(client: TestClient, query: str, field: str) -> None:
    _problem(client.get(f"/v1/memories?{query}"), 422, field)


def test_strict_query_values_still_work(client: TestClient) -> None:
    _memory(client, user_id="u1", tags=["a"])
    r = client.get("/v1/memories?limit=5&user_id=u1&tag=a&created_after=2020-01-01T00:00:00Z")
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    memory_id = _memory(client)["id"]
    erased = client.delete(f"/v1/memories/{memory_id}?erase=true")
    assert erased.status_code == 200 and erased.json()["erased"] == [memory_id]
    _problem(
        client.delete(f"/v1/memories/{_memory(client, text='other')['id']}?erase=1"), 422, "erase"
    )


# 12. cursors -------------------------------------------------------------------------


@pytest.mark.parametrize("cursor", ["junk", "' OR 1=1--", "0192F0C4-5B6E-7A8B-9C0D-1E2F3A4B5C6D"])
def test_a_cursor_that_does_not_decode_is_a_422(client: TestClient, cursor: str) -> None:
    _problem(client.get("/v1/memories", params={"cursor": cursor}), 422, "cursor")


def test_cursors_page_through_everything(client: TestClient) -> None:
    ids = {_memory(client, text=f"page item {i}")["id"] for i in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/memories", params=params).json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert set(seen) == ids and len(seen) == 5


# 13. unbounded strings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": "q", "response": "a", "model": "m" * 100_000}, "model"),
        ({"query": "q", "response": "a", "memory_ids": ["../../x"]}, "memory_ids[0]"),
        ({"query": "q", "response": "a", "category": "c" * 1000}, "category"),
    ],
)
def test_cache_strings_are_bounded(client: TestClient, body: dict, field: str) -> None:
    _problem(client.post("/v1/cache", json=body), 422, field)
    assert client.delete("/v1/cache").json() == {"deleted": 0}


def test_cache_kernel_refuses_what_the_schema_refuses(memos: MemOS, ns: str) -> None:
    from memos.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="model"):
        memos.cache.store(ns, "q", "a", model="m" * 100_000)
    with pytest.raises(InvalidInputError, match="not a memory id"):
        memos.cache.store(ns, "q", "a", memory_ids=["../../x"])


# 14. revocation ----------------------------------------------------------------------


def test_a_key_revoked_over_the_api_stops_at_once(
    client: TestClient, memos: MemOS, ns: str
) -> None:
    made = client.post("/v1/keys", json={"label": "ci"})
    assert made.status_code == 201, made.text
    secret, key_id = made.json()["key"], made.json()["id"]
    second = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/memories", headers=second).status_code == 200  # now remembered
    listed = client.get("/v1/keys").json()["keys"]
    assert key_id in [k["id"] for k in listed] and all("key" not in k for k in listed)
    assert client.delete(f"/v1/keys/{key_id}").status_code == 204
    _problem(client.get("/v1/memories", headers=second), 401, "revoked")


def test_keys_of_another_namespace_are_not_found(
    client: TestClient, other_client: TestClient
) -> None:
    theirs = other_client.post("/v1/keys", json={}).json()
    _problem(client.delete(f"/v1/keys/{theirs['id']}"), 404, "not found")
    assert theirs["id"] not in [k["id"] for k in client.get("/v1/keys").json()["keys"]]
    ok = other_client.get("/v1/memories", headers={"Authorization": f"Bearer {theirs['key']}"})
    assert ok.status_code == 200


def test_a_key_revoked_through_python_stops_at_once(memos: MemOS, ns: str) -> None:
    secret = api_key(memos, ns)
    assert memos.keys.namespace_for(secret) == ns
    key_id = next(k.id for k in memos.keys.list(ns) if secret.startswith(k.prefix))
    memos.keys.revoke(key_id)
    assert memos.keys.namespace_for(secret) is None


def test_an_unknown_field_is_named(client: TestClient) -> None:
    body = _problem(client.post("/v1/memories", json={"text": "x", "colour": "red"}), 422, "colour")
    assert body["detail"] == "body: Object contains unknown field `colour`"
    nested = client.post("/v1/memories/search", json={"query": "x", "filters": {"colour": 1}})
    assert _problem(nested, 422, "colour")["errors"][0]["key"] == "filters"


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ("{not json", 400, "not valid JSON"),
        ('{"text": 1e400}', 400, "not valid JSON: Number out of range"),
        ("", 422, "a JSON body is required"),
    ],
)
def test_a_body_that_is_not_json_is_refused(
    client: TestClient, body: str, status: int, detail: str
) -> None:
    r = client.post("/v1/memories", content=body, headers={"content-type": "application/json"})
    _problem(r, status, detail)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/memories", {"text": "a\u0000b"}, "text"),
        ("/v1/memories", {"text": "ok", "metadata": {"k": ["x", "y\u0000"]}}, "metadata.k[1]"),
        ("/v1/memories", {"text": "ok", "metadata": {"k\u0000": 1}}, "metadata.k\u0000"),
        ("/v1/memories/batch", {"items": [{"text": "ok"}, {"text": "\u0000"}]}, "items[1].text"),
        ("/v1/graph/facts", {"subject": "A", "predicate": "p", "value": "v\u0000"}, "value"),
        ("/v1/cache/lookup", {"query": "what\u0000"}, "query"),
    ],
)  # fmt: skip
def test_a_nul_character_is_a_422_on_every_backend(
    client: TestClient, path: str, body: dict, field: str
) -> None:
    """PostgreSQL's text cannot hold NUL: it used to reach the database and answer 500."""
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}: must not contain a NUL")
    r = client.get("/v1/memories", params={"user_id": "u\u0000"})
    assert r.status_code == 422 and r.json()["detail"].startswith("user_id: must not contain")
