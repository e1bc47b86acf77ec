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
