"""Inputs a hostile caller sends to the parts added since the first hardening pass: each
is a 422 (or 404) naming the field, never a 500, and changes nothing."""

from __future__ import annotations

from datetime import datetime

import pytest
from litestar.testing import TestClient

from memos.core import MemOS
from memos.errors import InvalidInputError
from memos.memcube.filters import MemoryFilter
from memos.memcube.ids import new_id
from memos.memcube.models import Task, utcnow

# the calendar's first and last hours with an offset: no longer date-times in UTC
EDGES = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")


def _fact(**when: str) -> dict:
    return {"subject": "Ana", "predicate": "works_at", "object": "Acme", **when}


def _body_cases(edge: str, memory_id: str) -> list[tuple[str, str, dict, str]]:
    return [
        ("POST", "/v1/memories", {"text": "x", "valid_from": edge}, "valid_from"),
        ("POST", "/v1/memories", {"text": "x", "valid_to": edge}, "valid_to"),
        ("POST", "/v1/memories", {"text": "x", "facts": [_fact(valid_from=edge)]}, "valid_from"),
        ("POST", "/v1/memories", {"text": "x", "facts": [_fact(valid_until=edge)]}, "valid_until"),
        ("POST", "/v1/memories/batch", {"items": [{"text": "x", "valid_from": edge}]}, "valid_from"),
        ("PATCH", f"/v1/memories/{memory_id}", {"valid_to": edge}, "valid_to"),
        ("POST", "/v1/memories/search", {"query": "x", "as_of": edge, "mode": "vector"}, "as_of"),
        ("POST", "/v1/memories/search", {"query": "x", "as_of": edge, "mode": "hybrid"}, "as_of"),
        ("POST", "/v1/memories/search", {"query": "x", "as_of": edge, "mode": "graph"}, "as_of"),
        ("POST", "/v1/memories/search", {"query": "x", "filters": {"created_after": edge}}, "created_after"),
        ("POST", "/v1/graph/facts", _fact(valid_from=edge), "valid_from"),
        ("POST", "/v1/graph/facts", _fact(valid_until=edge), "valid_until"),
    ]


def _query_cases(edge: str) -> list[tuple[str, dict, str]]:
    return [
        ("/v1/memories", {"created_after": edge}, "created_after"),
        ("/v1/memories", {"created_before": edge}, "created_before"),
        ("/v1/graph/state", {"entity": "Ana", "as_of": edge}, "as_of"),
        ("/v1/graph/state", {"entity": "Ana", "known_at": edge}, "known_at"),
        ("/v1/graph/timeline", {"entity": "Ana", "known_at": edge}, "known_at"),
        ("/v1/graph/neighbours", {"entity": "Ana", "as_of": edge}, "as_of"),
        ("/v1/graph/subgraph", {"entity": "Ana", "as_of": edge}, "as_of"),
    ]


@pytest.mark.parametrize("edge", EDGES)
def test_datetimes_at_the_calendars_ends_are_a_422(client: TestClient, edge: str) -> None:
    memory = client.post("/v1/memories", json={"text": "Ana works at Acme."}).json()
    client.post("/v1/graph/facts", json=_fact())
    before = client.get("/v1/memories").json()["items"]
    for method, path, body, field in _body_cases(edge, memory["id"]):
        answer = client.request(method, path, json=body)
        assert answer.status_code == 422, (path, body, answer.text)
        assert field in answer.json()["detail"] and "out of range" in answer.json()["detail"]
    for path, params, field in _query_cases(edge):
        answer = client.get(path, params=params)
        assert answer.status_code == 422, (path, params, answer.text)
        assert answer.json()["detail"].startswith(f"{field}:")
    assert client.get("/v1/memories").json()["items"] == before


def test_the_kernel_refuses_them_too(memos: MemOS, ns: str) -> None:
    for edge in map(datetime.fromisoformat, EDGES):
        with pytest.raises(InvalidInputError, match="valid_from"):
            memos.add("x", namespace=ns, valid_from=edge)
        with pytest.raises(InvalidInputError, match="as_of"):
            memos.search("x", namespace=ns, as_of=edge)
        with pytest.raises(InvalidInputError, match="created_after"):
            MemoryFilter(created_after=edge)
    assert memos.list(namespace=ns).items == []


