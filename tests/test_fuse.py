"""Fuse over REST: memories into one new memory derived from each source's version, the
sources marked merged; refusals change nothing."""

from __future__ import annotations

from litestar.testing import TestClient

from memos.fusion import merged_text


def add(client: TestClient, text: str, **fields) -> dict:
    answer = client.post("/v1/memories", json={"text": text, **fields})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_merged_text_keeps_order_and_drops_repeats() -> None:
    assert merged_text(["Ana owns billing. She is on call.", "ana owns  billing.", "New: P1."]) == (
        "Ana owns billing. She is on call.\nNew: P1."
    )


def test_fuse_makes_one_memory_derived_from_each_source(client: TestClient) -> None:
    a = add(client, "Ana owns the billing service. It runs on port 7341.")
    b = add(client, "The billing service runs on port 7341. Its runbook is in the wiki.")
    answer = client.post("/v1/memories/fuse", json={"memory_ids": [a["id"], b["id"]]})
    assert answer.status_code == 201, answer.text
    fused = answer.json()
    assert fused["text"] == (
        "Ana owns the billing service. It runs on port 7341.\n"
        "The billing service runs on port 7341. Its runbook is in the wiki."
    )
    history = client.get(f"/v1/memories/{fused['id']}/history").json()["versions"]
    assert history[0]["operation"] == "fuse"
    assert history[0]["derived_from"] == [{"id": a["id"], "version": 1},
                                          {"id": b["id"], "version": 1}]  # fmt: skip
    for source in (a, b):
        merged = client.get(f"/v1/memories/{source['id']}").json()
        assert merged["state"] == "merged" and merged["version"] == 2
        last = client.get(f"/v1/memories/{source['id']}/history").json()["versions"][-1]
        assert last["operation"] == "merge"
        assert last["derived_from"] == [{"id": fused["id"], "version": 1,
                                         "relation": "merged_into"}]  # fmt: skip
    hits = client.post("/v1/memories/search", json={"query": "billing runbook port"}).json()
    assert [h["id"] for h in hits["results"]] == [fused["id"]]


def test_refused_fuses_change_nothing(client: TestClient) -> None:
    a = add(client, "Bo prefers tea.", user_id="bo")
    b = add(client, "Bo drinks tea at noon.", user_id="bo")
    other = add(client, "Cy prefers coffee.", user_id="cy")
    with_fact = add(client, "Bo lives in Oslo.", user_id="bo",
                    facts=[{"subject": "Bo", "predicate": "lives_in", "value": "Oslo"}])  # fmt: skip
    missing = "0190a0a0-0000-7000-8000-000000000000"
    cases = [
        ({"memory_ids": [a["id"]]}, 422, "memory_ids"),
        ({"memory_ids": [a["id"], a["id"]]}, 422, "repeat"),
        ({"memory_ids": [a["id"], missing]}, 404, "not found"),
        ({"memory_ids": [a["id"], other["id"]]}, 422, "different users"),
        ({"memory_ids": [a["id"], b["id"]], "mode": "poem"}, 422, "mode"),
        ({"memory_ids": [a["id"], with_fact["id"]]}, 409, "asserts facts"),
        ({"memory_ids": [a["id"], b["id"]], "mode": "summary"}, 503, "chat model"),
    ]
    for body, status, words in cases:
        answer = client.post("/v1/memories/fuse", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert words in answer.text, (body, answer.text)
    for memory in (a, b, other, with_fact):
        again = client.get(f"/v1/memories/{memory['id']}").json()
        assert again["state"] == "generated" and again["version"] == 1


def test_another_namespace_cannot_fuse_my_memories(
    client: TestClient, other_client: TestClient
) -> None:
    a, b = add(client, "Mine one."), add(client, "Mine two.")
    answer = other_client.post("/v1/memories/fuse", json={"memory_ids": [a["id"], b["id"]]})
    assert answer.status_code == 404
    assert client.get(f"/v1/memories/{a['id']}").json()["state"] == "generated"
