"""/v1/graph: entities and bi-temporal facts of the caller's namespace. An entity is named
by its name, an alias or its id, in the ``entity`` query parameter (names may hold
slashes and spaces: a file path, a person)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import get, post
from litestar.params import Parameter

from memos.core import MemOS
from memos.graph import Entity, MemoryRef, NamespaceGraph, Span
from memos.graph.service import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_NAME_CHARS,
    MAX_PATH,
    MAX_PREDICATE_CHARS,
    MAX_SUBGRAPH_ENTITIES,
    MAX_TYPE_CHARS,
)

from .auth import Tenant, TenantController
from .problems import problems
from .schemas import FactSpec, MemoryId, Strict

EntityName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]
ENTITY = Parameter(query="entity", min_length=1, max_length=MAX_NAME_CHARS)
# repeatable: the bounds on each value are the kernel's (OpenAPI would put them on the array)
ENTITIES = Parameter(query="entity", max_items=MAX_SUBGRAPH_ENTITIES)
TYPES = Parameter(query="type", max_items=32)
DEPTH = Parameter(ge=1, le=MAX_DEPTH)
TIMELINE_PAGE = 200  # facts a timeline answers at once, by default ...
MAX_TIMELINE_PAGE = 1_000  # ... and at most
SOURCE = Parameter(query="from", min_length=1, max_length=MAX_NAME_CHARS)
TARGET = Parameter(query="to", min_length=1, max_length=MAX_NAME_CHARS)
PREDICATE = Parameter(query="predicate", min_length=1, max_length=MAX_PREDICATE_CHARS)


class EntityIn(Strict):
    name: EntityName
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TYPE_CHARS)] | None = None
    aliases: Annotated[list[EntityName], msgspec.Meta(max_length=MAX_ALIASES)] = msgspec.field(
        default_factory=list
    )


class EntityMergeIn(Strict):
    entity: EntityName  # merged away: a name, alias or id
    into: EntityName  # kept: a name, alias or id


class FactIn(FactSpec, kw_only=True):
    memory_id: MemoryId | None = None  # the memory that asserts it (its current version)


class EntityOut(msgspec.Struct):
    id: str
    name: str
    type: str
    aliases: list[str]
    merged_into: str | None  # the entity it was merged into (found by its id only then)

    @classmethod
    def of(cls, entity: Entity) -> EntityOut:
        return cls(entity.id, entity.name, entity.type, list(entity.aliases),
                   entity.merged_into)  # fmt: skip


class MemoryRefOut(msgspec.Struct):
    id: str
    version: int


class FactOut(msgspec.Struct):
    id: str
    subject: str  # the entity's name
    predicate: str
    object: str | None  # the entity's name
    value: str | None
    valid_from: datetime
    valid_to: datetime | None  # None: still true (as known at the time asked about)
    recorded_at: datetime
    retired_at: datetime | None
    superseded_by: str | None
    memory: MemoryRefOut | None

    @classmethod
    def of(cls, span: Span, graph: NamespaceGraph) -> FactOut:
        fact = span.fact
        memory = None
        if fact.memory_id is not None and fact.memory_version is not None:
            memory = MemoryRefOut(fact.memory_id, fact.memory_version)
        return cls(
            fact.id, graph.entities[fact.subject].name, fact.predicate,
            graph.entities[fact.object].name if fact.object is not None else None, fact.value,
            fact.valid_from, span.valid_to, fact.recorded_at, fact.retired_at,
            span.superseded_by, memory,
        )  # fmt: skip


class StateOut(msgspec.Struct):
    entity: EntityOut
    facts: dict[str, FactOut]  # per predicate, the fact that held


class TimelineOut(msgspec.Struct):
    entity: EntityOut
    facts: list[FactOut]  # a page, in world order
    total: int  # facts in the whole timeline
    next_cursor: str | None  # the next page's cursor; None on the last page


class NeighboursOut(msgspec.Struct):
    distance: dict[str, int]  # node id -> edges from the entity
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    truncated: bool


class PathOut(msgspec.Struct):
    found: bool
    chain: list[dict[str, Any]]  # node, edge, node, ... from source to target


class GraphController(TenantController):
    path = "/v1/graph"
    tags = ["graph"]

    @post("/entities", status_code=200, sync_to_thread=True,
          summary="An entity by name or alias, made if new", responses=problems(409))  # fmt: skip
    def entity(self, data: EntityIn, tenant: Tenant, memos: MemOS) -> EntityOut:
        entity = memos.graph.entity(tenant.namespace, data.name, data.type, tuple(data.aliases))
        return EntityOut.of(entity)

    @post("/entities/merge", status_code=200, sync_to_thread=True, responses=problems(404, 409),
          summary="Merge one entity into another, moving its facts")  # fmt: skip
    def merge_entities(self, data: EntityMergeIn, tenant: Tenant, memos: MemOS) -> EntityOut:
        """The kept entity, with the other's name and aliases among its aliases. The
        facts and links naming the other are retired and stated again of the kept one,
        recorded now (the timeline's ``known_at`` still shows what was believed before);
        the other is found by its id only after this."""
        return EntityOut.of(memos.graph.merge_entities(tenant.namespace, data.entity, data.into))

    @post("/facts", status_code=201, sync_to_thread=True,
          summary="Assert a fact; a later one on the same subject and predicate supersedes it",
          responses=problems(404))  # fmt: skip
    def assert_fact(self, data: FactIn, tenant: Tenant, memos: MemOS) -> FactOut:
        memory = None
        if data.memory_id is not None:
            asserted_by = memos.get(data.memory_id, namespace=tenant.namespace)
            memory = MemoryRef(asserted_by.id, asserted_by.version)
        fact = memos.graph.assert_fact(
            tenant.namespace, data.subject, data.predicate, object=data.object, value=data.value,
            valid_from=data.valid_from, valid_until=data.valid_until, memory=memory,
        )  # fmt: skip
        span = memos.graph.span(tenant.namespace, fact.id)
        return FactOut.of(span, memos.graph.graph(tenant.namespace))

    @get("/state", sync_to_thread=True, responses=problems(404),
         summary="What held for an entity at a world time, as known at a time")  # fmt: skip
    def state(
        self, tenant: Tenant, memos: MemOS, entity: Annotated[str, ENTITY],
        as_of: datetime | None = None, known_at: datetime | None = None,
    ) -> StateOut:  # fmt: skip
        facts = memos.graph.state(tenant.namespace, entity, as_of=as_of, known_at=known_at)
        graph = memos.graph.graph(tenant.namespace)
        subject = graph.find(entity)
        assert subject is not None  # state() found it
        return StateOut(EntityOut.of(subject),
                        {p: FactOut.of(s, graph) for p, s in facts.items()})  # fmt: skip

    @get("/timeline", sync_to_thread=True, responses=problems(404),
         summary="An entity's facts in world order, as known at a recorded time")  # fmt: skip
    def timeline(
        self, tenant: Tenant, memos: MemOS, entity: Annotated[str, ENTITY],
        predicate: Annotated[str | None, PREDICATE] = None, known_at: datetime | None = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_TIMELINE_PAGE)] = TIMELINE_PAGE,
        cursor: Annotated[str | None, Parameter(pattern=r"^[0-9]{1,9}$")] = None,
    ) -> TimelineOut:  # fmt: skip
        """A page of ``limit`` facts; ``next_cursor`` asks for the next one."""
        spans = memos.graph.timeline(tenant.namespace, entity, predicate, known_at=known_at)
        graph = memos.graph.graph(tenant.namespace)
        subject = graph.find(entity)
        assert subject is not None
        start = int(cursor or 0)
        page = spans[start : start + limit]
        more = str(start + limit) if start + limit < len(spans) else None
        return TimelineOut(EntityOut.of(subject), [FactOut.of(s, graph) for s in page],
                           len(spans), more)  # fmt: skip

    @get("/neighbours", sync_to_thread=True, responses=problems(404),
         summary="The nodes near an entity, by edge type, at a world time")  # fmt: skip
    def neighbours(
        self, tenant: Tenant, memos: MemOS, entity: Annotated[str, ENTITY],
        depth: Annotated[int, DEPTH] = 1, types: Annotated[list[str] | None, TYPES] = None,
        as_of: datetime | None = None, include_superseded: bool = False,
    ) -> NeighboursOut:  # fmt: skip
        found = memos.graph.neighbours(
            tenant.namespace, entity, depth, frozenset(types or ()), as_of, include_superseded
        )
        return NeighboursOut(found.distance, found.node_link["nodes"],
                             found.node_link["edges"], found.truncated)  # fmt: skip

    @get("/path", sync_to_thread=True, responses=problems(404),
         summary="A shortest chain of edges between two entities")  # fmt: skip
    def shortest_path(
        self, tenant: Tenant, memos: MemOS, source: Annotated[str, SOURCE],
        target: Annotated[str, TARGET], types: Annotated[list[str] | None, TYPES] = None,
        as_of: datetime | None = None, include_superseded: bool = False,
        max_depth: Annotated[int, Parameter(ge=1, le=MAX_PATH)] = MAX_PATH,
    ) -> PathOut:  # fmt: skip
        chain = memos.graph.path(tenant.namespace, source, target, frozenset(types or ()),
                                 as_of, include_superseded, max_depth)  # fmt: skip
        return PathOut(found=chain is not None, chain=chain or [])

    @get("/subgraph", sync_to_thread=True, responses=problems(404),
         summary="The graph around some entities (or all of it) as node-link JSON")  # fmt: skip
    def subgraph(
        self, tenant: Tenant, memos: MemOS,
        entities: Annotated[list[str] | None, ENTITIES] = None,
        depth: Annotated[int, DEPTH] = 1, types: Annotated[list[str] | None, TYPES] = None,
        as_of: datetime | None = None, include_superseded: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        return memos.graph.subgraph(tenant.namespace, list(entities or ()), depth,
                                    frozenset(types or ()), as_of, include_superseded)  # fmt: skip
