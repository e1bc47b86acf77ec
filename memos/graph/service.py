"""The graph memory's facade: entities, facts and links written to the database and kept
in memory per namespace (loaded from the rows the first time a namespace is used); the
memories that join it as they are added (the entities they mention, the memories they
resemble, the facts they assert); and the questions asked of it: an entity's state now,
at a world time, as known at a recorded time, and its timeline."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import networkx as nx
from sqlalchemy.orm import Session

from memos import validation as check
from memos.errors import ConflictError, InvalidInputError, NotFoundError
from memos.memcube.database import Database
from memos.memcube.graph_rows import (
    add_edges,
    add_facts,
    claim_entities,
    graph_namespaces,
    has_live_facts,
    last_retired_facts,
    load_edges,
    load_entities,
    load_facts,
    move_entity,
    retire_edges,
    retire_facts,
    rows_by_id,
    update_entity,
)
from memos.memcube.models import GraphEdge, GraphEntity, GraphFact, is_served, utcnow
from memos.memcube.repository import CubeRepository

from .expansion import Exploration, Walk, explore
from .namespace_graph import (
    Entity,
    Link,
    NamespaceGraph,
    entity_node,
    memory_node,
    name_key,
)
from .policy import GraphPolicy
from .timeline import Fact, Span

MAX_NAME_CHARS = 200
MAX_TYPE_CHARS = 64
MAX_PREDICATE_CHARS = 128
MAX_VALUE_CHARS = 4_096
MAX_ALIASES = 32
DEFAULT_ENTITY_TYPE = "entity"
# the kinds of the graph's own edges: a fact's predicate may not pass for one of them
RESERVED_PREDICATES = frozenset({"mentions", "related", "derived_from", "fact", "supersedes"})
MAX_DEPTH = 3
MAX_PATH = 8
MAX_NODES = 1_000
MAX_EDGES = 5_000  # an answer's edges (many facts on one pair would make it megabytes)
MAX_SUBGRAPH_ENTITIES = 32


@dataclass(frozen=True)
class Neighbourhood:
    distance: dict[str, int]  # node -> edges from the entity asked about
    node_link: dict[str, Any]  # those nodes and the edges among them
    truncated: bool  # more nodes were within reach than MAX_NODES, or edges than MAX_EDGES


@dataclass(frozen=True)
class MemoryRef:
    """The memory version that asserts a fact (its provenance)."""

    id: str
    version: int


@dataclass(frozen=True)
class FactInput:
    """A fact as a caller states it: entities by name (or alias, or id)."""

    subject: str
    predicate: str
    object: str | None = None
    value: str | None = None
    valid_from: datetime | None = None  # default: the memory's valid_from, else now
    valid_until: datetime | None = None


@dataclass(frozen=True)
class NewNode:
    """A memory joining the graph: its text's mentions, its similar memories, its facts."""

    id: str
    version: int
    text: str
    valid_from: datetime | None = None
    facts: tuple[FactInput, ...] = ()
    related: tuple[tuple[str, float], ...] = ()  # (memory id, cosine similarity)
    derived_from: tuple[str, ...] = ()  # the memories it was made from (a fuse)


def check_fact(fact: FactInput, where: str = "") -> FactInput:
    """``fact`` validated, or an InvalidInputError naming the field."""
    if not isinstance(fact, FactInput):
        raise InvalidInputError(f"{where or 'fact'} must be a FactInput")
    check.visible_name(fact.subject, MAX_NAME_CHARS, f"{where}subject")
    check.visible_name(fact.predicate, MAX_PREDICATE_CHARS, f"{where}predicate")
    if fact.predicate.strip().casefold() in RESERVED_PREDICATES:
        raise InvalidInputError(
            f"{where}predicate {fact.predicate.strip()!r} is reserved for the graph's own "
            f"edges ({', '.join(sorted(RESERVED_PREDICATES))})"
        )
    if (fact.object is None) == (fact.value is None):
        raise InvalidInputError(f"a fact has exactly one of {where}object and {where}value")
    if fact.object is not None:
        check.visible_name(fact.object, MAX_NAME_CHARS, f"{where}object")
    if fact.value is not None:
        check.bounded_text(fact.value, MAX_VALUE_CHARS, f"{where}value", allow_blank=True)
    valid_from = check.aware_datetime(fact.valid_from, f"{where}valid_from")
    valid_until = check.aware_datetime(fact.valid_until, f"{where}valid_until")
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise InvalidInputError(f"{where}valid_until must be later than {where}valid_from")
    return fact


