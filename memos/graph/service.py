"""The graph memory's facade: entities and facts written to the database and kept in
memory per namespace (loaded from the rows the first time a namespace is used), and the
questions asked of them: an entity's state now, at a world time, as known at a recorded
time, and its timeline."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from memos.errors import InvalidInputError, NotFoundError
from memos.memcube.database import Database
from memos.memcube.graph_rows import (
    add_entity,
    add_fact,
    has_live_facts,
    last_retired_facts,
    load_entities,
    load_facts,
    retire_facts,
)
from memos.memcube.models import GraphEntity, GraphFact, utcnow

from .namespace_graph import Entity, NamespaceGraph, name_key
from .timeline import Fact, Span

MAX_NAME_CHARS = 200
MAX_TYPE_CHARS = 64
MAX_PREDICATE_CHARS = 128
MAX_VALUE_CHARS = 4_096
MAX_ALIASES = 32
DEFAULT_ENTITY_TYPE = "entity"


@dataclass(frozen=True)
class MemoryRef:
    """The memory version that asserts a fact (its provenance)."""

    id: str
    version: int


class GraphMemory:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._graphs: dict[str, NamespaceGraph] = {}
        self._lock = threading.RLock()

    def graph(self, namespace: str) -> NamespaceGraph:
        """The namespace's graph, loaded from the database on first use."""
        with self._lock:
            graph = self._graphs.get(namespace)
            if graph is None:
                graph = self._graphs[namespace] = self._load(namespace)
            return graph

    # writes -----------------------------------------------------------------------------

    def entity(
        self, namespace: str, name: str, type: str | None = None, aliases: tuple[str, ...] = ()
    ) -> Entity:
        """The entity with this name or alias, made (with ``type`` and ``aliases``) if
        there is none."""
        _check_text("name", name, MAX_NAME_CHARS)
        if type is not None:
            _check_text("type", type, MAX_TYPE_CHARS)
        if len(aliases) > MAX_ALIASES:
            raise InvalidInputError(f"aliases may hold at most {MAX_ALIASES} names")
        for i, alias in enumerate(aliases):
            _check_text(f"aliases[{i}]", alias, MAX_NAME_CHARS)
        with self._lock:
            graph = self.graph(namespace)
            entity, new = _resolve(graph, name, type, aliases)
            if new:
                with self._db.unit_of_work() as session:
                    add_entity(session, _entity_row(namespace, entity))
                graph.add_entity(entity)
            return entity

    def assert_fact(
        self, namespace: str, subject: str, predicate: str, *, object: str | None = None,
        value: str | None = None, valid_from: datetime | None = None,
        valid_until: datetime | None = None, memory: MemoryRef | None = None,
    ) -> Fact:  # fmt: skip
        """Record that ``subject``'s ``predicate`` is ``object`` (an entity's name or id)
        or ``value`` from ``valid_from`` (default: now) on. Entities are made as needed.
        An earlier fact on the same (subject, predicate) is superseded from
        ``valid_from``, never deleted."""
        _check_text("predicate", predicate, MAX_PREDICATE_CHARS)
        if (object is None) == (value is None):
            raise InvalidInputError("a fact has exactly one of object and value")
        if value is not None:
            _check_text("value", value, MAX_VALUE_CHARS, strip=False)
        now = utcnow()
        valid_from = _aware("valid_from", valid_from) or now
        valid_until = _aware("valid_until", valid_until)
        if valid_until is not None and valid_until <= valid_from:
            raise InvalidInputError("valid_until must be later than valid_from")
        _check_text("subject", subject, MAX_NAME_CHARS)
        if object is not None:
            _check_text("object", object, MAX_NAME_CHARS)
        with self._lock:
            graph = self.graph(namespace)
            made: list[Entity] = []  # entities this fact names for the first time

            def resolve(name: str) -> Entity:
                for entity in made:
                    if name_key(entity.name) == name_key(name):
                        return entity
                entity, new = _resolve(graph, name)
                if new:
                    made.append(entity)
                return entity

            subject_entity = resolve(subject)
            object_id = resolve(object).id if object is not None else None
            fact = Fact(
                str(uuid.uuid4()), namespace, subject_entity.id, predicate.strip(), object_id,
                value, valid_from, valid_until, now, None,
                memory.id if memory else None, memory.version if memory else None,
            )  # fmt: skip
            with self._db.unit_of_work() as session:  # entities and fact, or nothing
                for entity in made:
                    add_entity(session, _entity_row(namespace, entity))
                add_fact(session, _fact_row(fact))
            for entity in made:
                graph.add_entity(entity)
            graph.add_facts([fact])
            return fact

    def retire_memory(
        self, session: Session, namespace: str, memory_id: str, now: datetime
    ) -> Callable[[], int]:
        """In the unit of work that deletes ``memory_id``: retract every live fact it
        asserted, so that the facts they superseded hold again. Returns what updates the
        graph in memory once the work is committed (it returns how many were retired)."""
        ids = retire_facts(session, namespace, memory_id, now)

        def apply() -> int:
            with self._lock:
                if namespace in self._graphs:
                    self._graphs[namespace].retire(ids, now)
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
            for fact in facts:
                add_fact(session, _fact_row(fact))

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
        as_of = _aware("as_of", as_of) or now
        known_at = _aware("known_at", known_at) or now
        with self._lock:
            graph = self.graph(namespace)
            subject = self._existing(graph, entity)
            state = {}
            for predicate in graph.predicates(subject.id):
                span = graph.state_at(subject.id, predicate, as_of, known_at)
                if span is not None:
                    state[predicate] = span
            return state

    def timeline(
        self, namespace: str, entity: str, predicate: str | None = None,
        known_at: datetime | None = None,
    ) -> list[Span]:  # fmt: skip
        """The facts about ``entity`` (one predicate's, or all), in world order."""
        known_at = _aware("known_at", known_at) or utcnow()
        with self._lock:
            graph = self.graph(namespace)
            subject = self._existing(graph, entity)
            predicates = [predicate] if predicate is not None else graph.predicates(subject.id)
            spans = [s for p in predicates for s in graph.history(subject.id, p, known_at)]
            return sorted(spans, key=lambda s: (s.fact.valid_from, s.fact.recorded_at))

    def node_link(self, namespace: str) -> dict[str, Any]:
        with self._lock:
            return self.graph(namespace).node_link()

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
            for row in entities:
                graph.add_entity(Entity(row.id, row.name, row.type, tuple(row.aliases)))
            graph.add_facts(_fact_of(row) for row in facts)
        return graph

    @staticmethod
    def _existing(graph: NamespaceGraph, name_or_id: str) -> Entity:
        entity = graph.find(name_or_id)
        if entity is None:
            raise NotFoundError(f"entity {name_or_id!r} not found")
        return entity


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


