"""A memory with an identity beyond its text is a record: the add path stores it once per
identity (owner, session, category, tags, metadata), ``dedupe: false`` (per batch item
too) stores it every time, and the MemScheduler's merge rule, opt-in, fuses only memories
that differ in nothing but wording. A merge is undone by ``unmerge``. The framework
adapters read back what they stored while a scheduler merging everything runs every
fifth of a second."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from litestar.testing import TestClient

from memos.activation import ActivationMemory
from memos.client import AsyncMemOSClient, MemOSClient
from memos.core import MemOS
from memos.integrations.langgraph import MemOSStore
from memos.integrations.openai_agents import MemOSSession
from memos.memcube.filters import MemoryFilter
from memos.records import NewMemory
from memos.scheduler import MemScheduler, SchedulerPolicy
from memos.serve_process import ServeProcess
from tests.conftest import MODEL_CACHE


def merge_everything(memos: MemOS) -> MemScheduler:
    policy = SchedulerPolicy(merge_sources=("*",), merge_min_similarity=0.9)
    return MemScheduler(memos, policy, ActivationMemory(memos, None, policy))


def merged(memos: MemOS, ns: str) -> int:
    return asyncio.run(merge_everything(memos).run_pass(ns)).moved["merge"]


def test_the_same_text_in_two_sessions_is_two_memories(memos: MemOS, ns: str) -> None:
    first = memos.add("yes", namespace=ns, user_id="ana", session_id="s1")
    second = memos.add("yes", namespace=ns, user_id="ana", session_id="s2")
    assert first.created and second.created and first.memory.id != second.memory.id
    for session in ("s1", "s2"):
        page = memos.list(namespace=ns, filters=MemoryFilter(session_id=session))
        assert [m.text for m in page.items] == ["yes"]
    # another tag set or category is another record too
    for extra in ({"tags": ["a"]}, {"category": "notes"}):
        assert memos.add("yes", namespace=ns, user_id="ana", session_id="s1", **extra).created
    # metadata is a record's data, not its identity (records apart by it: dedupe off)
    again = memos.add("yes", namespace=ns, user_id="ana", session_id="s1", metadata={"k": 1})
    assert not again.created and again.memory.id == first.memory.id
    # the twin is the same memory (tags in any order)
    twin = memos.add("yes", namespace=ns, user_id="ana", session_id="s1")
    assert not twin.created and twin.memory.id == first.memory.id
    tagged = memos.add("no", namespace=ns, tags=["a", "b"]).memory
    assert memos.add("no", namespace=ns, tags=["b", "a"]).memory.id == tagged.id


def test_a_record_is_stored_every_time_and_never_a_twin(memos: MemOS, ns: str) -> None:
    one = memos.add("Done.", namespace=ns, session_id="s", dedupe=False)
    two = memos.add("Done.", namespace=ns, session_id="s", dedupe=False)
    assert one.created and two.created and one.memory.id != two.memory.id
    # a deduped add does not land on a record either
    three = memos.add("Done.", namespace=ns, session_id="s")
    assert three.created and three.memory.id not in {one.memory.id, two.memory.id}
    results = memos.add_batch(
        [NewMemory("ok", session_id="s"), NewMemory("ok", session_id="s"),
         NewMemory("ok", session_id="s")],
        namespace=ns, dedupe=[True, True, False],
    )  # fmt: skip
    assert [r.created for r in results] == [True, False, True]
    assert results[0].memory.id == results[1].memory.id != results[2].memory.id


def test_a_batch_items_own_dedupe_is_honoured(client: TestClient) -> None:
    body = {"items": [{"text": "yes", "session_id": "s1", "dedupe": False},
                      {"text": "yes", "session_id": "s1", "dedupe": False}]}  # fmt: skip
    answer = client.post("/v1/memories/batch", json=body)
    assert answer.status_code == 201, answer.text
    out = answer.json()
    assert out["created"] == [True, True] and len(set(out["ids"])) == 2
    # the batch's dedupe is the default of items that do not say
    body = {"dedupe": False, "items": [{"text": "no", "session_id": "s1"},
                                       {"text": "no", "session_id": "s1"},
                                       {"text": "no", "session_id": "s1", "dedupe": True}]}  # fmt: skip
    out = client.post("/v1/memories/batch", json=body).json()
    assert out["created"] == [True, True, True] and len(set(out["ids"])) == 3
    bad = client.post("/v1/memories/batch", json={"items": [{"text": "x", "dedupe": 0}]})
    assert bad.status_code == 422 and "dedupe" in bad.text


def test_merge_fuses_only_what_differs_in_wording(memos: MemOS, ns: str) -> None:
    # LangGraph-like items: one text, two keys (tags and metadata tell them apart)
    for who in ("ana", "bob"):
        memos.add("Parking spot B12", namespace=ns, tags=["lg", f"item:{who}"],
                  metadata={"key": "parking", "who": who}, dedupe=False)  # fmt: skip
    # conversation turns: one text, two positions
    for seq in (0, 2):
        memos.add("yes", namespace=ns, session_id="turns", metadata={"seq": seq}, dedupe=False)
    # the same message in two sessions
    for session in ("s1", "s2"):
        memos.add("See you at noon.", namespace=ns, session_id=session)
    # records with nothing else apart are still records
    for _ in range(2):
        memos.add("Ping.", namespace=ns, session_id="log", dedupe=False)
    # only these two are the same memory but for wording
    twins = [memos.add(text, namespace=ns, user_id="ana", tags=["pref"]).memory
             for text in ("Ana likes green tea.", "Ana likes green tea!")]  # fmt: skip
    assert merged(memos, ns) == 2
    served = {m.id for m in memos.list(namespace=ns, limit=100).items}
    assert not served & {t.id for t in twins} and len(served) == 9
    assert merged(memos, ns) == 0  # a second pass changes nothing


def test_unmerge_restores_the_sources_as_they_were(
    memos: MemOS, ns: str, client: TestClient
) -> None:
    texts = ("The build server is called Orion.", "The build server is called Orion!")
    ids = [memos.add(t, namespace=ns, user_id="ana").memory.id for t in texts]
    listed_before = [m.id for m in memos.list(namespace=ns).items]
    assert merged(memos, ns) == 2
    fused = memos.list(namespace=ns).items[0]
    assert fused.id not in ids
    # a merged source is not rolled back beside its fused memory
    answer = client.post(f"/v1/memories/{ids[0]}/rollback", json={"version": 1})
    assert answer.status_code == 409 and fused.id in answer.json()["detail"]
    answer = client.post(f"/v1/memories/{ids[0]}/unmerge")
    assert answer.status_code == 409 and "not made by merging" in answer.json()["detail"]
    answer = client.post(f"/v1/memories/{fused.id}/unmerge")
    assert answer.status_code == 200, answer.text
    assert [m["id"] for m in answer.json()["memories"]] == ids
    assert [m.id for m in memos.list(namespace=ns).items] == listed_before
    for memory_id, text in zip(ids, texts, strict=True):
        got = memos.get(memory_id, namespace=ns)
        assert (got.text, got.state, got.version) == (text, "generated", 3)
        last = memos.history(memory_id, namespace=ns)[-1]
        assert last.operation == "unmerge" and last.derived_from[0]["id"] == fused.id
    hits = memos.search("what is the build server called?", namespace=ns, mode="vector")
    assert {h.memory.id for h in hits} == set(ids)
    assert client.get(f"/v1/memories/{fused.id}").status_code == 404
    assert client.post(f"/v1/memories/{fused.id}/unmerge").status_code == 404
    assert client.post("/v1/memories/nope/unmerge").status_code == 404


# the adapters' round trips under a scheduler that merges all it may -------------------


@pytest.fixture(scope="module")
def merging_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    work = tmp_path_factory.mktemp("merging-serve")
    config = work / "memos.toml"
    config.write_text('[scheduler]\ninterval_s = 0.2\nmerge_sources = ["*"]\n'
                      "merge_min_similarity = 0.9\n")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOS_")}
    env.update(MEMOS_MODEL_DIR=str(MODEL_CACHE), MEMOS_LLM="off", MEMOS_CONFIG=str(config))
    with ServeProcess(work, env) as server:
        yield server.url, (work / "var" / "bootstrap-key").read_text().strip()


def passes(url: str, key: str, count: int) -> None:
    """Until the scheduler's timer has run ``count`` more passes (and one more on demand)."""

    def done() -> float:
        metrics = httpx.get(f"{url}/metrics").text
        return float(re.search(r"^memos_scheduler_passes_total (\S+)$", metrics, re.M).group(1))

    start = done()
    deadline = time.monotonic() + 30
    while done() < start + count:
        assert time.monotonic() < deadline, "the scheduler's timer does not run"
        time.sleep(0.1)
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.post(f"{url}/v1/scheduler/run", headers=headers).status_code == 200