def test_a_deep_dependency_chain_has_a_bounded_context(
    memos: MemOS, ns: str, client: TestClient
) -> None:
    # deeper than Python's recursion limit, in both the dependency DAG and the tree
    # (written as rows at once: a create per task would check the whole chain each time)
    chain = [new_id() for _ in range(1_200)]
    now = utcnow()
    with memos.db.unit_of_work() as session:
        session.add_all(
            Task(id=task_id, namespace=ns, title=f"step {n}", status="todo",
                 parent_id=chain[n - 1] if n else None,
                 depends_on=[chain[n - 1]] if n else [], memory_ids=[],
                 created_at=now, updated_at=now)
            for n, task_id in enumerate(chain)
        )  # fmt: skip
    answer = client.get(f"/v1/tasks/{chain[-1]}/context")
    assert answer.status_code == 200, answer.text
    context = answer.json()
    assert (context["dependencies_total"], context["path_total"]) == (1_199, 1_199)
    assert [t["id"] for t in context["dependencies"]] == chain[-201:-1]  # the nearest 200
    assert [t["id"] for t in context["path"]] == chain[-201:-1]
    wide = client.get(f"/v1/tasks/{chain[-1]}/context", params={"limit": 1000}).json()
    assert [t["id"] for t in wide["dependencies"]] == chain[-1001:-1]
    for bad in ("0", "1001", "x"):
        answer = client.get(f"/v1/tasks/{chain[-1]}/context", params={"limit": bad})
        assert answer.status_code == 422 and "limit" in answer.json()["detail"]
    # closing the chain into a cycle is still refused, naming it
    answer = client.patch(f"/v1/tasks/{chain[0]}", json={"depends_on": [chain[-1]]})
    assert answer.status_code == 422 and "cycle" in answer.json()["detail"]


def test_graph_names_and_predicates_that_would_mislead(client: TestClient) -> None:
    for body, field in (
        ({"subject": "Ana", "predicate": "mentions", "object": "Bob"}, "predicate"),
        ({"subject": "Ana", "predicate": " Supersedes ", "object": "Bob"}, "predicate"),
        ({"subject": "An\u200ba", "predicate": "knows", "object": "Bob"}, "subject"),
        ({"subject": "Ana", "predicate": "knows", "object": "\u202eboB"}, "object"),
    ):  # fmt: skip
        answer = client.post("/v1/graph/facts", json=body)
        assert answer.status_code == 422 and field in answer.json()["detail"], (body, answer.text)
    for body in ({"name": "Ana\u2066"}, {"name": "Ana", "aliases": ["\ufeffAna"]}):
        assert client.post("/v1/graph/entities", json=body).status_code == 422
    added = client.post("/v1/memories", json={"text": "x", "facts": [
        {"subject": "Ana", "predicate": "related", "object": "Bob"}]})  # fmt: skip
    assert added.status_code == 422 and "predicate" in added.json()["detail"]
    assert client.post("/v1/graph/facts", json={"subject": "Ana", "predicate": "related_to",
                                                "object": "Bob"}).status_code == 201  # fmt: skip


def test_a_long_timeline_comes_in_pages(memos: MemOS, ns: str, client: TestClient) -> None:
    for n in range(250):
        memos.graph.assert_fact(ns, "Larkspur", f"setting_{n % 7}", value=str(n))
    first = client.get("/v1/graph/timeline", params={"entity": "Larkspur"}).json()
    assert (len(first["facts"]), first["total"], first["next_cursor"]) == (200, 250, "200")
    rest = client.get("/v1/graph/timeline", params={"entity": "Larkspur",
                                                    "cursor": first["next_cursor"]}).json()  # fmt: skip
    assert len(rest["facts"]) == 50 and rest["next_cursor"] is None
    ids = [f["id"] for f in first["facts"] + rest["facts"]]
    assert len(set(ids)) == 250
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"cursor": "-1"}, {"cursor": "abc"}):
        answer = client.get("/v1/graph/timeline", params={"entity": "Larkspur", **bad})
        assert answer.status_code == 422, bad


def test_compositions_are_listed_like_any_memory(client: TestClient) -> None:
    made = client.post("/v1/memories", json={"text": "The gate code is 1234."}).json()
    composed = client.put("/v1/compositions/gate", json={"memory_ids": [made["id"]]})
    assert composed.status_code == 201, composed.text
    listed = client.get("/v1/memories", params={"kind": "composition"})
    assert listed.status_code == 200 and [m["id"] for m in listed.json()["items"]] == [
        composed.json()["id"]]
    long_tag = client.get("/v1/memories", params={"tag": "t" * 129})
    assert long_tag.status_code == 422 and "tag" in long_tag.json()["detail"]
    assert client.get("/v1/memories", params={"tag": ["a"] * 65}).status_code == 422


def test_a_neighbourhood_is_bounded_in_edges(memos: MemOS, ns: str, client: TestClient) -> None:
    from memos.graph.service import MAX_EDGES, FactInput, MemoryRef

    memory = memos.add("Larkspur and Quill have a long history.", namespace=ns).memory
    facts = [FactInput("Larkspur", f"p{n % 50}", "Quill", None) for n in range(MAX_EDGES + 500)]
    memos.graph.assert_facts(ns, facts, MemoryRef(memory.id, memory.version))
    answer = client.get("/v1/graph/neighbours", params={
        "entity": "Larkspur", "depth": 3, "include_superseded": "true"})  # fmt: skip
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["edges"]) <= MAX_EDGES and body["truncated"] is True
    whole = client.get("/v1/graph/subgraph", params={"include_superseded": "true"}).json()
    assert len(whole["edges"]) <= MAX_EDGES and whole["truncated"] is True
