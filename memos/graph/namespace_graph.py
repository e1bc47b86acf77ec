"""One namespace's graph in memory: a networkx multigraph whose nodes are entities and
memories, with a fact edge from each fact's subject to its object (or to its memory for a
literal value), a supersedes edge between the memories whose facts supersede each other,
and the stored links (a memory mentions an entity, is related to a similar memory, ...).
Supersedes edges are derived from the facts (timeline.py), never stored, so the graph
rebuilt from the same rows is the same graph."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import networkx as nx

from .timeline import Fact, Span, history, state_at

END_OF_TIME = datetime.max.replace(tzinfo=UTC)
Edge = tuple[str, str, str]  # source node, target node, key
PREDICATE_SAMPLE = 32


@dataclass(frozen=True)
class Entity:
    id: str
    name: str
    type: str
    aliases: tuple[str, ...] = ()
    merged_into: str | None = None  # merged into that entity: found by id only

    @classmethod
    def of_row(cls, row: Any) -> Entity:
        return cls(row.id, row.name, row.type, tuple(row.aliases), row.merged_into)


@dataclass(frozen=True)
class Link:
    """A stored typed edge between two nodes, made on behalf of ``memory_id``."""

    id: str
    kind: str
    source: str
    target: str
    weight: float | None
    memory_id: str | None


LINK_KINDS = ("mentions", "related", "derived_from", "depends_on", "part_of")


def entity_node(entity_id: str) -> str:
    return f"entity:{entity_id}"


def memory_node(memory_id: str) -> str:
    return f"memory:{memory_id}"


def _entity_id(node: str) -> str:
    return node.removeprefix("entity:")


def _memory_id(node: str) -> str:
    return node.removeprefix("memory:")


def name_key(name: str) -> str:
    """A name as lookups compare it: case and surrounding space folded."""
    return " ".join(name.split()).casefold()


class NamespaceGraph:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.graph = nx.MultiDiGraph()
        self.entities: dict[str, Entity] = {}
        self._by_name: dict[str, str] = {}  # folded name or alias -> entity id
        # which entity a name means when two claim it (stored before collisions were
        # refused): a name before an alias, then the smaller id, whatever the load order
        self._claim: dict[str, tuple[int, str]] = {}
        self._facts: dict[tuple[str, str], list[Fact]] = defaultdict(list)
        self._fact_by_id: dict[str, Fact] = {}
        self._predicates: dict[str, set[str]] = defaultdict(set)  # subject -> its predicates
        self._fact_edges: dict[str, Edge] = {}  # fact id -> its edge
        self._supersedes: dict[tuple[str, str], list[Edge]] = defaultdict(list)
        # each (subject, predicate)'s history as known now, and each live fact's span in
        # it: questions asked at the present knowledge are answered from these
        self._known_now: dict[tuple[str, str], list[Span]] = {}
        self._span_now: dict[str, Span] = {}
        self._last_change = datetime.min.replace(tzinfo=UTC)
        # the facts whose span as known now is open (no end), per entity they name, and
        # the latest world time any fact starts or ends at: past it, open means holding
        self._open: dict[str, set[str]] = defaultdict(set)
        self._world_edge = datetime.min.replace(tzinfo=UTC)
        self._facts_of_memory: dict[str, list[str]] = defaultdict(list)
        self._facts_on_object: dict[str, list[str]] = defaultdict(list)  # entity -> fact ids
        self._stated_by: dict[str, list[str]] = defaultdict(list)  # predicate -> memories
        self._links: dict[str, Link] = {}
        self._links_of_memory: dict[str, list[str]] = defaultdict(list)
        self._mentioned_by: dict[str, list[str]] = defaultdict(list)  # entity -> memories

    # entities ---------------------------------------------------------------------------

    def add_entity(self, entity: Entity) -> None:
        self.entities[entity.id] = entity
        names = [(entity.name, 0), *((alias, 1) for alias in entity.aliases)]
        for name, rank in names:
            key = name_key(name)
            if entity.merged_into is not None:
                if self._by_name.get(key) == entity.id:
                    del self._by_name[key], self._claim[key]
                continue
            claim = (rank, entity.id)
            if key not in self._claim or claim <= self._claim[key]:
                self._by_name[key], self._claim[key] = entity.id, claim
        self.graph.add_node(entity_node(entity.id), kind="entity", name=entity.name,
                            type=entity.type, aliases=list(entity.aliases))  # fmt: skip

    def find(self, name_or_id: str) -> Entity | None:
        """The entity with this id, name or alias."""
        entity_id = name_or_id if name_or_id in self.entities else None
        entity_id = entity_id or self._by_name.get(name_key(name_or_id))
        return self.entities.get(entity_id) if entity_id else None

    # facts ------------------------------------------------------------------------------

    def add_facts(self, facts: Iterable[Fact]) -> None:
        """Add facts, then derive the supersedes edges of each (subject, predicate) they
        touch once (a namespace's whole history loads in one call)."""
        touched: dict[tuple[str, str], list[Fact]] = defaultdict(list)
        for fact in facts:
            if fact.id in self._fact_by_id:
                continue  # known already (a replica may hear of a fact twice)
            self._add(fact)
            touched[(fact.subject, fact.predicate)].append(fact)
        for (subject, predicate), added in touched.items():
            if len(added) == 1 and self._is_newest(added[0]):
                self._append_span(added[0])  # the usual case: a later fact, in one step
            else:
                self._link_supersessions(subject, predicate)

    def _is_newest(self, fact: Fact) -> bool:
        """Whether ``fact`` (live) comes after every live fact of its (subject,
        predicate) in world order, so that its history only grows at the end."""
        spans = self._known_now.get((fact.subject, fact.predicate), [])
        if fact.retired_at is not None:
            return False
        if not spans:
            return len(self._facts[(fact.subject, fact.predicate)]) == 1
        last = spans[-1].fact
        return (fact.valid_from, fact.recorded_at) >= (last.valid_from, last.recorded_at)

    def _append_span(self, fact: Fact) -> None:
        """What ``_link_supersessions`` would make of a history that gains ``fact`` at
        its end: the previous last span may end where it begins, and supersede it."""
        key = (fact.subject, fact.predicate)
        spans = self._known_now.setdefault(key, [])
        if spans:
            before = spans[-1]
            ends = before.fact.valid_until
            if ends is None or fact.valid_from < ends:
                ended = Span(before.fact, fact.valid_from, fact.id)
                spans[-1] = ended
                self._span_now[before.fact.id] = ended
                for entity in (before.fact.subject, before.fact.object):
                    if entity is not None:
                        self._open[entity].discard(before.fact.id)
                self._link_supersession(key, before.fact, fact)
        span = Span(fact, fact.valid_until, None)
        spans.append(span)
        self._span_now[fact.id] = span
        if fact.valid_until is None:
            for entity in (fact.subject, fact.object):
                if entity is not None:
                    self._open[entity].add(fact.id)

    def _add(self, fact: Fact) -> None:
        self._world_edge = max(
            self._world_edge, fact.valid_from, fact.valid_until or fact.valid_from
        )
        self._last_change = max(
            self._last_change, fact.recorded_at, fact.retired_at or fact.recorded_at
        )
        self._facts[(fact.subject, fact.predicate)].append(fact)
        self._predicates[fact.subject].add(fact.predicate)
        self._fact_by_id[fact.id] = fact
        if fact.object is not None:
            self._facts_on_object[fact.object].append(fact.id)
        if fact.memory_id is not None:
            self._facts_of_memory[fact.memory_id].append(fact.id)
            if len(self._stated_by[fact.predicate]) < PREDICATE_SAMPLE:
                self._stated_by[fact.predicate].append(fact.memory_id)
            self.graph.add_node(memory_node(fact.memory_id), kind="memory")
        target = (
            entity_node(fact.object) if fact.object is not None
            else memory_node(fact.memory_id) if fact.memory_id is not None
            else None
        )  # fmt: skip
        if target is not None and fact.retired_at is None:
            source = entity_node(fact.subject)
            self.graph.add_edge(source, target, key=fact.id, kind="fact",
                                predicate=fact.predicate, value=fact.value)  # fmt: skip
            self._fact_edges[fact.id] = (source, target, fact.id)

    def retire(self, fact_ids: list[str], at: datetime) -> None:
        touched = set()
        for fact_id in fact_ids:
            old = self._fact_by_id[fact_id]
            self._last_change = max(self._last_change, at)
            self._span_now.pop(fact_id, None)
            retired = replace(old, retired_at=at)
            facts = self._facts[(old.subject, old.predicate)]
            facts[facts.index(old)] = retired
            self._fact_by_id[fact_id] = retired
            edge = self._fact_edges.pop(fact_id, None)
            if edge is not None:
                self.graph.remove_edge(*edge)
            touched.add((old.subject, old.predicate))
        for subject, predicate in touched:
            self._link_supersessions(subject, predicate)

    def history(self, subject: str, predicate: str, known_at: datetime) -> list[Span]:
        if known_at >= self._last_change:
            return list(self._known_now.get((subject, predicate), ()))
        return history(self._facts.get((subject, predicate), ()), known_at)

    def state_at(
        self, subject: str, predicate: str, world: datetime, known_at: datetime
    ) -> Span | None:
        if known_at >= self._last_change:
            for span in reversed(self._known_now.get((subject, predicate), ())):
                if span.holds_at(world):
                    return span
            return None
        return state_at(self._facts.get((subject, predicate), ()), world, known_at)

    def span_now(self, fact_id: str) -> Span | None:
        """A live fact's place in its history as known now."""
        return self._span_now.get(fact_id)

    def holding_about(self, entity_id: str, world: datetime, known_at: datetime) -> list[Fact]:
        """The facts that held at ``world`` naming the entity, as subject or object."""
        if known_at >= self._last_change and world >= self._world_edge:
            return [self._fact_by_id[f] for f in self._open.get(entity_id, ())]
        held = [
            span.fact for p in self.predicates(entity_id)
            if (span := self.state_at(entity_id, p, world, known_at)) is not None
        ]  # fmt: skip
        held += [f for f in self.facts_about_object(entity_id) if self.holds(f, world, known_at)]
        return held

    def holds(self, fact: Fact, world: datetime, known_at: datetime) -> bool:
        """Whether ``fact`` is what held for its subject and predicate at ``world``."""
        if known_at >= self._last_change:
            span = self._span_now.get(fact.id)
            return span is not None and span.holds_at(world)
        span = self.state_at(fact.subject, fact.predicate, world, known_at)
        return span is not None and span.fact.id == fact.id

    def predicates(self, subject: str) -> list[str]:
        return sorted(self._predicates.get(subject, ()))

    def fact(self, fact_id: str) -> Fact | None:
        return self._fact_by_id.get(fact_id)

    def facts_of_memory(self, memory_id: str) -> list[Fact]:
        """Every fact the memory asserted, retired ones included."""
        return [self._fact_by_id[f] for f in self._facts_of_memory.get(memory_id, ())]

    def stated_by(self, predicate: str) -> list[str]:
        """The first memories to assert a fact with this predicate (a sample of how the
        predicate is put in words)."""
        return list(self._stated_by.get(predicate, ()))

    def facts_about_object(self, entity_id: str) -> list[Fact]:
        """Every fact whose object is the entity, retired ones included."""
        return [self._fact_by_id[f] for f in self._facts_on_object.get(entity_id, ())]

    # links ------------------------------------------------------------------------------

    def add_links(self, links: Iterable[Link]) -> None:
        links = [link for link in links if link.id not in self._links]
        nodes = {node for link in links for node in (link.source, link.target)}
        self.graph.add_nodes_from(
            (node, {"kind": node.split(":", 1)[0]}) for node in nodes if node not in self.graph
        )
        self.graph.add_edges_from(
            (link.source, link.target, link.id, {"kind": link.kind, "weight": link.weight})
            for link in links
        )
        for link in links:
            self._links[link.id] = link
            if link.memory_id is not None:
                self._links_of_memory[link.memory_id].append(link.id)
            if link.kind == "mentions":
                self._mentioned_by[_entity_id(link.target)].append(_memory_id(link.source))

    def drop_links(self, link_ids: Iterable[str]) -> None:
        for link_id in link_ids:
            link = self._links.pop(link_id, None)
            if link is None:
                continue
            self.graph.remove_edge(link.source, link.target, key=link.id)
            if link.memory_id is not None:
                self._links_of_memory[link.memory_id].remove(link.id)
            if link.kind == "mentions":
                self._mentioned_by[_entity_id(link.target)].remove(_memory_id(link.source))

    def link(self, link_id: str) -> Link | None:
        return self._links.get(link_id)

    def links_of_memory(self, memory_id: str) -> list[Link]:
        return [self._links[i] for i in self._links_of_memory.get(memory_id, ())]

    def mentioned_by(self, entity_id: str, last: int) -> list[str]:
        """The ``last`` memories to mention the entity, oldest first."""
        return self._mentioned_by.get(entity_id, [])[-last:]

    def mentions_of(self, memory_id: str) -> list[str]:
        """The entities a memory mentions."""
        return [_entity_id(link.target) for link in self.links_of_memory(memory_id)
                if link.kind == "mentions"]  # fmt: skip

    def _link_supersessions(self, subject: str, predicate: str) -> None:
        """The supersedes edges of one (subject, predicate), as known now: from the
        memory of each fact to the memory of the fact it ended."""
        edges = self._supersedes[(subject, predicate)]
        for edge in edges:
            self.graph.remove_edge(*edge)
        edges.clear()
        for span in self._known_now.get((subject, predicate), ()):
            for entity in (span.fact.subject, span.fact.object):
                if entity is not None:
                    self._open[entity].discard(span.fact.id)
        spans = history(self._facts.get((subject, predicate), ()), END_OF_TIME)
        self._known_now[(subject, predicate)] = spans
        for span in spans:
            self._span_now[span.fact.id] = span
            if span.valid_to is None:
                for entity in (span.fact.subject, span.fact.object):
                    if entity is not None:
                        self._open[entity].add(span.fact.id)
        for span in spans:
            newer = self._fact_by_id.get(span.superseded_by or "")
            if newer is not None:
                self._link_supersession((subject, predicate), span.fact, newer)

    def _link_supersession(self, key: tuple[str, str], older: Fact, newer: Fact) -> None:
        """The supersedes edge from the memory of ``newer`` to that of ``older``."""
        if newer.memory_id is None or older.memory_id is None:
            return
        edge = (memory_node(newer.memory_id), memory_node(older.memory_id),
                f"supersedes:{older.id}")  # fmt: skip
        self.graph.add_edge(*edge, kind="supersedes", fact=older.id, by=newer.id)
        self._supersedes[key].append(edge)

    # views ------------------------------------------------------------------------------

    def view(
        self, world: datetime, known_at: datetime, kinds: frozenset[str] = frozenset(),
        include_superseded: bool = False,
    ) -> nx.MultiDiGraph:  # fmt: skip
        """The graph as it stood at ``world`` (as known at ``known_at``): fact edges that
        held then (all known ones with ``include_superseded``), links, and derived
        supersedes edges; only edges whose kind or predicate is in ``kinds``, if given."""

        def keep(source: str, target: str, key: str) -> bool:
            data = self.graph.edges[source, target, key]
            if kinds and data["kind"] not in kinds and data.get("predicate") not in kinds:
                return False
            if data["kind"] != "fact":
                return True
            fact = self._fact_by_id[key]
            if not fact.known_at(known_at):
                return False
            return include_superseded or self.holds(fact, world, known_at)

        return nx.subgraph_view(self.graph, filter_edge=keep)

    def node_link(self, graph: nx.MultiDiGraph | None = None) -> dict[str, Any]:
        """The whole graph (or a view of it) as node-link JSON, in a stable order."""
        data = nx.node_link_data(self.graph if graph is None else graph, edges="edges")
        data["nodes"] = sorted(data["nodes"], key=lambda n: n["id"])
        data["edges"] = sorted(data["edges"], key=lambda e: (e["source"], e["target"], e["key"]))
        return data