class GraphMemory:
    def __init__(self, db: Database, policy: GraphPolicy | None = None) -> None:
        self._db = db
        self.policy = policy or GraphPolicy()
        self._rules = self.policy.rules()
        self._graphs: dict[str, NamespaceGraph] = {}
        self._lock = threading.RLock()

    @property
    def lock(self) -> threading.RLock:
        """Held by a writer from before its unit of work until the graph in memory has
        its changes (entities are resolved against what the graph holds)."""
        return self._lock

    def graph(self, namespace: str) -> NamespaceGraph:
        """The namespace's graph, loaded from the database on first use."""
        with self._lock:
            graph = self._graphs.get(namespace)
            if graph is None:
                graph = self._graphs[namespace] = self._load(namespace)
            return graph

    def open_all(self) -> None:
        """Load every namespace's graph now rather than on first use."""
        with self._db.reader() as session:
            namespaces = graph_namespaces(session)
        for namespace in namespaces:
            self.graph(namespace)

    # writes -----------------------------------------------------------------------------

    def entity(
        self, namespace: str, name: str, type: str | None = None, aliases: tuple[str, ...] = ()
    ) -> Entity:
        """The entity with this name or alias, made if there is none; ``type`` and
        ``aliases``, when given, are set on it (an entity found in text has the type of
        the rule that found it until told better)."""
        check.visible_name(name, MAX_NAME_CHARS, "name")
        if type is not None:
            check.bounded_text(type, MAX_TYPE_CHARS, "type")
        if len(aliases) > MAX_ALIASES:
            raise InvalidInputError(f"aliases may hold at most {MAX_ALIASES} names")
        for i, alias in enumerate(aliases):
            check.visible_name(alias, MAX_NAME_CHARS, f"aliases[{i}]")
        with self._lock:
            graph = self.graph(namespace)
            entity, new = _resolve(graph, name, type, aliases)
            _refuse_taken(graph, aliases, entity.id)
            if new:
                resolver = _Resolver(graph, [entity])
                with self._db.unit_of_work() as session:
                    resolver.store(session, namespace, utcnow())
                graph.add_entity(resolver.made[0])
                if resolver.made[0].id == entity.id:
                    return entity
                entity = resolver.made[0]  # another process stored it first: update that
            known = {name_key(a) for a in (entity.name, *entity.aliases)}
            more = {name_key(a): " ".join(a.split()) for a in aliases if name_key(a) not in known}
            changed = replace(
                entity, type=type or entity.type, aliases=entity.aliases + tuple(more.values())
            )
            if len(changed.aliases) > MAX_ALIASES:
                raise InvalidInputError(f"aliases may hold at most {MAX_ALIASES} names")
            if changed != entity:
                with self._db.unit_of_work() as session:
                    update_entity(session, namespace, changed.id, changed.type,
                                  list(changed.aliases))  # fmt: skip
                graph.add_entity(changed)
            return changed

    def merge_entities(self, namespace: str, name: str, into: str) -> Entity:
        """Merge the entity ``name`` (a name, alias or id) into ``into``: the facts and
        links that name it are retired and stated again of ``into``, recorded now (what
        was believed before stays in the timeline); its name and aliases become aliases
        of ``into``; it is found by its id only, as merged."""
        with self._lock:
            graph = self.graph(namespace)
            gone, keep = self._existing(graph, name), self._existing(graph, into)
            if gone.id == keep.id:
                raise InvalidInputError(f"{name!r} and {into!r} are the same entity")
            for entity in (gone, keep):
                if entity.merged_into is not None:
                    raise ConflictError(
                        f"entity {entity.id} was merged into {entity.merged_into} already"
                    )
            known = {name_key(a) for a in (keep.name, *keep.aliases)}
            more = {name_key(a): a for a in (gone.name, *gone.aliases) if name_key(a) not in known}
            merged = replace(keep, aliases=keep.aliases + tuple(more.values()))
            if len(merged.aliases) > MAX_ALIASES:
                raise InvalidInputError(
                    f"the merged entity would have {len(merged.aliases)} aliases, more than "
                    f"{MAX_ALIASES}"
                )
            with self._db.unit_of_work() as session:
                move_entity(session, namespace, (gone.id, entity_node(gone.id)),
                            (keep.id, entity_node(keep.id)), utcnow())  # fmt: skip
                update_entity(session, namespace, keep.id, keep.type, list(merged.aliases))
            self._graphs[namespace] = self._load(namespace)
            return merged

    def assert_fact(
        self, namespace: str, subject: str, predicate: str, *, object: str | None = None,
        value: str | None = None, valid_from: datetime | None = None,
        valid_until: datetime | None = None, memory: MemoryRef | None = None,
    ) -> Fact:  # fmt: skip
        """Record that ``subject``'s ``predicate`` is ``object`` (an entity's name or id)
        or ``value`` from ``valid_from`` (default: now) on. Entities are made as needed.
        An earlier fact on the same (subject, predicate) is superseded from
        ``valid_from``, never deleted."""
        given = check_fact(FactInput(subject, predicate, object, value, valid_from, valid_until))
        now = utcnow()
        with self._lock:
            graph = self.graph(namespace)
            resolver = _Resolver(graph)
            fact = _new_fact(resolver, namespace, given, memory, now, now)
            with self._db.unit_of_work() as session:  # entities and fact, or nothing
                resolver.store(session, namespace, now)
                fact = resolver.fact(fact)
                add_facts(session, [_fact_row(fact)])
            for entity in resolver.made:
                graph.add_entity(entity)
            graph.add_facts([fact])
            return fact

    def assert_facts(self, namespace: str, facts: list[FactInput], memory: MemoryRef) -> list[Fact]:
        """Record facts ``memory`` states, in one unit of work, if that memory is still
        served at that version (else nothing: its text no longer says them)."""
        facts = [check_fact(f, f"facts[{i}].") for i, f in enumerate(facts)]
        with self._lock:
            self.graph(namespace)
            with self._db.unit_of_work() as session:
                cube = CubeRepository(session).get(namespace, memory.id, for_update=True)
                now = utcnow()
                if (
                    cube is None
                    or cube.version != memory.version
                    or not is_served(cube.state, cube.expires_at, now)
                ):
                    return []
                node = NewNode(memory.id, memory.version, "", cube.valid_from, tuple(facts))
                apply = self.ingest(session, namespace, [node], now, links=False)
            return apply()

    def ingest(
        self, session: Session, namespace: str, nodes: list[NewNode], now: datetime,
        links: bool = True,
    ) -> Callable[[], list[Fact]]:  # fmt: skip
        """In the unit of work that stores new memories (holding ``lock``): link each to
        the entities its text mentions and to its similar memories (unless not
        ``links``), and record its facts. Returns what updates the graph in memory once
        the work is committed (it returns the facts)."""
        graph = self.graph(namespace)
        resolver = _Resolver(graph)
        facts: list[Fact] = []
        made: list[Link] = []
        for node in nodes:
            if links:
                made += self._links_of(resolver, node)
            for given in node.facts:
                # one microsecond apart: of two facts from the same moment in one batch,
                # the later one is the correction, after a restart too
                recorded = now + timedelta(microseconds=len(facts))
                ref = MemoryRef(node.id, node.version)
                facts.append(_new_fact(resolver, namespace, given, ref, recorded,
                                       node.valid_from or now))  # fmt: skip
        resolver.store(session, namespace, now)
        facts = [resolver.fact(f) for f in facts]
        made = [resolver.link(link) for link in made]
        add_facts(session, [_fact_row(f) for f in facts])
        add_edges(session, [_edge_row(namespace, link, now) for link in made])

        def apply() -> list[Fact]:
            with self._lock:
                for entity in resolver.made:
                    graph.add_entity(entity)
                graph.add_facts(facts)
                graph.add_links(made)
            return facts

        return apply

    def relink(
        self, session: Session, namespace: str, node: NewNode, now: datetime
    ) -> Callable[[], None]:
        """In the unit of work that changes a memory's text (holding ``lock``): retire its
        links and link its new text (its facts stay as they are)."""
        return self._link_instead(session, namespace, node, [node.id], now)

    def _links_of(self, resolver: _Resolver, node: NewNode) -> list[Link]:
        source = memory_node(node.id)
        links = []
        if self.policy.extract_entities:
            mentioned: set[str] = set()
            for mention in self._rules.find(node.text):
                if len(mention.text) > MAX_NAME_CHARS:
                    continue
                entity = resolver.resolve(mention.text, mention.type)
                if entity.id not in mentioned:
                    mentioned.add(entity.id)
                    links.append(Link(str(uuid.uuid4()), "mentions", source,
                                      entity_node(entity.id), None, node.id))  # fmt: skip
        for other, score in node.related:
            links.append(Link(str(uuid.uuid4()), "related", source, memory_node(other),
                              round(float(score), 4), node.id))  # fmt: skip
        for origin in node.derived_from:
            links.append(Link(str(uuid.uuid4()), "derived_from", source, memory_node(origin),
                              None, node.id))  # fmt: skip
        return links

    def fuse(
        self, session: Session, namespace: str, node: NewNode, now: datetime
    ) -> Callable[[], None]:
        """In the unit of work that fuses ``node.derived_from`` into ``node`` (holding
        ``lock``): the sources' links are retired and the new memory linked, derived
        from each. The facts the sources assert stay as they were."""
        return self._link_instead(session, namespace, node, node.derived_from, now)

    def _link_instead(
        self, session: Session, namespace: str, node: NewNode, retiring: Iterable[str],
        now: datetime,
    ) -> Callable[[], None]:  # fmt: skip
        """Retire the links of the memories ``retiring`` and link ``node``."""
        retired = [link for i in retiring for link in retire_edges(session, namespace, i, now)]
        link = self.ingest(session, namespace, [replace(node, facts=())], now)

        def apply() -> None:
            with self._lock:
                self.graph(namespace).drop_links(retired)
                link()

        return apply

    def retire_memory(
        self, session: Session, namespace: str, memory_id: str, now: datetime
    ) -> Callable[[], int]:
        """In the unit of work that deletes ``memory_id``: retract every live fact it
        asserted, so that the facts they superseded hold again, and retire its links.
        Returns what updates the graph in memory once the work is committed (it returns
        how many facts were retired)."""
        ids = retire_facts(session, namespace, memory_id, now)
        links = retire_edges(session, namespace, memory_id, now)

        def apply() -> int:
            with self._lock:
                if namespace in self._graphs:
                    self._graphs[namespace].retire(ids, now)
                    self._graphs[namespace].drop_links(links)
            return len(ids)

        return apply

    def restore_memory(
        self, session: Session, namespace: str, memory_id: str, version: int, now: datetime
    ) -> Callable[[], int]:
        """In the unit of work that brings ``memory_id`` back (a rollback of its
        deletion): assert again, as ``version`` and recorded now, the facts its deletion
        retired, so that what was believed in between stays as it was. Nothing when the
        memory's facts are live. Returns what updates the graph in memory once the work
        is committed."""
        facts: list[Fact] = []
        if not has_live_facts(session, namespace, memory_id):
            facts = [
                replace(_fact_of(row), id=str(uuid.uuid4()), recorded_at=now, retired_at=None,
                        memory_version=version)
                for row in last_retired_facts(session, namespace, memory_id)
            ]  # fmt: skip
            add_facts(session, [_fact_row(fact) for fact in facts])

        def apply() -> int:
            with self._lock:
                if namespace in self._graphs:
                    self._graphs[namespace].add_facts(facts)
            return len(facts)

        return apply

    # reads ------------------------------------------------------------------------------

    def state(
        self, namespace: str, entity: str, as_of: datetime | None = None,
        known_at: datetime | None = None,
    ) -> dict[str, Span]:  # fmt: skip
        """Per predicate, the fact about ``entity`` that held at world time ``as_of``
        (default: now), as the service knew it at ``known_at`` (default: now)."""
        now = utcnow()
        as_of = check.aware_datetime(as_of, "as_of") or now
        known_at = check.aware_datetime(known_at, "known_at") or now
        with self._lock:
            graph = self.graph(namespace)
            subject = self._existing(graph, entity)
            state = {}
            for predicate in graph.predicates(subject.id):
                span = graph.state_at(subject.id, predicate, as_of, known_at)
                if span is not None:
                    state[predicate] = span
            return state

    def span(self, namespace: str, fact_id: str) -> Span:
        """A live fact with its end and successor, as known now."""
        with self._lock:
            span = self.graph(namespace).span_now(fact_id)
        if span is None:
            raise NotFoundError(f"fact {fact_id!r} not found")
        return span

    def timeline(
        self, namespace: str, entity: str, predicate: str | None = None,
        known_at: datetime | None = None,
    ) -> list[Span]:  # fmt: skip
        """The facts about ``entity`` (one predicate's, or all), in world order."""
        known_at = check.aware_datetime(known_at, "known_at") or utcnow()
        with self._lock:
            graph = self.graph(namespace)
            subject = self._existing(graph, entity)
            predicates = [predicate] if predicate is not None else graph.predicates(subject.id)
            spans = [s for p in predicates for s in graph.history(subject.id, p, known_at)]
            return sorted(spans, key=lambda s: (s.fact.valid_from, s.fact.recorded_at))

    def explore(
        self, namespace: str, query: str, seeds: dict[str, float], world: datetime,
        known_at: datetime, limit: int, history: bool = False,
    ) -> Exploration:  # fmt: skip
        """What the graph knows around ``seeds`` and the entities ``query`` names, for
        graph search (expansion.py)."""
        with self._lock:
            graph = self.graph(namespace)
            named = [e.id for m in self._rules.find(query) if (e := graph.find(m.text))]
            return explore(graph, seeds, list(dict.fromkeys(named)),
                           Walk(world, known_at), limit, history)  # fmt: skip

    def stated_by(self, namespace: str, predicates: list[str]) -> dict[str, list[str]]:
        """Per predicate, a sample of the memories that assert it."""
        with self._lock:
            graph = self.graph(namespace)
            return {p: graph.stated_by(p) for p in predicates}

    def node_link(self, namespace: str) -> dict[str, Any]:
        with self._lock:
            return self.graph(namespace).node_link()

    def neighbours(
        self, namespace: str, entity: str, depth: int = 1, kinds: frozenset[str] = frozenset(),
        as_of: datetime | None = None, include_superseded: bool = False,
    ) -> Neighbourhood:  # fmt: skip
        """The nodes within ``depth`` edges of ``entity`` (either direction), with their
        distance and the edges among them, as the graph stood at ``as_of``."""
        depth = _check_depth("depth", depth)
        kinds = _check_kinds(kinds)
        as_of = check.aware_datetime(as_of, "as_of")
        with self._lock:
            graph = self.graph(namespace)
            start = entity_node(self._existing(graph, entity).id)
            now = utcnow()
            view = graph.view(as_of or now, now, kinds, include_superseded)
            reach = nx.single_source_shortest_path_length(
                view.to_undirected(as_view=True), start, cutoff=depth
            )
            nearest = sorted(reach, key=lambda n: (reach[n], n))
            kept = nearest[:MAX_NODES]
            data, cut = _bounded(graph.node_link(view.subgraph(kept)))
            return Neighbourhood(
                {n: reach[n] for n in kept}, data, truncated=len(nearest) > len(kept) or cut
            )  # fmt: skip

    def path(
        self, namespace: str, source: str, target: str, kinds: frozenset[str] = frozenset(),
        as_of: datetime | None = None, include_superseded: bool = False,
        max_depth: int = MAX_PATH,
    ) -> list[dict[str, Any]] | None:  # fmt: skip
        """A shortest chain of edges (either direction) from ``source`` to ``target``
        entity, as node, edge, node, ...; None when there is none within ``max_depth``."""
        max_depth = _check_depth("max_depth", max_depth, MAX_PATH)
        kinds = _check_kinds(kinds)
        as_of = check.aware_datetime(as_of, "as_of")
        with self._lock:
            graph = self.graph(namespace)
            a = entity_node(self._existing(graph, source).id)
            b = entity_node(self._existing(graph, target).id)
            now = utcnow()
            view = graph.view(as_of or now, now, kinds, include_superseded)
            try:
                nodes = nx.shortest_path(view.to_undirected(as_view=True), a, b)
            except nx.NetworkXNoPath:
                return None
            if len(nodes) - 1 > max_depth:
                return None
            chain: list[dict[str, Any]] = [_node_json(view, nodes[0])]
            for u, v in itertools.pairwise(nodes):
                chain += [_edge_json(view, u, v), _node_json(view, v)]
            return chain

    def subgraph(
        self, namespace: str, entities: list[str], depth: int = 1,
        kinds: frozenset[str] = frozenset(), as_of: datetime | None = None,
        include_superseded: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        """The nodes within ``depth`` of any of ``entities`` and the edges among them, as
        node-link JSON (the whole graph when no entity is given)."""
        if len(entities) > MAX_SUBGRAPH_ENTITIES:
            raise InvalidInputError(f"entities may name at most {MAX_SUBGRAPH_ENTITIES}")
        for i, name in enumerate(entities):
            check.bounded_text(name, MAX_NAME_CHARS, f"entity[{i}]")
        depth = _check_depth("depth", depth)
        kinds = _check_kinds(kinds)
        as_of = check.aware_datetime(as_of, "as_of")
        with self._lock:
            graph = self.graph(namespace)
            starts = [entity_node(self._existing(graph, e).id) for e in entities]
            now = utcnow()
            view = graph.view(as_of or now, now, kinds, include_superseded)
            if not starts:
                nodes = sorted(view.nodes)
            else:
                undirected = view.to_undirected(as_view=True)
                reach: dict[str, int] = {}
                for start in starts:
                    near = nx.single_source_shortest_path_length(undirected, start, cutoff=depth)
                    for node, d in near.items():
                        reach[node] = min(d, reach.get(node, d))
                nodes = sorted(reach, key=lambda n: (reach[n], n))
            data, cut = _bounded(graph.node_link(view.subgraph(nodes[:MAX_NODES])))
            data["truncated"] = len(nodes) > MAX_NODES or cut
            return data

    def apply(
        self, namespace: str, entity_ids: Sequence[str], fact_ids: Sequence[str],
        edge_ids: Sequence[str],
    ) -> None:  # fmt: skip
        """Bring the namespace's graph in line with the database for these rows (changes
        made elsewhere). Rows are only added or retired, so a row found is added if new
        and retired if retired since; a row gone (erased) reloads the graph. A graph not
        loaded is left alone: it loads as it is."""
        with self._lock:
            graph = self._graphs.get(namespace)
            if graph is None:
                return
            with self._db.reader() as session:
                entities = rows_by_id(session, GraphEntity, namespace, entity_ids)
                facts = rows_by_id(session, GraphFact, namespace, fact_ids)
                edges = rows_by_id(session, GraphEdge, namespace, edge_ids)
            wanted = len(set(entity_ids)) + len(set(fact_ids)) + len(set(edge_ids))
            if len(entities) + len(facts) + len(edges) < wanted:
                self._graphs[namespace] = self._load(namespace)
                return
            for row in entities.values():
                graph.add_entity(Entity.of_row(row))
            rows = sorted(facts.values(), key=lambda r: (r.recorded_at, r.id))
            graph.add_facts(_fact_of(row) for row in rows if graph.fact(row.id) is None)
            for row in rows:
                known = graph.fact(row.id)
                if row.retired_at is not None and known is not None and known.retired_at is None:
                    graph.retire([row.id], row.retired_at)
            graph.add_links(
                Link(row.id, row.kind, row.source, row.target, row.weight, row.memory_id)
                for row in edges.values()
                if row.retired_at is None
            )
            graph.drop_links(row.id for row in edges.values() if row.retired_at is not None)

    def forget_loaded(self) -> None:
        """Drop every graph held in memory: the next use loads it again from the rows."""
        with self._lock:
            self._graphs.clear()

    # ------------------------------------------------------------------------------------

    def _load(self, namespace: str) -> NamespaceGraph:
        graph = NamespaceGraph(namespace)
        with self._db.reader() as session:
            entities = load_entities(session, namespace)
            facts = load_facts(session, namespace)
            edges = load_edges(session, namespace)
            for row in entities:
                graph.add_entity(Entity.of_row(row))
            graph.add_facts(_fact_of(row) for row in facts)
            graph.add_links(
                Link(row.id, row.kind, row.source, row.target, row.weight, row.memory_id)
                for row in edges
            )
        return graph

    @staticmethod
    def _existing(graph: NamespaceGraph, name_or_id: str) -> Entity:
        entity = graph.find(name_or_id)
        if entity is None:
            raise NotFoundError(f"entity {name_or_id!r} not found")
        return entity


class _Resolver:
    """Names to entities within one unit of work: the graph's, or new ones it made."""

    def __init__(self, graph: NamespaceGraph, made: list[Entity] | None = None) -> None:
        self.graph = graph
        self.made: list[Entity] = list(made or ())
        self._made_by_key: dict[str, Entity] = {}
        self._instead: dict[str, Entity] = {}  # a made entity's id -> the stored one

    def store(self, session: Session, namespace: str, now: datetime) -> None:
        """Insert the entities made. Where another process stored one of the same name
        first (a replica that had not seen it yet), that one is used instead: ``made``
        then holds it, and ``fact`` and ``link`` point at it."""
        taken = claim_entities(session, [_entity_row(namespace, e, now) for e in self.made])
        self._instead = {
            mine: Entity.of_row(row)
            for mine, row in taken.items()
        }
        self.made = [self._instead.get(e.id, e) for e in self.made]

    def fact(self, fact: Fact) -> Fact:
        if not self._instead:
            return fact
        return replace(fact, subject=self._id(fact.subject),
                       object=None if fact.object is None else self._id(fact.object))  # fmt: skip

    def link(self, link: Link) -> Link:
        if not self._instead:
            return link
        return replace(link, source=self._node(link.source), target=self._node(link.target))

    def _id(self, entity_id: str) -> str:
        entity = self._instead.get(entity_id)
        return entity.id if entity is not None else entity_id

    def _node(self, node: str) -> str:
        kind, _, ident = node.partition(":")
        return entity_node(self._id(ident)) if kind == "entity" else node

    def resolve(self, name: str, type: str | None = None) -> Entity:
        entity = self._made_by_key.get(name_key(name))
        if entity is not None:
            return entity
        entity, new = _resolve(self.graph, name, type)
        if new:
            self.made.append(entity)
            self._made_by_key[name_key(name)] = entity
        return entity


def _new_fact(
    resolver: _Resolver, namespace: str, given: FactInput, memory: MemoryRef | None,
    now: datetime, default_from: datetime,
) -> Fact:  # fmt: skip
    valid_from = given.valid_from or default_from
    if given.valid_until is not None and given.valid_until <= valid_from:
        raise InvalidInputError("valid_until must be later than valid_from")
    subject = resolver.resolve(given.subject)
    object_id = resolver.resolve(given.object).id if given.object is not None else None
    return Fact(
        str(uuid.uuid4()), namespace, subject.id, given.predicate.strip(), object_id,
        given.value, valid_from, given.valid_until, now, None,
        memory.id if memory else None, memory.version if memory else None,
    )  # fmt: skip


def _refuse_taken(graph: NamespaceGraph, aliases: Iterable[str], owner: str) -> None:
    """An alias may not be another entity's name or alias: which one a name meant would
    then hang on the order rows load in."""
    for alias in aliases:
        other = graph.find(alias)
        if other is not None and other.id != owner:
            raise ConflictError(
                f"alias {alias!r} already names entity {other.name!r} ({other.id}); if they "
                "are one, merge them (POST /v1/graph/entities/merge)"
            )


def _resolve(
    graph: NamespaceGraph, name: str, type: str | None = None, aliases: tuple[str, ...] = ()
) -> tuple[Entity, bool]:
    """The entity with this name or alias, or a new one (not yet stored); whether new."""
    found = graph.find(name)
    if found is not None:
        return found, False
    entity = Entity(str(uuid.uuid4()), " ".join(name.split()), type or DEFAULT_ENTITY_TYPE,
                    tuple(" ".join(a.split()) for a in aliases))  # fmt: skip
    return entity, True


def _entity_row(namespace: str, entity: Entity, now: datetime) -> dict[str, Any]:
    return dict(
        id=entity.id, namespace=namespace, key=name_key(entity.name), name=entity.name,
        type=entity.type, aliases=list(entity.aliases), created_at=now,
    )  # fmt: skip


def _edge_row(namespace: str, link: Link, now: datetime) -> dict[str, Any]:
    return dict(
        id=link.id, namespace=namespace, kind=link.kind, source=link.source,
        target=link.target, weight=link.weight, memory_id=link.memory_id, created_at=now,
        retired_at=None,
    )  # fmt: skip


def _fact_of(row: Any) -> Fact:
    """A fact from its row (an ORM object or a plain row)."""
    return Fact(
        row.id, row.namespace, row.subject, row.predicate, row.object, row.value,
        row.valid_from, row.valid_until, row.recorded_at, row.retired_at, row.memory_id,
        row.memory_version,
    )  # fmt: skip


def _fact_row(fact: Fact) -> dict[str, Any]:
    return dict(
        id=fact.id, namespace=fact.namespace, subject=fact.subject, predicate=fact.predicate,
        object=fact.object, value=fact.value, valid_from=fact.valid_from,
        valid_until=fact.valid_until, recorded_at=fact.recorded_at,
        retired_at=fact.retired_at, memory_id=fact.memory_id,
        memory_version=fact.memory_version,
    )  # fmt: skip


def _check_depth(field: str, value: Any, limit: int = MAX_DEPTH) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InvalidInputError(f"{field} must be an integer from 1 to {limit}, got {value!r}")
    return value


def _bounded(node_link: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """At most MAX_EDGES of the edges (the live ones first); whether any were cut."""
    edges = node_link["edges"]
    if len(edges) <= MAX_EDGES:
        return node_link, False
    edges = sorted(edges, key=lambda e: e.get("retired_at") is not None)[:MAX_EDGES]
    return {**node_link, "edges": edges}, True


def _check_kinds(kinds: Any) -> frozenset[str]:
    """Edge kinds (fact, supersedes, mentions, related, ...) or fact predicates."""
    if isinstance(kinds, str) or not all(
        isinstance(k, str) and 0 < len(k) <= MAX_PREDICATE_CHARS for k in kinds
    ):
        raise InvalidInputError(
            f"types must be a list of edge kinds or fact predicates of 1 to "
            f"{MAX_PREDICATE_CHARS} characters"
        )
    if len(kinds) > 32:
        raise InvalidInputError("types may list at most 32 kinds")
    return frozenset(kinds)


def _node_json(view: nx.MultiDiGraph, node: str) -> dict[str, Any]:
    return {"id": node, **view.nodes[node]}


def _edge_json(view: nx.MultiDiGraph, u: str, v: str) -> dict[str, Any]:
    """One edge between ``u`` and ``v``, in whichever direction it runs."""
    source, target = (u, v) if view.has_edge(u, v) else (v, u)
    key, data = sorted(view.get_edge_data(source, target).items())[0]
    return {"source": source, "target": target, "key": key, **data}