def _entity_row(namespace: str, entity: Entity) -> GraphEntity:
    return GraphEntity(
        id=entity.id, namespace=namespace, key=name_key(entity.name), name=entity.name,
        type=entity.type, aliases=list(entity.aliases), created_at=utcnow(),
    )  # fmt: skip


def _fact_of(row: GraphFact) -> Fact:
    return Fact(
        row.id, row.namespace, row.subject, row.predicate, row.object, row.value,
        row.valid_from, row.valid_until, row.recorded_at, row.retired_at, row.memory_id,
        row.memory_version,
    )  # fmt: skip


def _fact_row(fact: Fact) -> GraphFact:
    return GraphFact(
        id=fact.id, namespace=fact.namespace, subject=fact.subject, predicate=fact.predicate,
        object=fact.object, value=fact.value, valid_from=fact.valid_from,
        valid_until=fact.valid_until, recorded_at=fact.recorded_at,
        retired_at=fact.retired_at, memory_id=fact.memory_id,
        memory_version=fact.memory_version,
    )  # fmt: skip


def _check_text(field: str, value: Any, limit: int, strip: bool = True) -> None:
    if not isinstance(value, str) or (strip and not value.strip()):
        raise InvalidInputError(f"{field} must be a non-empty string")
    if len(value) > limit:
        raise InvalidInputError(f"{field} is {len(value)} characters long; the limit is {limit}")


def _aware(field: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{field} must be a date and time")
    if value.tzinfo is None:
        raise InvalidInputError(f"{field} must carry a time zone (e.g. 2026-03-03T00:00:00Z)")
    return value
