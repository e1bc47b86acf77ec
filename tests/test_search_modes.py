"""Search modes over the graph: vector, hybrid (vector and full-text fused) and graph
(a walk from the seeds, superseded facts left out), each with filters and ``as_of``, on
SQLite and PostgreSQL; and memories joining the graph as they are added."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from memos.core import MemOS
from memos.errors import InvalidInputError
from memos.graph.service import FactInput
from memos.memcube.filters import MemoryFilter
from memos.records import NewMemory


def day(n: int) -> datetime:
    return datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=n)


def owner_note(text: str, who: str, n: int, **kw) -> NewMemory:
    fact = FactInput("Larkspur", "owner", object=who, valid_from=day(n))
    return NewMemory(text, valid_from=day(n), facts=(fact,), **kw)


@pytest.fixture
def larkspur(memos: MemOS, ns: str) -> dict[str, str]:
    """Larkspur's owner changes twice; it depends on Quillfeather, owned by Dana."""
    items = {
        "alice": owner_note("Alice Moreno owns the Larkspur service.", "Alice Moreno", 0,
                            user_id="u1"),
        "bob": owner_note("Larkspur changed hands: Bob Chen is its owner now.", "Bob Chen", 10,
                          user_id="u1"),
        "carol": owner_note("Carol Diaz took over ownership of Larkspur.", "Carol Diaz", 20,
                            user_id="u2"),
        "dep": NewMemory("Larkspur calls Quillfeather for every login.", valid_from=day(1),
                         facts=(FactInput("Larkspur", "depends_on", object="Quillfeather",
                                          valid_from=day(1)),)),
        "dana": NewMemory("Quillfeather is run by Dana Reyes.", valid_from=day(2),
                          facts=(FactInput("Quillfeather", "owner", object="Dana Reyes",
                                           valid_from=day(2)),)),
        "port": NewMemory("The billing gateway listens on port 8443 behind ENG-42.",
                          valid_from=day(3)),
        "noise": NewMemory("Lunch on Friday is tacos at the usual place.", valid_from=day(3)),
    }  # fmt: skip
    results = memos.add_batch(list(items.values()), namespace=ns)
    return {name: r.memory.id for name, r in zip(items, results, strict=True)}


def ids(hits) -> list[str]:
    return [h.memory.id for h in hits]


def test_vector_mode_ranks_by_similarity_and_keeps_every_owner(
    memos: MemOS, ns: str, larkspur: dict[str, str]
) -> None:
    hits = memos.search("Who owns Larkspur?", namespace=ns, top_k=5, mode="vector")
    owners = {larkspur[n] for n in ("alice", "bob", "carol")}
    assert owners <= set(ids(hits))  # a nearest-neighbour search cannot tell which holds
    assert all(h.score == h.similarity for h in hits)


def test_graph_mode_leaves_superseded_memories_out_unless_asked(
    memos: MemOS, ns: str, larkspur: dict[str, str]
) -> None:
    hits = memos.search("Who owns Larkspur?", namespace=ns, top_k=5, mode="graph")
    assert ids(hits)[0] == larkspur["carol"]
    assert larkspur["alice"] not in ids(hits) and larkspur["bob"] not in ids(hits)
    everything = memos.search("Who owns Larkspur?", namespace=ns, top_k=7, mode="graph",
                              include_superseded=True)  # fmt: skip
    assert {larkspur["alice"], larkspur["bob"]} <= set(ids(everything))


def test_as_of_keeps_what_was_true_then_in_every_mode(
    memos: MemOS, ns: str, larkspur: dict[str, str]
) -> None:
    for mode in ("vector", "hybrid", "graph"):
        hits = memos.search("Who owns Larkspur?", namespace=ns, top_k=7, mode=mode,
                            as_of=day(12))  # fmt: skip
        found = set(ids(hits))
        assert larkspur["carol"] not in found, mode  # valid only from day 20
        assert larkspur["bob"] in found, mode
    graph = memos.search("Who owns Larkspur?", namespace=ns, top_k=7, mode="graph",
                         as_of=day(12))  # fmt: skip
    assert ids(graph)[0] == larkspur["bob"] and larkspur["alice"] not in ids(graph)


def test_graph_mode_reaches_a_second_hop(memos: MemOS, ns: str, larkspur: dict[str, str]) -> None:
    query = "Who owns the service that Larkspur depends on?"
    hits = memos.search(query, namespace=ns, top_k=4, mode="graph")
    assert {larkspur["dep"], larkspur["dana"]} <= set(ids(hits))


