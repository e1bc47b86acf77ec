"""What graph search learns from the graph for one query (``explore``):

- The walk: from the memories the query found and the entities it names (the seeds),
  mass spreads along the graph for a few hops — a personalized PageRank cut off after
  ``hops`` steps — so that memories linked to the seeds through entities, facts and
  similar memories are found too: the owner of the service that X depends on is two
  hops from X. Only facts that hold at the time asked about carry mass (a superseded
  owner leads nowhere); an entity passes its mass to the memories asserting what holds
  for it and to its latest mentions, never to all of a hub's thousands.
- Which of the memories found only assert facts that no longer (or not yet) hold.
- For each memory, the facts it asserts that hold, each with how close its subject or
  object is to what the query names (the focus: 1 for an entity the query names, less
  for one a fact away), so that the ranking can prefer the memory stating the fact the
  question is about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from .namespace_graph import NamespaceGraph, entity_node, memory_node
from .timeline import Fact

MEMORY, ENTITY = "memory:", "entity:"
NEXT_TO_FOCUS = 0.7  # the focus of an entity one holding fact away from a named one


@dataclass(frozen=True)
class Walk:
    world: datetime  # facts must hold at this world time ...
    known_at: datetime  # ... as known at this time
    damping: float = 0.5  # the share of a node's mass that moves on at each hop
    hops: int = 2
    fanout: int = 16  # the latest mentions an entity passes mass to


@dataclass(frozen=True)
class Exploration:
    reached: dict[str, float]  # memory id -> its share of the walk's mass
    superseded: set[str]  # memories whose facts all no longer (or not yet) hold
    facts: dict[str, list[tuple[str, float]]]  # memory id -> (predicate, focus) that hold


def explore(
    graph: NamespaceGraph, seeds: dict[str, float], named: list[str], walk: Walk, limit: int,
    history: bool = False,
) -> Exploration:  # fmt: skip
    """Walk from ``seeds`` (memory id -> weight) and the ``named`` entities; judge the
    seeds, the ``limit`` memories the walk reached most and those stating what holds for
    the entities in focus. With ``history``, facts that held once count as well."""
    reached = spread(graph, seeds, named, walk)
    best = sorted(reached, key=lambda m: -reached[m])[:limit]
    focus = _focus(graph, named, walk)
    stated = [
        f.memory_id for entity_id in focus
        for f in (_known_about(graph, entity_id, walk) if history
                  else graph.holding_about(entity_id, walk.world, walk.known_at))
        if f.memory_id is not None
    ]  # fmt: skip
    candidates = list(dict.fromkeys([*seeds, *best, *stated]))
    superseded, facts = set(), {}
    for memory_id in candidates:
        asserted = [f for f in graph.facts_of_memory(memory_id) if f.known_at(walk.known_at)]
        holding = [f for f in asserted if graph.holds(f, walk.world, walk.known_at)]
        if asserted and not holding:
            superseded.add(memory_id)
        facts[memory_id] = [
            (f.predicate, max(focus.get(f.subject, 0.0), focus.get(f.object or "", 0.0)))
            for f in (asserted if history else holding)
        ]
    return Exploration({m: reached.get(m, 0.0) for m in candidates}, superseded, facts)


def spread(
    graph: NamespaceGraph, seeds: dict[str, float], named: list[str], walk: Walk
) -> dict[str, float]:
    """Each memory's share of the mass after the walk: the seeds hold one unit between
    them, the named entities another."""
    mass: dict[str, float] = defaultdict(float)
    total = sum(seeds.values())
    for memory_id, weight in seeds.items():
        if total > 0 and memory_node(memory_id) in graph.graph:
            mass[memory_node(memory_id)] += weight / total
    for entity_id in named:
        mass[entity_node(entity_id)] += 1.0 / len(named)
    score: dict[str, float] = defaultdict(float)
    for hop in range(walk.hops):
        moved: dict[str, float] = defaultdict(float)
        for node, m in mass.items():
            if hop == walk.hops - 1 and node.startswith(MEMORY):
                score[node] += m  # what a memory would pass on now ends on entities
                continue
            neighbours = list(_neighbours(graph, node, walk))
            if not neighbours:
                score[node] += m
                continue
            score[node] += m * (1 - walk.damping)
            share = m * walk.damping / sum(w for _, w in neighbours)
            for other, weight in neighbours:
                moved[other] += share * weight
        mass = moved
    for node, m in mass.items():
        score[node] += m
    return {node[len(MEMORY) :]: s for node, s in score.items() if node.startswith(MEMORY)}


def _known_about(graph: NamespaceGraph, entity_id: str, walk: Walk) -> Iterator[Fact]:
    """Every fact known about the entity as its subject, in world order."""
    for predicate in graph.predicates(entity_id):
        for span in graph.history(entity_id, predicate, walk.known_at):
            yield span.fact


def _focus(graph: NamespaceGraph, named: list[str], walk: Walk) -> dict[str, float]:
    focus: dict[str, float] = {}
    for entity_id in named:
        for fact in graph.holding_about(entity_id, walk.world, walk.known_at):
            for other in (fact.subject, fact.object):
                if other is not None:
                    focus.setdefault(other, NEXT_TO_FOCUS)
    focus.update(dict.fromkeys(named, 1.0))
    return focus


def _neighbours(graph: NamespaceGraph, node: str, walk: Walk) -> Iterator[tuple[str, float]]:
    """The nodes mass moves to from ``node``, with their weights."""
    if node.startswith(MEMORY):
        memory_id = node[len(MEMORY) :]
        for entity_id in graph.mentions_of(memory_id):
            yield entity_node(entity_id), 1.0
        for link in graph.links_of_memory(memory_id):
            if link.kind == "related":
                yield link.target, link.weight or 1.0
        for fact in graph.facts_of_memory(memory_id):
            if graph.holds(fact, walk.world, walk.known_at):
                yield entity_node(fact.subject), 1.0
                if fact.object is not None:
                    yield entity_node(fact.object), 1.0
        return
    entity_id = node[len(ENTITY) :]
    # what holds for the entity, and who said so
    for fact in graph.holding_about(entity_id, walk.world, walk.known_at):
        other = fact.object if fact.subject == entity_id else fact.subject
        if other is not None:
            yield entity_node(other), 1.0
        if fact.memory_id is not None:
            yield memory_node(fact.memory_id), 1.0
    # the latest mentions share one unit: most say what no longer holds, or nothing
    mentions = graph.mentioned_by(entity_id, walk.fanout)
    for memory_id in mentions:
        yield memory_node(memory_id), 1.0 / len(mentions)
