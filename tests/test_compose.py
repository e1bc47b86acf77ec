"""Compositions over REST: a named set of memories, versioned as it changes, with the
member versions it was composed with; bad input gets a precise 4xx."""

from __future__ import annotations

from litestar.testing import TestClient


def add(client: TestClient, text: str, **fields) -> dict:
    answer = client.post("/v1/memories", json={"text": text, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_composition_is_versioned_with_its_members_versions(client: TestClient) -> None:
    a = add(client, "Ana owns the billing service.")
    b = add(client, "Billing deploys on Tuesdays.")
    created = client.put("/v1/compositions/billing", json={"memory_ids": [a["id"], b["id"]]})
    assert created.status_code == 201, created.text
    first = created.json()
    assert (first["name"], first["version"]) == ("billing", 1)
    assert first["members"] == [{"id": a["id"], "kind": "plaintext", "version": 1},
                                {"id": b["id"], "kind": "plaintext", "version": 1}]  # fmt: skip
    same = client.put("/v1/compositions/billing", json={"memory_ids": [a["id"], b["id"]]})
    assert same.status_code == 200 and same.json()["version"] == 1

    client.patch(f"/v1/memories/{b['id']}", json={"text": "Billing deploys on Thursdays."})
    second = client.put("/v1/compositions/billing", json={"memory_ids": [b["id"]]}).json()
    assert second["version"] == 2 and second["id"] == first["id"]
    assert second["members"] == [{"id": b["id"], "kind": "plaintext", "version": 2}]
    assert client.get("/v1/compositions/billing?version=1").json() == first
    assert client.get("/v1/compositions/billing").json() == second
    history = client.get(f"/v1/memories/{first['id']}/history").json()["versions"]
    assert [v["operation"] for v in history] == ["create", "update"]
    assert history[1]["derived_from"] == [{"id": b["id"], "version": 2}]
    # a composition is not searched as a memory's text
    found = client.post("/v1/memories/search", json={"query": "members billing"}).json()
    assert first["id"] not in [hit["id"] for hit in found["results"]]

    listed = client.get("/v1/compositions").json()["compositions"]
    assert [c["name"] for c in listed] == ["billing"]
    assert client.delete("/v1/compositions/billing").status_code == 204
    assert client.get("/v1/compositions/billing").status_code == 404
    assert client.get(f"/v1/memories/{b['id']}").status_code == 200  # members stay


def test_bad_compositions_get_a_precise_4xx(client: TestClient) -> None:
    a = add(client, "Cy takes the on-call shift on weekends.")
    client.put("/v1/compositions/oncall", json={"memory_ids": [a["id"]]})
    oncall = client.get("/v1/compositions/oncall").json()
    missing = "0190a0a0-0000-7000-8000-000000000000"
    cases = [
        ("bad name!", {"memory_ids": [a["id"]]}, 422, "name"),
        ("x", {"memory_ids": []}, 422, "memory_ids"),
        ("x", {"memory_ids": [a["id"], a["id"]]}, 422, "twice"),
        ("x", {"memory_ids": ["not-an-id"]}, 422, "memory_ids"),
        ("x", {"memory_ids": [missing]}, 404, "not found"),
        ("x", {"memory_ids": [oncall["id"]]}, 422, "a composition itself"),
        ("x", {"memory_ids": [a["id"]], "extra": 1}, 422, "extra"),
    ]
    for name, body, status, says in cases:
        answer = client.put(f"/v1/compositions/{name}", json=body)
        assert answer.status_code == status, (name, body, answer.text)
        assert says in answer.json()["detail"], (name, body, answer.text)
    assert client.get("/v1/compositions/x").status_code == 404
    assert client.get("/v1/compositions/oncall?version=9").status_code == 404
    assert client.get("/v1/compositions/oncall?version=0").status_code == 422
    assert [c["name"] for c in client.get("/v1/compositions").json()["compositions"]] == ["oncall"]