def test_adapters_read_back_what_they_stored(merging_service: tuple[str, str]) -> None:
    url, key = merging_service
    run = f"r{time.monotonic_ns()}"
    with MemOSClient(base_url=url, api_key=key) as client:
        store = MemOSStore(client)
        for who in ("ana", "bob"):
            store.put((run, "users", who), "parking", {"text": "Spot B12, level 2"})

        async def conversation() -> list[tuple[list, list, list]]:
            async with AsyncMemOSClient(base_url=url, api_key=key) as aclient:
                turns = MemOSSession(f"{run}-turns", aclient, user_id="ana")
                await turns.add_items([{"role": "user", "content": "yes"},
                                       {"role": "assistant", "content": "Done."},
                                       {"role": "user", "content": "yes"}])  # fmt: skip
                pair = [MemOSSession(f"{run}-{n}", aclient, user_id="ana") for n in (1, 2)]
                for session in pair:
                    await session.add_items([{"role": "user", "content": "same message"}])
                passes(url, key, 3)
                return [await s.get_items() for s in (turns, *pair)]

        turns, first, second = asyncio.run(conversation())
        assert [i["content"] for i in turns] == ["yes", "Done.", "yes"]
        assert first == second == [{"role": "user", "content": "same message"}]
        for who in ("ana", "bob"):
            item = store.get((run, "users", who), "parking")
            assert item is not None and item.namespace == (run, "users", who)
        assert store.list_namespaces(prefix=(run,)) == [
            (run, "users", "ana"), (run, "users", "bob"),
        ]  # fmt: skip

