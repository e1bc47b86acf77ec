"""MemOSStore, LangGraph's BaseStore over the live service: get, put (insert, new
version, delete), search by prefix, query and filter, list_namespaces with match
conditions and depth, the async forms, and namespace levels as owner fields."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from memos.client import MemOSClient
from memos.integrations.langgraph import MemOSStore
from tests.test_client import service  # noqa: F401  (the live service fixture)


@pytest.fixture
def store(service: tuple[str, str]) -> Iterator[MemOSStore]:  # noqa: F811
    url, key = service
    with MemOSClient(base_url=url, api_key=key) as client:
        yield MemOSStore(client, owner_levels={"user_id": 1})


def test_put_get_search_and_delete(store: MemOSStore) -> None:
    run = f"r{time.monotonic_ns()}"
    alice, bob = ("memories", f"alice-{run}"), ("memories", f"bob-{run}")
    store.put(alice, "seat", {"text": "Alice prefers window seats.", "topic": "travel"})
    store.put(alice, "food", {"text": "Alice is allergic to hazelnuts.", "topic": "health"})
    store.put(bob, "seat", {"text": "Bob prefers aisle seats.", "topic": "travel"})
    item = store.get(alice, "seat")
    assert item is not None and item.value["topic"] == "travel" and item.namespace == alice
    assert store.get(alice, "nothing") is None
    hits = store.search(alice, query="where does she like to sit?", limit=1)
    assert [h.key for h in hits] == ["seat"] and hits[0].score is not None
    assert {h.key for h in store.search(alice)} == {"seat", "food"}
    travel = store.search(("memories",), filter={"topic": "travel"}, limit=100)
    assert {h.value["text"] for h in travel if h.namespace in (alice, bob)} == {
        "Alice prefers window seats.",
        "Bob prefers aisle seats.",
    }
    # a put on an existing key is a new version of the same memory, owned by Alice
    store.put(alice, "seat", {"text": "Alice now prefers aisle seats.", "topic": "travel"})
    again = store.get(alice, "seat")
    assert again is not None and again.value["text"] == "Alice now prefers aisle seats."
    mine = list(store.client.list(user_id=alice[1]))
    assert len(mine) == 2 and {m.version for m in mine} == {1, 2}
    store.delete(alice, "food")
    assert store.get(alice, "food") is None


def test_namespaces_and_async_forms(store: MemOSStore) -> None:
    run = f"n{time.monotonic_ns()}"
    store.put((run, "a", "x"), "k", {"text": "one"})
    store.put((run, "b", "y"), "k", {"text": "two"})
    listed = store.list_namespaces(prefix=(run,))
    assert listed == [(run, "a", "x"), (run, "b", "y")]
    assert store.list_namespaces(prefix=(run,), max_depth=2) == [(run, "a"), (run, "b")]
    assert store.list_namespaces(prefix=(run,), suffix=("y",)) == [(run, "b", "y")]

    async def scenario() -> None:
        await store.aput((run, "c"), "k", {"content": "three"})
        got = await store.aget((run, "c"), "k")
        assert got is not None and got.value == {"content": "three"}
        found = await store.asearch((run,), query="three")
        assert found[0].namespace == (run, "c")
        await store.adelete((run, "c"), "k")
        assert await store.aget((run, "c"), "k") is None

    asyncio.run(scenario())
