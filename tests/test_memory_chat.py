"""Memory-augmented chat and activation memory over REST, on the real engine: answers
use the caller's user's memories only and say which; the exchange is stored with its
provenance; the cache serves an answer only for the same memories; an activation's
block is reused from the KV cache, rebuilt when a source changes and let go when
deleted; bad ``memory`` fields get a 422 naming the field."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from memos.config import Settings
from memos.core import MemOS
from memos.llm.chat import ChatService
from memos.llm.embedded import EmbeddedBackend
from memos.server.app import create_app
from tests.conftest import api_key

BLOCK = 128
ALICE = [
    "Alice's locker code is 4821.",
    "Alice takes the 7:40 train from Harlow.",
    "Alice is allergic to hazelnuts.",
    "Alice's manager is Priya Raman.",
    "Alice keeps her spare keys in the blue drawer.",
    "Alice prefers window seats on long flights.",
    "Alice's team ships the billing service on Thursdays.",
    "Alice learned the cello as a child and still plays on Sundays.",
    "Alice's laptop is a grey ThinkPad with a cracked hinge.",
    "Alice parks on level three of the north garage.",
    "Alice's dentist appointment is on the 14th at 9 am.",
    "Alice runs the office book club, which meets on Wednesdays.",
    "Alice's favourite lunch place is the Sichuan kitchen on Mill Road.",
    "Alice's cat is called Biscuit and is twelve years old.",
    "Alice's on-call week starts on the first Monday of each month.",
    "Alice drinks her coffee black with no sugar.",
    "Alice's sister Maya lives in Lisbon and visits every August.",
    "Alice's bike was stolen last spring, so she bought a folding one.",
    "Alice's password manager is shared with the platform team only.",
    "Alice is learning Portuguese with an evening class on Tuesdays.",
    "Alice's standing desk is by the east window on the fourth floor.",
    "Alice wrote the incident guide for the payments outage in March.",
    "Alice's favourite film is Spirited Away, which she has seen nine times.",
    "Alice mentors two graduate engineers, Tom and Ines.",
    "Alice's home internet drops when the microwave runs.",
    "Alice plans to run the Cambridge half marathon in October.",
]
BOB = ["Bob's locker code is 7305.", "Bob takes the 8:15 bus from Epping."]


@pytest.fixture
def store(sqlite_url: str, tmp_path: Path, embedder) -> Iterator[MemOS]:
    memos = MemOS(Settings(data_dir=tmp_path, database_url=sqlite_url), embedder=embedder)
    yield memos
    memos.close()


@pytest.fixture
def app(store: MemOS, engine):
    return create_app(store, background_jobs=False, chat=ChatService(EmbeddedBackend(engine)))


@pytest.fixture
def client(app, store: MemOS, ns: str, engine) -> Iterator[TestClient]:
    engine.call(lambda: engine.scheduler.reset_prefix_cache(reset_connector=True))
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {api_key(store, ns)}"
        yield test_client


def add_all(client: TestClient, texts: list[str], user_id: str) -> list[str]:
    items = [{"text": t, "user_id": user_id} for t in texts]
    response = client.post("/v1/memories/batch", json={"items": items})
    assert response.status_code == 201, response.text
    return response.json()["ids"]


def ask(client: TestClient, question: str, memory: dict | None, **extra) -> dict:
    body = {"messages": [{"role": "user", "content": question}], "max_tokens": 12,
            "temperature": 0, **extra}  # fmt: skip
    if memory is not None:
        body["memory"] = memory
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_answers_use_only_the_users_own_memories(client: TestClient, store: MemOS) -> None:
    alice = add_all(client, ALICE[:4], "alice")
    bob = add_all(client, BOB, "bob")
    reply = ask(client, "What is my locker code?", {"user_id": "alice", "top_k": 3})
    used = reply["memory"]["used"]
    assert used and set(used) <= set(alice) and alice[0] in used
    assert "4821" in reply["choices"][0]["message"]["content"]
    bobs = ask(client, "What is my locker code?", {"user_id": "bob", "top_k": 3})
    assert set(bobs["memory"]["used"]) <= set(bob) and bob[0] in bobs["memory"]["used"]
    # the block before the conversation made the prompt longer than the question alone
    plain = ask(client, "What is my locker code?", None, cache=False)
    assert reply["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"]
    assert "memory" not in plain


def test_another_namespace_never_lends_its_memories(
    client: TestClient, app, store: MemOS, other_ns: str
) -> None:
    add_all(client, ALICE[:2], "alice")
    with TestClient(app) as other:
        other.headers["Authorization"] = f"Bearer {api_key(store, other_ns)}"
        reply = ask(other, "What is my locker code?", {"user_id": "alice"})
    assert reply["memory"]["used"] == []


def test_the_exchange_is_stored_with_its_provenance(client: TestClient) -> None:
    add_all(client, ALICE[:2], "alice")
    reply = ask(client, "Which train do I take?", {"user_id": "alice", "session_id": "s1",
                                                    "store": True})  # fmt: skip
    stored = reply["memory"]["stored"]
    memory = client.get(f"/v1/memories/{stored}").json()
    assert memory["user_id"] == "alice" and memory["session_id"] == "s1"
    assert memory["text"].startswith("User: Which train do I take?\nAssistant: ")
    [created] = client.get(f"/v1/memories/{stored}/history").json()["versions"]
    assert (created["source"], created["actor"]) == ("chat", reply["model"])


def test_the_cache_serves_an_answer_only_for_the_same_memories(client: TestClient) -> None:
    ids = add_all(client, ALICE[:3], "alice")
    memory = {"user_id": "alice", "top_k": 2}
    first = ask(client, "What am I allergic to?", memory)
    assert first["cache"]["hit"] is False
    again = ask(client, "What am I allergic to?", memory)
    assert again["cache"]["hit"] is True
    assert again["memory"]["used"] == first["memory"]["used"]
    assert again["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
    # a memory it used changes: the answer given from the old text is not served again
    used = first["memory"]["used"][0]
    assert used in ids
    client.patch(f"/v1/memories/{used}", json={"text": ALICE[ids.index(used)] + " Really."})
    assert ask(client, "What am I allergic to?", memory)["cache"]["hit"] is False
    # another user asking the same gets an answer from their own (no) memories, and a
    # request without memory never gets an answer that was given someone's memories
    assert ask(client, "What am I allergic to?", {"user_id": "carol"})["cache"]["hit"] is False
    assert ask(client, "What am I allergic to?", None)["cache"]["hit"] is False


def test_streaming_carries_the_memories_used(client: TestClient) -> None:
    ids = add_all(client, ALICE[:2], "alice")
    body = {"messages": [{"role": "user", "content": "What is my locker code?"}],
            "max_tokens": 6, "temperature": 0, "stream": True,
            "memory": {"user_id": "alice", "top_k": 1}}  # fmt: skip
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        events = [json.loads(line[6:]) for line in response.iter_lines()
                  if line.startswith("data: ") and line != "data: [DONE]"]  # fmt: skip
    assert events[-1]["memory"]["used"] == [ids[0]]


@pytest.mark.parametrize(
    ("memory", "field"),
    [
        ({"top_k": 0}, "top_k"),
        ({"top_k": 51}, "top_k"),
        ({"mode": "psychic"}, "mode"),
        ({"min_score": 3}, "min_score"),
        ({"user_id": ""}, "user_id"),
        ({"store": "yes"}, "store"),
        ({"remember": True}, "remember"),
        ("alice", "memory"),
    ],
)
def test_bad_memory_fields_get_a_422_naming_them(client: TestClient, memory, field) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "memory": memory}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_memory_needs_a_user_message(client: TestClient) -> None:
    body = {"messages": [{"role": "system", "content": "Be brief."}], "memory": {}}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 422 and "user message" in response.json()["detail"]


def test_an_activation_is_reused_rebuilt_and_let_go(client: TestClient, store: MemOS) -> None:
    ids = add_all(client, ALICE, "alice")
    made = client.post("/v1/activations", json={"user_id": "alice", "memory_ids": ids})
    assert made.status_code == 201, made.text
    activation = made.json()
    assert activation["memory_ids"] == ids and activation["selection"] == "ids"
    assert activation["prefix_tokens"] > 2 * BLOCK
    # filler ends the block on a KV block's edge: every token of it is kept
    assert activation["prefix_tokens"] % BLOCK == 0 and 0 < activation["pad_tokens"] < BLOCK
    assert activation["engine"]["pinned_blocks"] == activation["prefix_tokens"] // BLOCK
    [created] = client.get(f"/v1/memories/{activation['id']}/history").json()["versions"]
    assert created["operation"] == "promote"
    assert created["derived_from"] == [{"id": i, "version": 1} for i in ids]

    reply = ask(client, "What is my cat called?", {"user_id": "alice", "top_k": 2})
    assert reply["memory"]["activation"] == activation["id"]
    assert reply["usage"]["prompt_tokens_details"]["cached_tokens"] >= activation["prefix_tokens"]
    assert set(reply["memory"]["used"]) == set(ids)  # all in the block: nothing extra

    # a source changes: the scheduler's pass renders the block again, derived from it
    client.patch(f"/v1/memories/{ids[0]}", json={"text": "Alice's locker code is 9911."})
    assert client.post("/v1/scheduler/run").json()["moved"]["activation"] == 1
    rebuilt = client.get(f"/v1/activations/{activation['id']}").json()
    assert rebuilt["version"] == 2 and "9911" in rebuilt["text"] and "4821" not in rebuilt["text"]
    current = client.get(f"/v1/memories/{ids[0]}").json()["version"]
    assert {"id": ids[0], "version": current} in rebuilt["sources"]
    assert rebuilt["engine"]["pinned_blocks"] >= 2
    history = client.get(f"/v1/memories/{activation['id']}/history").json()["versions"]
    assert (history[-1]["source"], history[-1]["actor"]) == ("scheduler", "activation.rebuild")

    # the activation is not a plaintext memory: the memory verbs refuse it
    assert client.patch(f"/v1/memories/{activation['id']}", json={"text": "x"}).status_code == 409
    assert client.delete(f"/v1/activations/{activation['id']}").status_code == 204
    assert client.get(f"/v1/activations/{activation['id']}").status_code == 404
    assert client.get("/v1/activations").json()["items"] == []
    engine = client.app.state.chat.backend.engine
    prefix = f"activation:{store.keys.namespace_for(_secret(client))}:{activation['id']}"
    assert engine.prefix_held(prefix) == {"pinned_blocks": 0, "host_blocks": 0}


def test_the_scheduler_promotes_hot_memories_into_an_activation(
    client: TestClient, store: MemOS, ns: str
) -> None:
    ids = add_all(client, ALICE[:12], "alice")  # a block of more than one KV block
    kernel = client.app.state.kernel
    kernel.scheduler.note_used(ns, ids)
    asyncio.run(kernel.scheduler.run_pass(ns))  # activate: used in answers
    for memory_id in ids:
        client.get(f"/v1/memories/{memory_id}")  # read: hot
    report = asyncio.run(kernel.scheduler.run_pass(ns))
    assert report.moved["activation"] == 1, report
    [activation] = client.get("/v1/activations").json()["items"]
    assert activation["selection"] == "hot" and sorted(activation["memory_ids"]) == sorted(ids)
    assert activation["engine"]["pinned_blocks"] >= 1
    history = client.get(f"/v1/memories/{activation['id']}/history").json()["versions"]
    assert (history[0]["source"], history[0]["actor"]) == ("scheduler", "activation.hot")


def test_activation_input_is_checked(client: TestClient) -> None:
    ids = add_all(client, ALICE[:1], "alice")
    bob = add_all(client, BOB[:1], "bob")
    cases = [
        ({"user_id": "alice", "memory_ids": []}, 422, "memory_ids"),
        ({"user_id": "alice", "memory_ids": ["nope"]}, 422, "memory_ids"),
        ({"user_id": "alice", "memory_ids": bob}, 422, "another user"),
        ({"user_id": "alice", "memory_ids": ids, "filters": {}}, 422, "either"),
        ({"user_id": "carol", "filters": {"category": "none"}}, 422, "no served memory"),
        ({"user_id": "alice", "memory_ids": ids, "extra": 1}, 422, "extra"),
        ({"memory_ids": ids}, 422, "user_id or agent_id"),
    ]
    for body, status, words in cases:
        response = client.post("/v1/activations", json=body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["detail"], (body, response.text)
    assert client.get("/v1/activations").json()["items"] == []


def _secret(client: TestClient) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


def test_a_cold_activation_is_demoted_and_let_go(
    tmp_path: Path, sqlite_url: str, embedder, engine, ns: str
) -> None:
    config = tmp_path / "memos.toml"
    config.write_text("[scheduler]\nactivation_cold_after_s = 0.2\n")
    settings = Settings(data_dir=tmp_path / "data", database_url=sqlite_url, config_path=config)
    with MemOS(settings, embedder=embedder) as memos:
        app = create_app(memos, background_jobs=False,
                         chat=ChatService(EmbeddedBackend(engine)))  # fmt: skip
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {api_key(memos, ns)}"
            ids = add_all(client, ALICE, "alice")
            made = client.post("/v1/activations", json={"user_id": "alice", "memory_ids": ids})
            activation = made.json()
            assert activation["engine"]["pinned_blocks"] > 0
            time.sleep(0.3)
            assert client.post("/v1/scheduler/run").json()["moved"]["activation"] == 1
            assert client.get("/v1/activations").json()["items"] == []
            last = client.get(f"/v1/memories/{activation['id']}/history").json()["versions"][-1]
            assert (last["state"], last["source"], last["actor"]) == (
                "archived", "scheduler", "activation.cold",
            )  # fmt: skip
            prefix = f"activation:{ns}:{activation['id']}"
            assert engine.prefix_held(prefix) == {"pinned_blocks": 0, "host_blocks": 0}
            # chat no longer starts with it
            reply = ask(client, "What is my cat called?", {"user_id": "alice", "top_k": 2})
            assert reply["memory"]["activation"] is None


def test_a_block_answers_only_within_the_requests_scope(client: TestClient) -> None:
    items = [{"text": "Alice's locker code is 4821.", "user_id": "alice", "agent_id": "desk",
              "session_id": "s1"},
             {"text": "Bob's locker code is 7305.", "user_id": "bob", "agent_id": "desk",
              "session_id": "s2"}]  # fmt: skip
    ids = client.post("/v1/memories/batch", json={"items": items}).json()["ids"]
    made = client.post("/v1/activations", json={"agent_id": "desk", "memory_ids": ids})
    assert made.status_code == 201, made.text
    block = made.json()["id"]
    # the agent's whole scope: the block stands in for retrieval
    reply = ask(client, "What is the locker code?", {"agent_id": "desk"})
    assert reply["memory"]["activation"] == block
    # a narrower scope than the block's: retrieval, within it
    for scope, allowed in (({"session_id": "s2"}, {ids[1]}), ({"user_id": "alice"}, {ids[0]})):
        reply = ask(client, "What is the locker code?", {"agent_id": "desk", "top_k": 1, **scope})
        assert reply["memory"]["activation"] is None, scope
        assert set(reply["memory"]["used"]) <= allowed and reply["memory"]["used"], scope
    # a score floor the block cannot answer for: retrieval too
    reply = ask(client, "What is the locker code?", {"agent_id": "desk", "min_score": 0.99})
    assert reply["memory"]["activation"] is None and reply["memory"]["used"] == []


def test_an_erased_memory_leaves_the_block_its_kv_and_the_answers(
    client: TestClient, store: MemOS
) -> None:
    ids = add_all(client, ALICE[:3], "alice")
    secret = ids[0]  # "Alice's locker code is 4821."
    activation = client.post("/v1/activations",
                             json={"user_id": "alice", "memory_ids": ids}).json()  # fmt: skip
    question = "What is Alice's locker code?"
    body = {"messages": [{"role": "user", "content": question}], "max_tokens": 12,
            "temperature": 0, "memory": {"user_id": "alice"}}  # fmt: skip
    before = client.post("/v1/chat/completions", json=body).json()
    assert before["memory"]["activation"] == activation["id"] and secret in before["memory"]["used"]
    engine = client.app.state.chat.backend.engine
    prefix = f"activation:{store.keys.namespace_for(_secret(client))}:{activation['id']}"
    assert engine.prefix_held(prefix)["pinned_blocks"] > 0

    erased = client.delete(f"/v1/memories/{secret}", params={"erase": "true"})
    assert erased.status_code == 200, erased.text
    assert set(erased.json()["erased"]) == {secret, activation["id"]}
    # the block is gone from the store, its history and the engine's device and host tiers
    assert client.get(f"/v1/activations/{activation['id']}").status_code == 404
    history = client.get(f"/v1/memories/{activation['id']}/history").json()["versions"]
    assert [(v["operation"], v["text"]) for v in history] == [("purge", None)]
    assert engine.prefix_held(prefix) == {"pinned_blocks": 0, "host_blocks": 0}
    # the same question again: no cached answer, no block, no erased memory in the context
    after = client.post("/v1/chat/completions", json=body).json()
    assert after["memory"]["activation"] is None and secret not in after["memory"]["used"]
    assert "4821" not in after["choices"][0]["message"]["content"]
    hits = client.post("/v1/memories/search", json={"query": question}).json()["results"]
    assert all("4821" not in h["text"] for h in hits)
