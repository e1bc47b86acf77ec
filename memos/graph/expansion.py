"""Graph search's walk: from the memories a query found (the seeds), mass spreads along
the graph's edges for a few hops — a personalized PageRank cut off after ``hops`` steps —
so that memories linked to the seeds through entities, facts and similar memories score
too: the owner of the service that X depends on is two facts away from a memory about X.

Only facts that hold at the time asked about carry mass (a superseded owner leads
nowhere); an entity passes its mass to the memories asserting what holds for it and to
its most recent mentions, never to all of a hub's thousands."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from .namespace_graph import NamespaceGraph, entity_node, memory_node
from .timeline import Fact

MEMORY, ENTITY = "memory:", "entity:"


@dataclass(frozen=True)
class Walk:
    world: datetime  # facts must hold at this world time ...
    known_at: datetime  # ... as known at this time
    damping: float = 0.5  # the share of a node's mass that moves on at each hop
    hops: int = 3
    fanout: int = 48  # the most recent mentions an entity passes mass to


def spread(graph: NamespaceGraph, seeds: dict[str, float], walk: Walk) -> dict[str, float]:
    """Each memory's share of the mass after the walk from ``seeds`` (memory id -> weight)."""
    total = sum(seeds.values())
    if total <= 0:
        return {}
    mass = {memory_node(m): w / total for m, w in seeds.items() if memory_node(m) in graph.graph}
    score: dict[str, float] = defaultdict(float)
    for _ in range(walk.hops):
        moved: dict[str, float] = defaultdict(float)
        for node, m in mass.items():
            neighbours = list(_neighbours(graph, node, walk))
            if not neighbours:
                score[node] += m
                continue
            score[node] += m * (1 - walk.damping)
            weight_sum = sum(w for _, w in neighbours)
            for other, w in neighbours:
                moved[other] += m * walk.damping * w / weight_sum
        mass = moved
    for node, m in mass.items():
        score[node] += m
    return {node[len(MEMORY) :]: s for node, s in score.items() if node.startswith(MEMORY)}


def holds(graph: NamespaceGraph, fact: Fact, world: datetime, known_at: datetime) -> bool:
    span = graph.state_at(fact.subject, fact.predicate, world, known_at)
    return span is not None and span.fact.id == fact.id


def superseded(
    graph: NamespaceGraph, memory_ids: list[str], world: datetime, known_at: datetime
) -> set[str]:
    """The memories that asserted facts (known at ``known_at``) none of which holds at
    ``world``: what they say was true once, or not yet, or was corrected."""
    out = set()
    for memory_id in memory_ids:
        facts = [f for f in graph.facts_of_memory(memory_id) if f.known_at(known_at)]
        if facts and not any(holds(graph, f, world, known_at) for f in facts):
            out.add(memory_id)
    return out


def _neighbours(graph: NamespaceGraph, node: str, walk: Walk) -> Iterator[tuple[str, float]]:
    g = graph.graph
    if node.startswith(MEMORY):
        memory_id = node[len(MEMORY) :]
        for _, target, data in g.out_edges(node, data=True):
            if data["kind"] == "mentions":
                yield target, 1.0
            elif data["kind"] == "related":
                yield target, data.get("weight") or 1.0
        for source, _, data in g.in_edges(node, data=True):
            if data["kind"] == "related":
                yield source, data.get("weight") or 1.0
        for fact in graph.facts_of_memory(memory_id):
            if holds(graph, fact, walk.world, walk.known_at):
                yield entity_node(fact.subject), 1.0
                if fact.object is not None:
                    yield entity_node(fact.object), 1.0
        return
    entity_id = node[len(ENTITY) :]
    for predicate in graph.predicates(entity_id):  # what holds for it, and who said so
        span = graph.state_at(entity_id, predicate, walk.world, walk.known_at)
        if span is None:
            continue
        if span.fact.object is not None:
            yield entity_node(span.fact.object), 1.0
        if span.fact.memory_id is not None:
            yield memory_node(span.fact.memory_id), 1.0
    for fact in graph.facts_about_object(entity_id):  # facts naming it as their object
        if holds(graph, fact, walk.world, walk.known_at):
            yield entity_node(fact.subject), 1.0
    mentions = [s for s, _, data in g.in_edges(node, data=True) if data["kind"] == "mentions"]
    for source in mentions[-walk.fanout :]:
        yield source, 1.0
