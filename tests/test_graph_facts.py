"""Bi-temporal facts in the graph memory: supersession in order and out of order, state
as of a world time and as known at a recorded time, deleting a memory retires its facts
and a rollback asserts them again, and the graph is the same after a restart, on SQLite
and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from memos.core import MemOS
from memos.errors import InvalidInputError, NotFoundError
from memos.graph import Fact, GraphMemory, MemoryRef, history
from memos.memcube.database import Database
from memos.records import Memory


def day(n: int) -> datetime:
    return datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=n)


@pytest.fixture
def graph(database_url: str):
    db = Database(database_url)
    yield GraphMemory(db)
    db.dispose()


def owner(graph: GraphMemory, ns: str, **when) -> str | None:
    span = graph.state(ns, "Larkspur", **when).get("owner")
    if span is None:
        return None
    return graph.graph(ns).entities[span.fact.object].name


def test_a_later_fact_supersedes_and_keeps_the_earlier_one(graph: GraphMemory, ns: str) -> None:
    first = graph.assert_fact(ns, "Larkspur", "owner", object="Alice", valid_from=day(0),
                              memory=MemoryRef("m-1", 1))  # fmt: skip
    second = graph.assert_fact(ns, "Larkspur", "owner", object="Bob", valid_from=day(10),
                               memory=MemoryRef("m-2", 1))  # fmt: skip
    assert owner(graph, ns) == "Bob"
    assert owner(graph, ns, as_of=day(5)) == "Alice"
    assert owner(graph, ns, as_of=day(-1)) is None
    alice, bob = graph.timeline(ns, "larkspur", "owner")  # names are found folded
    assert alice.fact.id == first.id and alice.valid_to == day(10)
    assert alice.superseded_by == second.id and bob.valid_to is None
    (edge,) = [e for e in graph.node_link(ns)["edges"] if e["kind"] == "supersedes"]
    assert (edge["source"], edge["target"]) == ("memory:m-2", "memory:m-1")
    assert (edge["fact"], edge["by"]) == (first.id, second.id)


def test_a_late_fact_valid_earlier_slots_into_the_history(graph: GraphMemory, ns: str) -> None:
    graph.assert_fact(ns, "Larkspur", "owner", object="Alice", valid_from=day(0))
    graph.assert_fact(ns, "Larkspur", "owner", object="Carol", valid_from=day(20))
    late = graph.assert_fact(ns, "Larkspur", "owner", object="Bob", valid_from=day(10))
    assert owner(graph, ns) == "Carol"  # the latest in the world still holds now
    assert [owner(graph, ns, as_of=day(d)) for d in (5, 15, 25)] == ["Alice", "Bob", "Carol"]
    spans = graph.timeline(ns, "Larkspur", "owner")
    assert [s.valid_to for s in spans] == [day(10), day(20), None]
    assert spans[0].superseded_by == late.id


def test_as_known_at_a_recorded_time(graph: GraphMemory, ns: str) -> None:
    graph.assert_fact(ns, "ENG-42", "status", value="open", valid_from=day(0))
    time.sleep(0.01)
    before_correction = datetime.now(UTC)
    time.sleep(0.01)
    graph.assert_fact(ns, "ENG-42", "status", value="in review", valid_from=day(3))
    status = graph.state(ns, "ENG-42", as_of=day(4))["status"].fact.value
    believed = graph.state(ns, "ENG-42", as_of=day(4), known_at=before_correction)
    assert status == "in review" and believed["status"].fact.value == "open"
    with pytest.raises(NotFoundError):
        graph.state(ns, "ENG-99")


def test_a_correction_from_the_same_instant_wins(graph: GraphMemory, ns: str) -> None:
    wrong = graph.assert_fact(ns, "ENG-7", "priority", value="P1", valid_from=day(2))
    right = graph.assert_fact(ns, "ENG-7", "priority", value="P2", valid_from=day(2))
    assert graph.state(ns, "ENG-7", as_of=day(2))["priority"].fact.id == right.id
    spans = graph.timeline(ns, "ENG-7")
    assert [s.fact.id for s in spans] == [wrong.id, right.id]
    assert spans[0].valid_to == day(2) and spans[0].superseded_by == right.id


def test_a_stated_end_holds_without_a_successor(graph: GraphMemory, ns: str) -> None:
    graph.assert_fact(ns, "Dana", "team", object="Infra", valid_from=day(0), valid_until=day(5))
    assert graph.state(ns, "Dana", as_of=day(4))["team"].valid_to == day(5)
    assert "team" not in graph.state(ns, "Dana", as_of=day(6))


def test_deleting_a_memory_retires_its_facts_and_a_rollback_brings_them_back(
    memos: MemOS, ns: str
) -> None:
    def assert_from(memory: Memory, owner_name: str, from_day: int) -> None:
        memos.graph.assert_fact(ns, "Larkspur", "owner", object=owner_name,
                                valid_from=day(from_day),
                                memory=MemoryRef(memory.id, memory.version))  # fmt: skip

    alice = memos.add("Alice owns Larkspur.", namespace=ns).memory
    bob = memos.add("Bob took over Larkspur.", namespace=ns).memory
    assert_from(alice, "Alice", 0)
    assert_from(bob, "Bob", 10)
    graph = memos.graph
    time.sleep(0.01)
    while_bob = datetime.now(UTC)
    time.sleep(0.01)
    memos.delete(bob.id, namespace=ns)
    assert owner(graph, ns) == "Alice"  # Alice's span runs on again
    assert owner(graph, ns, known_at=while_bob) == "Bob"  # what was believed stays
    assert not [e for e in graph.node_link(ns)["edges"] if e["kind"] == "supersedes"]
    restored = memos.rollback(bob.id, 1, namespace=ns)
    assert owner(graph, ns) == "Bob"
    latest = graph.timeline(ns, "Larkspur")[-1].fact
    assert (latest.memory_id, latest.memory_version) == (bob.id, restored.version)
    graph.forget_loaded()  # and so it is in the database
    assert owner(graph, ns) == "Bob" and owner(graph, ns, as_of=day(5)) == "Alice"
    memos.rollback(bob.id, 1, namespace=ns)  # a live memory's facts are not asserted twice
    assert len(graph.timeline(ns, "Larkspur")) == 2


def test_the_graph_is_the_same_after_a_restart(database_url: str, ns: str) -> None:
    db = Database(database_url)
    try:
        before = GraphMemory(db)
        before.entity(ns, "Bob", type="person", aliases=("@bob", "Robert"))
        before.assert_fact(ns, "Larkspur", "owner", object="@bob", valid_from=day(1),
                           memory=MemoryRef("m-1", 1))  # fmt: skip
        before.assert_fact(ns, "Larkspur", "owner", object="Alice", valid_from=day(9),
                           memory=MemoryRef("m-2", 1))  # fmt: skip
        before.assert_fact(ns, "Larkspur", "port", value="8443", valid_from=day(2))
        with db.unit_of_work() as session:
            retire = before.retire_memory(session, ns, "m-2", datetime.now(UTC))
        assert retire() == 1
        after = GraphMemory(db)  # a new service on the same rows
        assert after.node_link(ns) == before.node_link(ns)
        assert after.timeline(ns, "Larkspur") == before.timeline(ns, "Larkspur")
        assert after.graph(ns).find("robert").name == "Bob"
        assert after.state(ns, "Larkspur")["owner"].fact.object == after.graph(ns).find("Bob").id
    finally:
        db.dispose()


def test_namespaces_do_not_share_entities_or_facts(
    graph: GraphMemory, ns: str, other_ns: str
) -> None:
    graph.assert_fact(ns, "Larkspur", "owner", object="Alice")
    with pytest.raises(NotFoundError):
        graph.state(other_ns, "Larkspur")
    assert graph.node_link(other_ns)["nodes"] == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"object": "A", "value": "x"}, "exactly one of object and value"),
        ({}, "exactly one of object and value"),
        ({"value": "x", "valid_from": datetime(2026, 1, 1)}, "valid_from needs a time zone"),
        ({"value": "x", "valid_from": day(2), "valid_until": day(1)}, "valid_until must be later"),
        ({"value": "x" * 5000}, "value is 5000 characters long"),
        ({"object": "  "}, "object must be a non-empty string"),
    ],
)
def test_bad_facts_are_refused_and_store_nothing(
    graph: GraphMemory, ns: str, kwargs: dict, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        graph.assert_fact(ns, "Larkspur", "owner", **kwargs)
    assert graph.node_link(ns)["nodes"] == []
    graph.forget_loaded()
    assert graph.node_link(ns)["nodes"] == []  # nor in the database


def test_history_is_a_pure_function_of_the_facts() -> None:
    def fact(fid: str, start: int, recorded: int, retired: int | None = None) -> Fact:
        return Fact(fid, "n", "s", "p", None, fid, day(start), None, day(recorded),
                    day(retired) if retired is not None else None, None, None)  # fmt: skip

    facts = [fact("b", 10, 1), fact("a", 0, 2), fact("c", 20, 3, retired=4)]
    assert [(s.fact.id, s.valid_to) for s in history(facts, day(5))] == [
        ("a", day(10)), ("b", None),
    ]  # fmt: skip
    assert [s.fact.id for s in history(facts, day(3))] == ["a", "b", "c"]
    assert [s.fact.id for s in history(facts, day(1))] == ["b"]
    assert history(facts, day(0)) == []  # before anything was known


def test_facts_added_one_at_a_time_make_the_graph_a_load_makes() -> None:
    """The one-step path for a fact that comes last equals recomputing the history:
    spans, open facts and supersedes edges, whatever order the facts come in."""
    import random

    from memos.graph.namespace_graph import NamespaceGraph

    rng = random.Random(30)
    facts = []
    for n in range(200):
        start = day(rng.randint(0, 40))
        until = start + timedelta(days=rng.randint(1, 5)) if rng.random() < 0.3 else None
        facts.append(Fact(f"f{n:03d}", "n", f"s{n % 3}", "p", "o" if n % 2 else None,
                          None if n % 2 else str(n), start, until, day(50 + n), None,
                          f"m{n}", 1))  # fmt: skip
    for ordered in (sorted(facts, key=lambda f: (f.valid_from, f.recorded_at)), facts):
        one_by_one, loaded = NamespaceGraph("n"), NamespaceGraph("n")
        for fact in ordered:
            one_by_one.add_facts([fact])
        loaded.add_facts(ordered)
        later = day(10_000)
        for subject in ("s0", "s1", "s2"):
            assert one_by_one.history(subject, "p", later) == loaded.history(subject, "p", later)
            for when in (day(3), day(20), day(45)):
                assert ({f.id for f in one_by_one.holding_about(subject, when, later)}
                        == {f.id for f in loaded.holding_about(subject, when, later)})  # fmt: skip
        assert one_by_one.holding_about("o", later, later) == loaded.holding_about(
            "o", later, later)  # fmt: skip
        supersedes = [sorted((u, v, k) for u, v, k, d in g.graph.edges(keys=True, data=True)
                             if d["kind"] == "supersedes") for g in (one_by_one, loaded)]  # fmt: skip
        assert supersedes[0] == supersedes[1] and supersedes[0]
