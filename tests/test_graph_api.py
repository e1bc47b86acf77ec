"""/v1/graph over REST: facts asserted (with the memory that asserts them), an entity's
state now, as of a world time and as known at a recorded time, its timeline; another
namespace sees none of it; bad input gets a 4xx naming the field."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from litestar.testing import TestClient


def fact(client: TestClient, **body) -> dict:
    r = client.post("/v1/graph/facts", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_facts_state_and_timeline(client: TestClient) -> None:
    memory = client.post("/v1/memories", json={"text": "Bob took over Larkspur in March."})
    memory_id = memory.json()["id"]
    r = client.post("/v1/graph/entities", json={"name": "Bob", "type": "person",
                                               "aliases": ["@bob"]})  # fmt: skip
    assert r.status_code == 200 and r.json()["type"] == "person"
    alice = fact(client, subject="Larkspur", predicate="owner", object="Alice",
                 valid_from="2026-01-01T00:00:00Z")  # fmt: skip
    time.sleep(0.01)
    before_bob = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    bob = fact(client, subject="Larkspur", predicate="owner", object="@bob",
               valid_from="2026-03-01T00:00:00Z", memory_id=memory_id)  # fmt: skip
    assert bob["object"] == "Bob" and bob["memory"] == {"id": memory_id, "version": 1}
    fact(client, subject="Larkspur", predicate="port", value="8443",
         valid_from="2026-02-01T00:00:00Z")  # fmt: skip

    now = client.get("/v1/graph/state", params={"entity": "larkspur"}).json()
    assert now["entity"]["name"] == "Larkspur"
    assert now["facts"]["owner"]["object"] == "Bob" and now["facts"]["port"]["value"] == "8443"
    february = client.get("/v1/graph/state", params={"entity": "Larkspur",
                                                     "as_of": "2026-02-15T00:00:00Z"})  # fmt: skip
    assert february.json()["facts"]["owner"]["id"] == alice["id"]
    believed = client.get("/v1/graph/state", params={"entity": "Larkspur",
                                                     "known_at": before_bob}).json()  # fmt: skip
    assert believed["facts"]["owner"]["object"] == "Alice"

    timeline = client.get("/v1/graph/timeline", params={"entity": "Larkspur",
                                                        "predicate": "owner"}).json()  # fmt: skip
    first, second = timeline["facts"]
    assert first["id"] == alice["id"] and first["superseded_by"] == bob["id"]
    assert first["valid_to"].startswith("2026-03-01") and second["valid_to"] is None

    # deleting the memory retires the fact it asserted: Alice holds again
    assert client.delete(f"/v1/memories/{memory_id}").status_code == 204
    owner = client.get("/v1/graph/state", params={"entity": "Larkspur"}).json()["facts"]["owner"]
    assert owner["object"] == "Alice"


def test_another_namespace_sees_nothing(client: TestClient, other_client: TestClient) -> None:
    fact(client, subject="Larkspur", predicate="owner", object="Alice")
    r = other_client.get("/v1/graph/state", params={"entity": "Larkspur"})
    assert r.status_code == 404 and "Larkspur" in r.json()["detail"]
    memory_id = client.post("/v1/memories", json={"text": "mine"}).json()["id"]
    r = other_client.post("/v1/graph/facts", json={"subject": "X", "predicate": "p",
                                                   "value": "v", "memory_id": memory_id})  # fmt: skip
    assert r.status_code == 404  # another namespace's memory cannot assert its facts


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": "A", "predicate": "p"}, "exactly one of object and value"),
        ({"subject": "A", "predicate": "p", "object": "B", "value": "v"}, "exactly one"),
        ({"subject": "A", "predicate": "p", "value": "v", "valid_from": "2026-01-01T00:00:00"},
         "valid_from"),
        ({"subject": "A", "predicate": "p", "value": "v", "valid_from": "2026-02-01T00:00:00Z",
          "valid_until": "2026-01-01T00:00:00Z"}, "valid_until"),
        ({"subject": "", "predicate": "p", "value": "v"}, "subject"),
        ({"subject": "A", "predicate": "p" * 129, "value": "v"}, "predicate"),
        ({"subject": "A", "predicate": "p", "value": "v", "memory_id": "nope"}, "memory_id"),
        ({"subject": "A", "predicate": "p", "value": "v", "colour": "red"}, "colour"),
    ],
)  # fmt: skip
def test_bad_facts_get_a_422_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    r = client.post("/v1/graph/facts", json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]


def test_bad_queries_get_a_4xx(client: TestClient) -> None:
    fact(client, subject="A", predicate="p", value="v")
    r = client.get("/v1/graph/state", params={"entity": "A", "as_of": "2026-01-01T00:00:00"})
    assert r.status_code == 422 and "as_of" in r.json()["detail"]
    assert client.get("/v1/graph/state").status_code in (400, 422)
    assert client.get("/v1/graph/timeline", params={"entity": "nobody"}).status_code == 404


def service_with_a_dependency(client: TestClient) -> dict[str, str]:
    """Larkspur depends on Quillfeather, whose owner changed from Alice to Dana."""
    items = [
        {"text": "Larkspur calls Quillfeather for every login.",
         "facts": [{"subject": "Larkspur", "predicate": "depends_on", "object": "Quillfeather",
                    "valid_from": "2026-01-01T00:00:00Z"}]},
        {"text": "Alice Moreno runs Quillfeather.",
         "facts": [{"subject": "Quillfeather", "predicate": "owner", "object": "Alice Moreno",
                    "valid_from": "2026-01-02T00:00:00Z"}]},
        {"text": "Quillfeather is run by Dana Reyes now.",
         "facts": [{"subject": "Quillfeather", "predicate": "owner", "object": "Dana Reyes",
                    "valid_from": "2026-02-01T00:00:00Z"}]},
    ]  # fmt: skip
    r = client.post("/v1/memories/batch", json={"items": items})
    assert r.status_code == 201, r.text
    return dict(zip(("dep", "alice", "dana"), r.json()["ids"], strict=True))


def test_facts_on_memories_and_graph_search_over_rest(client: TestClient) -> None:
    ids = service_with_a_dependency(client)
    state = client.get("/v1/graph/state", params={"entity": "Quillfeather"}).json()["facts"]
    assert state["owner"]["object"] == "Dana Reyes"
    assert state["owner"]["memory"] == {"id": ids["dana"], "version": 1}
    query = {"query": "Who owns the service that Larkspur depends on?", "top_k": 3}
    graph = client.post("/v1/memories/search", json={**query, "mode": "graph"}).json()
    found = [h["id"] for h in graph["results"]]
    assert {ids["dep"], ids["dana"]} <= set(found) and ids["alice"] not in found
    assert all(h["similarity"] is not None for h in graph["results"])
    then = client.post(
        "/v1/memories/search",
        json={**query, "mode": "graph", "top_k": 5, "as_of": "2026-01-15T00:00:00Z"},
    ).json()
    found_then = [h["id"] for h in then["results"]]
    assert ids["alice"] in found_then and ids["dana"] not in found_then
    for mode in ("vector", "hybrid"):
        r = client.post("/v1/memories/search", json={**query, "mode": mode})
        assert r.status_code == 200 and len(r.json()["results"]) == 3


def test_neighbours_path_and_subgraph(client: TestClient) -> None:
    ids = service_with_a_dependency(client)
    r = client.get("/v1/graph/neighbours", params={"entity": "Quillfeather"})
    assert r.status_code == 200, r.text
    body = r.json()
    names = {n.get("name") for n in body["nodes"]}
    assert {"Quillfeather", "Larkspur", "Dana Reyes"} <= names
    # her memory mentions Quillfeather; she is two edges away, for she owns it no more
    assert f"memory:{ids['alice']}" in body["distance"] and "Alice Moreno" not in names
    owners = [e for e in body["edges"] if e.get("predicate") == "owner"]
    assert len(owners) == 1 and owners[0]["kind"] == "fact"  # only the owner fact that holds
    only_facts = client.get("/v1/graph/neighbours", params={"entity": "Quillfeather",
                                                            "type": "owner"}).json()  # fmt: skip
    assert {n.get("name") for n in only_facts["nodes"]} == {"Quillfeather", "Dana Reyes"}
    history = client.get(
        "/v1/graph/neighbours",
        params={"entity": "Quillfeather", "type": "owner", "include_superseded": "true"},
    ).json()
    assert {"Alice Moreno", "Dana Reyes"} <= {n.get("name") for n in history["nodes"]}
    then = client.get(
        "/v1/graph/neighbours",
        params={"entity": "Quillfeather", "type": "owner", "as_of": "2026-01-15T00:00:00Z"},
    ).json()
    assert {n.get("name") for n in then["nodes"]} == {"Quillfeather", "Alice Moreno"}

    path = client.get(
        "/v1/graph/path",
        params={"from": "Larkspur", "to": "Dana Reyes", "type": ["depends_on", "owner"]},
    ).json()
    assert path["found"] and [step.get("name") for step in path["chain"][::2]] == [
        "Larkspur",
        "Quillfeather",
        "Dana Reyes",
    ]
    assert [step["predicate"] for step in path["chain"][1::2]] == ["depends_on", "owner"]
    none = client.get(
        "/v1/graph/path",
        params={"from": "Larkspur", "to": "Alice Moreno", "type": ["depends_on", "owner"]},
    ).json()
    assert none == {"found": False, "chain": []}

    sub = client.get("/v1/graph/subgraph", params={"entity": "Larkspur", "depth": 2}).json()
    node_ids = {n["id"] for n in sub["nodes"]}
    assert f"memory:{ids['dep']}" in node_ids and not sub["truncated"]
    assert all(e["source"] in node_ids and e["target"] in node_ids for e in sub["edges"])


def test_graph_queries_stay_in_their_namespace(
    client: TestClient, other_client: TestClient
) -> None:
    service_with_a_dependency(client)
    for path, params in (("/v1/graph/neighbours", {"entity": "Larkspur"}),
                         ("/v1/graph/path", {"from": "Larkspur", "to": "Dana Reyes"}),
                         ("/v1/graph/subgraph", {"entity": "Larkspur"})):  # fmt: skip
        r = other_client.get(path, params=params)
        assert r.status_code == 404 and "Larkspur" in r.json()["detail"], path
    whole = other_client.get("/v1/graph/subgraph").json()
    assert whole["nodes"] == [] and whole["edges"] == []
    hits = other_client.post("/v1/memories/search", json={"query": "Larkspur", "mode": "graph"})
    assert hits.json()["results"] == []


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/graph/neighbours", {"entity": "Larkspur", "depth": 9}, "depth"),
        ("/v1/graph/neighbours", {"entity": "Larkspur", "depth": "x"}, "depth"),
        ("/v1/graph/neighbours", {"entity": "Larkspur", "as_of": "2026-01-01"}, "as_of"),
        ("/v1/graph/path", {"from": "Larkspur"}, "to"),
        ("/v1/graph/path", {"from": "Larkspur", "to": "Quillfeather", "max_depth": 0},
         "max_depth"),
        ("/v1/graph/subgraph", {"entity": "Larkspur", "include_superseded": "maybe"},
         "include_superseded"),
    ],
)  # fmt: skip
def test_bad_graph_queries_name_the_parameter(
    client: TestClient, path: str, params: dict, field: str
) -> None:
    service_with_a_dependency(client)
    r = client.get(path, params=params)
    assert r.status_code in (400, 422), r.text
    assert field in r.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": "x", "mode": "magic"}, "mode"),
        ({"query": "x", "as_of": "2026-01-01T00:00:00"}, "as_of"),
        ({"query": "x", "include_superseded": "yes"}, "include_superseded"),
    ],
)
def test_bad_search_modes_get_a_422(client: TestClient, body: dict, field: str) -> None:
    r = client.post("/v1/memories/search", json=body)
    assert r.status_code == 422 and field in r.json()["detail"], r.text


def test_bad_facts_on_a_memory_store_nothing(client: TestClient) -> None:
    items = [{"text": "fine"}, {"text": "bad", "facts": [{"subject": "A", "predicate": "p"}]}]
    r = client.post("/v1/memories/batch", json={"items": items})
    assert r.status_code == 422 and "items[1].facts[0]" in r.json()["detail"], r.text
    assert client.get("/v1/memories").json()["items"] == []


def test_aliases_never_collide_and_entities_merge_with_their_history(
    client: TestClient, memos, settings, embedder, ns: str
) -> None:
    assert client.post("/v1/graph/entities", json={"name": "Ana Silva", "aliases": ["A.S."]}).status_code == 200
    for body in ({"name": "Andre Santos", "aliases": ["a.s."]},
                 {"name": "Andre Santos", "aliases": ["ana silva"]}):  # fmt: skip
        taken = client.post("/v1/graph/entities", json=body)
        assert taken.status_code == 409 and "Ana Silva" in taken.json()["detail"], body
    client.post("/v1/graph/entities", json={"name": "Andre Santos"})
    taken = client.post("/v1/graph/entities", json={"name": "Andre Santos", "aliases": ["A.S."]})
    assert taken.status_code == 409
    assert client.get("/v1/graph/state", params={"entity": "A.S."}).json()["entity"]["name"] == "Ana Silva"

    # one person, two entities: merge them, moving the facts
    fact(client, subject="Ana", predicate="lives_in", object="Lisbon",
         valid_from="2025-01-01T00:00:00Z")  # fmt: skip
    fact(client, subject="Ana Silva", predicate="works_at", object="Acme",
         valid_from="2025-06-01T00:00:00Z")  # fmt: skip
    before = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    gone = client.get("/v1/graph/state", params={"entity": "Ana Silva"}).json()["entity"]
    merged = client.post("/v1/graph/entities/merge", json={"entity": "Ana Silva", "into": "Ana"})
    assert merged.status_code == 200, merged.text
    assert {"Ana Silva", "A.S."} <= set(merged.json()["aliases"])
    state = client.get("/v1/graph/state", params={"entity": "ana silva"}).json()
    assert state["entity"]["name"] == "Ana"
    assert {p: f["object"] for p, f in state["facts"].items()} == {
        "lives_in": "Lisbon", "works_at": "Acme"}
    # what was believed before the merge is still what was believed then
    then = client.get("/v1/graph/state", params={"entity": "Ana", "known_at": before}).json()
    assert set(then["facts"]) == {"lives_in"}
    by_id = client.get("/v1/graph/state", params={"entity": gone["id"]}).json()
    assert by_id["entity"]["merged_into"] == merged.json()["id"] and by_id["facts"] == {}
    again = client.post("/v1/graph/entities/merge", json={"entity": gone["id"], "into": "Ana"})
    assert again.status_code == 409
    same = client.post("/v1/graph/entities/merge", json={"entity": "A.S.", "into": "Ana"})
    assert same.status_code == 422
    missing = client.post("/v1/graph/entities/merge", json={"entity": "Nobody", "into": "Ana"})
    assert missing.status_code == 404

    # a restart reads the same: names resolve as before
    from memos.core import MemOS

    fresh = MemOS(settings, embedder=embedder)
    try:
        for name, wanted in (("ana silva", "Ana"), ("A.S.", "Ana"), ("andre santos", "Andre Santos")):
            assert fresh.graph.graph(ns).find(name).name == wanted
    finally:
        fresh.close()


def test_names_claimed_twice_resolve_the_same_in_any_load_order() -> None:
    from memos.graph.namespace_graph import Entity, NamespaceGraph

    first = Entity("b-2", "Sam", "person", ("S.",))
    second = Entity("a-1", "Samuel", "person", ("S.", "sam"))
    for order in ((first, second), (second, first)):
        graph = NamespaceGraph("t")
        for entity in order:
            graph.add_entity(entity)
        assert graph.find("sam").id == "b-2"  # a name before an alias
        assert graph.find("S.").id == "a-1"  # two aliases: the smaller id
