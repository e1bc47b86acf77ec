"""Migrate over REST: memories copied or moved, with their versions, to another namespace
or owner; the caller holds both namespaces' keys (or the admin key); refusals change
nothing."""

from __future__ import annotations

from dataclasses import replace

from litestar.testing import TestClient

from memos.config import Settings
from memos.core import MemOS
from memos.embeddings import Embedder
from memos.server.app import create_app

from .conftest import api_key


def add(client: TestClient, text: str, **fields) -> dict:
    answer = client.post("/v1/memories", json={"text": text, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()


def history(client: TestClient, memory_id: str) -> list[dict]:
    answer = client.get(f"/v1/memories/{memory_id}/history")
    assert answer.status_code == 200, answer.text
    return answer.json()["versions"]


def search_ids(client: TestClient, query: str) -> list[str]:
    found = client.post("/v1/memories/search", json={"query": query, "top_k": 5})
    assert found.status_code == 200, found.text
    return [hit["id"] for hit in found.json()["results"]]


def test_copy_to_another_namespace_keeps_versions_and_provenance(
    client: TestClient, other_client: TestClient, ns: str, other_ns: str
) -> None:
    source = add(client, "Ana owns the billing service.", user_id="ana", tags=["team"])
    changed = client.patch(f"/v1/memories/{source['id']}",
                           json={"text": "Ana owns billing and invoicing."})  # fmt: skip
    assert changed.status_code == 200, changed.text
    target_key = other_client.headers["Authorization"].split()[1]
    answer = client.post(
        "/v1/memories/migrate",
        json={"memory_ids": [source["id"]], "namespace": other_ns},
        headers={"X-Target-Key": target_key},
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["namespace"] == other_ns
    (copy,) = body["memories"]
    assert copy["id"] != source["id"]
    assert copy["text"] == "Ana owns billing and invoicing."
    assert (copy["user_id"], copy["tags"], copy["version"]) == ("ana", ["team"], 3)

    versions = history(other_client, copy["id"])
    assert [v["operation"] for v in versions] == ["create", "update", "migrate"]
    assert versions[0]["text"] == "Ana owns the billing service."
    assert versions[-1]["derived_from"] == [
        {"namespace": ns, "id": source["id"], "version": 2, "relation": "copied_from"}
    ]
    # a copy leaves the source served; each namespace finds its own memory
    assert client.get(f"/v1/memories/{source['id']}").json()["state"] != "deleted"
    assert search_ids(other_client, "who owns invoicing") == [copy["id"]]
    assert search_ids(client, "who owns invoicing") == [source["id"]]
    assert other_client.get(f"/v1/memories/{source['id']}").status_code == 404


def test_move_to_another_owner_tombstones_the_source(client: TestClient, ns: str) -> None:
    source = add(client, "Bo prefers green tea in the morning.", user_id="bo")
    answer = client.post("/v1/memories/migrate", json={
        "memory_ids": [source["id"]], "mode": "move", "user_id": "cy", "agent_id": None,
    })  # fmt: skip
    assert answer.status_code == 201, answer.text
    (moved,) = answer.json()["memories"]
    assert moved["user_id"] == "cy" and moved["version"] == 2
    assert client.get(f"/v1/memories/{source['id']}").status_code == 404  # deleted
    last = history(client, source["id"])[-1]
    assert (last["operation"], last["state"]) == ("migrate", "deleted")
    assert last["derived_from"] == [
        {"namespace": ns, "id": moved["id"], "version": 2, "relation": "moved_to"}
    ]
    assert search_ids(client, "green tea") == [moved["id"]]
    found = client.post(
        "/v1/memories/search", json={"query": "green tea", "filters": {"user_id": "bo"}}
    )
    assert found.json()["results"] == []


def test_admin_key_opens_any_target(
    settings: Settings, embedder: Embedder, ns: str, other_ns: str
) -> None:
    store = MemOS(replace(settings, admin_key="admin-secret-for-tests"), embedder=embedder)
    with store, TestClient(create_app(store, background_jobs=False)) as client:
        client.headers["Authorization"] = f"Bearer {api_key(store, ns)}"
        _move_with_admin_key(store, client, other_ns)


def _move_with_admin_key(memos: MemOS, client: TestClient, other_ns: str) -> None:
    source = add(client, "The vault code is 4417.")
    answer = client.post(
        "/v1/memories/migrate",
        json={"memory_ids": [source["id"]], "namespace": other_ns, "mode": "move"},
        headers={"X-Target-Key": "admin-secret-for-tests"},
    )
    assert answer.status_code == 201, answer.text
    with TestClient(client.app) as target:
        target.headers["Authorization"] = f"Bearer {api_key(memos, other_ns)}"
        (moved,) = answer.json()["memories"]
        assert target.get(f"/v1/memories/{moved['id']}").json()["text"] == source["text"]


def test_refused_migrations_change_nothing(
    memos: MemOS, client: TestClient, other_client: TestClient, other_ns: str
) -> None:
    a = add(client, "Dee runs the Tuesday stand-up.", user_id="dee")
    b = add(client, "Dee reviews the budget on Fridays.", user_id="dee")
    with_fact = add(client, "Dee lives in Lyon.", user_id="dee",
                    facts=[{"subject": "Dee", "predicate": "lives_in", "value": "Lyon"}])  # fmt: skip
    twin = add(other_client, "Dee reviews the budget on Fridays.", user_id="dee")
    target_key = other_client.headers["Authorization"].split()[1]
    stranger_key = api_key(memos, "stranger-ns")
    missing = "0190a0a0-0000-7000-8000-000000000000"
    to_other = {"namespace": other_ns}
    cases = [
        ({"memory_ids": []}, {}, 422, "memory_ids"),
        ({"memory_ids": [a["id"], a["id"]]}, {}, 422, "twice"),
        ({"memory_ids": [a["id"]]}, {}, 422, "nothing to migrate"),
        ({"memory_ids": [a["id"]], "mode": "teleport"}, {}, 422, "mode"),
        ({"memory_ids": ["nope"], **to_other}, {}, 422, "memory_ids"),
        ({"memory_ids": [a["id"]], "namespace": "bad name!"}, {}, 422, "namespace"),
        ({"memory_ids": [a["id"]], **to_other}, {}, 403, "X-Target-Key"),
        ({"memory_ids": [a["id"]], **to_other}, {"X-Target-Key": stranger_key}, 403,
         "does not open"),
        ({"memory_ids": [a["id"], missing], **to_other}, {"X-Target-Key": target_key}, 404,
         "not found"),
        ({"memory_ids": [a["id"], with_fact["id"]], **to_other, "mode": "move"},
         {"X-Target-Key": target_key}, 409, "asserts facts"),
        ({"memory_ids": [a["id"], b["id"]], **to_other, "mode": "move"},
         {"X-Target-Key": target_key}, 409, twin["id"]),
    ]  # fmt: skip
    for body, headers, status, says in cases:
        answer = client.post("/v1/memories/migrate", json=body, headers=headers)
        assert answer.status_code == status, (body, answer.text)
        assert says in answer.json()["detail"], (body, answer.text)
    # all or nothing: the first memory of each refused batch is still where it was
    for memory in (a, b, with_fact):
        kept = client.get(f"/v1/memories/{memory['id']}").json()
        assert kept["version"] == 1 and kept["state"] != "deleted"
    listed = other_client.get("/v1/memories").json()["items"]
    assert [m["id"] for m in listed] == [twin["id"]]