def test_hybrid_mode_finds_exact_tokens(memos: MemOS, ns: str, larkspur: dict[str, str]) -> None:
    hits = memos.search("ENG-42 8443", namespace=ns, top_k=1, mode="hybrid")
    assert ids(hits) == [larkspur["port"]]
    assert hits[0].similarity is not None and hits[0].score != hits[0].similarity


def test_filters_apply_in_every_mode(memos: MemOS, ns: str, larkspur: dict[str, str]) -> None:
    for mode in ("vector", "hybrid", "graph"):
        hits = memos.search("Who owns Larkspur?", namespace=ns, top_k=7, mode=mode,
                            filters=MemoryFilter(user_id="u1"), include_superseded=True)  # fmt: skip
        assert set(ids(hits)) == {larkspur["alice"], larkspur["bob"]}, mode


def test_deleted_memories_leave_every_mode(memos: MemOS, ns: str, larkspur: dict[str, str]) -> None:
    memos.delete(larkspur["carol"], namespace=ns)
    for mode in ("vector", "hybrid", "graph"):
        found = ids(memos.search("Who owns Larkspur?", namespace=ns, top_k=7, mode=mode))
        assert larkspur["carol"] not in found, mode
    # Carol's fact is retired, so Bob's holds again and graph mode ranks him first.
    graph = memos.search("Who owns Larkspur?", namespace=ns, top_k=3, mode="graph")
    assert ids(graph)[0] == larkspur["bob"]


def test_a_memory_joins_the_graph_with_mentions_related_links_and_facts(
    memos: MemOS, ns: str, larkspur: dict[str, str]
) -> None:
    added = memos.add("Bob Chen says Larkspur's owner Carol Diaz moved the login flow to ENG-42.",
                      namespace=ns).memory  # fmt: skip
    graph = memos.graph.graph(ns)
    mentioned = {graph.entities[link.target.split(":", 1)[1]].name
                 for link in graph.links_of_memory(added.id) if link.kind == "mentions"}  # fmt: skip
    assert {"Bob Chen", "Larkspur", "Carol Diaz", "ENG-42"} <= mentioned
    # the entity Carol Diaz is one node, whether a fact or a text named it
    assert len({e.id for e in graph.entities.values() if e.name == "Carol Diaz"}) == 1
    twin = memos.add("Larkspur changed hands and Bob Chen is the owner now.", namespace=ns,
                     dedupe=False).memory  # fmt: skip
    related = {link.target for link in graph.links_of_memory(twin.id) if link.kind == "related"}
    assert f"memory:{larkspur['bob']}" in related


def test_updating_the_text_relinks_and_the_graph_survives_a_restart(
    memos: MemOS, ns: str, larkspur: dict[str, str]
) -> None:
    memos.update(larkspur["noise"], namespace=ns, text="Erin Walsh joined us for lunch on Friday.")
    graph = memos.graph.graph(ns)
    names = {graph.entities[link.target.split(":", 1)[1]].name
             for link in graph.links_of_memory(larkspur["noise"])}  # fmt: skip
    assert names == {"Erin Walsh", "Friday"}
    before = graph.node_link()
    memos.graph.forget_loaded()
    assert memos.graph.graph(ns).node_link() == before


def test_bad_search_and_fact_input_name_the_field(memos: MemOS, ns: str) -> None:
    with pytest.raises(InvalidInputError, match="mode must be one of"):
        memos.search("x", namespace=ns, mode="magic")
    with pytest.raises(InvalidInputError, match="as_of"):
        memos.search("x", namespace=ns, as_of=datetime(2026, 3, 1))
    with pytest.raises(InvalidInputError, match="include_superseded"):
        memos.search("x", namespace=ns, include_superseded="yes")  # type: ignore[arg-type]
    bad = FactInput("Larkspur", "owner", object="Bob", value="Bob")
    with pytest.raises(InvalidInputError, match=r"facts\[0\]\.object and facts\[0\]\.value"):
        memos.add("x", namespace=ns, facts=[bad])
    with pytest.raises(InvalidInputError, match=r"facts\[0\]\.predicate"):
        memos.add("x", namespace=ns, facts=[FactInput("Larkspur", " ", value="1")])
    assert memos.list(namespace=ns).items == []
