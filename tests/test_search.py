"""Semantic search: ranking, min score, every filter, and the exact / approximate paths."""

from __future__ import annotations

from datetime import timedelta

import pytest

from memos import retrieval
from memos.core import MemOS
from memos.errors import InvalidInputError
from memos.memcube.filters import MemoryFilter
from memos.memcube.models import utcnow
from memos.records import NewMemory

FACTS = [
    NewMemory("Alice is allergic to peanuts.", user_id="alice", agent_id="health",
              session_id="s1", category="health", tags=("allergy", "food")),
    NewMemory("Alice drinks green tea every morning.", user_id="alice", agent_id="diet",
              session_id="s2", category="preference", tags=("food",)),
    NewMemory("Bob is allergic to cats.", user_id="bob", agent_id="health",
              session_id="s3", category="health", tags=("allergy",)),
    NewMemory("Bob's favourite language is Rust.", user_id="bob", agent_id="code",
              session_id="s4", category="preference", tags=("work",)),
]  # fmt: skip


@pytest.fixture
def facts(memos: MemOS, ns: str) -> dict[str, str]:
    results = memos.add_batch(FACTS, namespace=ns)
    return {r.memory.text: r.memory.id for r in results}


def _texts(hits) -> list[str]:
    return [h.memory.text for h in hits]


def test_most_similar_comes_first(memos: MemOS, ns: str, facts: dict) -> None:
    hits = memos.search("what food allergies does alice have", namespace=ns, top_k=2)
    assert hits[0].memory.text == "Alice is allergic to peanuts."
    assert hits[0].score > hits[1].score
    assert len(memos.search("allergy", namespace=ns, top_k=10)) == 4


def test_min_score_drops_weak_matches(memos: MemOS, ns: str, facts: dict) -> None:
    hits = memos.search("Alice is allergic to peanuts", namespace=ns, min_score=0.9)
    assert _texts(hits) == ["Alice is allergic to peanuts."]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (MemoryFilter(user_id="bob"), {"Bob is allergic to cats.", "Bob's favourite language is Rust."}),
        (MemoryFilter(agent_id="health"), {"Alice is allergic to peanuts.", "Bob is allergic to cats."}),
        (MemoryFilter(session_id="s2"), {"Alice drinks green tea every morning."}),
        (MemoryFilter(category="preference"), {"Alice drinks green tea every morning.",
                                               "Bob's favourite language is Rust."}),
        (MemoryFilter(tags=("allergy", "food")), {"Alice is allergic to peanuts."}),
        (MemoryFilter(tags=("work",)), {"Bob's favourite language is Rust."}),
        (MemoryFilter(kind="plaintext", user_id="alice", category="health"),
         {"Alice is allergic to peanuts."}),
        (MemoryFilter(kind="activation"), set()),
        (MemoryFilter(user_id="nobody"), set()),
    ],
)  # fmt: skip
def test_each_filter_narrows_search_and_list(
    memos: MemOS, ns: str, facts: dict, flt: MemoryFilter, expected: set[str]
) -> None:
    assert set(_texts(memos.search("allergy food tea rust", namespace=ns, filters=flt))) == expected
    assert {m.text for m in memos.list(namespace=ns, filters=flt).items} == expected


def test_time_range_filter(memos: MemOS, ns: str, facts: dict) -> None:
    now = utcnow()
    assert len(memos.search("x", namespace=ns, filters=MemoryFilter(created_before=now))) == 4
    future = MemoryFilter(created_after=now + timedelta(seconds=1))
    assert memos.search("x", namespace=ns, filters=future) == []
    window = MemoryFilter(created_after=now - timedelta(hours=1), created_before=now)
    assert len(memos.list(namespace=ns, filters=window).items) == 4


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MemoryFilter(kind="video"), "kind"),
        (lambda: MemoryFilter(created_after=utcnow(), created_before=utcnow() - timedelta(1)),
         "earlier"),
        (lambda: MemoryFilter(created_after=utcnow().replace(tzinfo=None)), "time zone"),
    ],
)  # fmt: skip
def test_bad_filters_are_rejected(build, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        build()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": ""}, "query must not be empty"),
        ({"query": "x", "top_k": 0}, "top_k"),
        ({"query": "x", "top_k": 100_000}, "top_k"),
        ({"query": "x", "min_score": 3}, "min_score"),
    ],
)
def test_bad_search_input_is_rejected(memos: MemOS, ns: str, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        memos.search(namespace=ns, **kwargs)


def test_broad_filters_use_the_index_and_still_find_top_k(
    memos: MemOS, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Force the approximate path: the filter matches more memories than the exact limit.
    monkeypatch.setattr(retrieval, "EXACT_SEARCH_LIMIT", 5)
    items = [NewMemory(f"server {i} runs service {i % 7}", user_id="a" if i % 3 else "b")
             for i in range(60)]  # fmt: skip
    memos.add_batch(items, namespace=ns)
    hits = memos.search("server 10 runs service 3", namespace=ns, top_k=8,
                        filters=MemoryFilter(user_id="b"))  # fmt: skip
    assert len(hits) == 8
    assert all(h.memory.user_id == "b" for h in hits)
    assert hits[0].memory.text == "server 9 runs service 2" or hits[0].score >= hits[-1].score


def test_exact_and_approximate_paths_agree(memos: MemOS, ns: str) -> None:
    items = [NewMemory(f"ticket {i}: the {w} fails on startup", user_id="u")
             for i, w in enumerate(["parser", "cache", "router", "indexer", "scheduler"] * 8)]  # fmt: skip
    memos.add_batch(items, namespace=ns)
    query = "the cache fails on startup"
    exact = memos.search(query, namespace=ns, top_k=5, filters=MemoryFilter(user_id="u"))
    approx = memos.search(query, namespace=ns, top_k=5)
    assert [h.memory.id for h in exact] == [h.memory.id for h in approx]
    assert [round(h.score, 4) for h in exact] == [round(h.score, 4) for h in approx]


def test_exact_search_mode_ranks_like_hnsw_and_tracks_deletes(settings, embedder, ns: str) -> None:
    from dataclasses import replace

    store = MemOS(replace(settings, search_mode="exact"), embedder=embedder)
    try:
        ids = {r.memory.text: r.memory.id for r in store.add_batch(FACTS, namespace=ns)}
        assert store.indexes.get(ns).exact
        hits = store.search("what food allergies does alice have", namespace=ns, top_k=4)
        assert hits[0].memory.text == "Alice is allergic to peanuts."
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        store.delete(ids["Alice is allergic to peanuts."], namespace=ns)
        hits = store.search("what food allergies does alice have", namespace=ns, top_k=4)
        assert "Alice is allergic to peanuts." not in _texts(hits) and len(hits) == 3
    finally:
        store.close()
