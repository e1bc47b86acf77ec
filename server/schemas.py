"""Request and response bodies of the REST API (msgspec structs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from memos import validation as check
from memos.config import MAX_TOP_K
from memos.core import DEFAULT_SEARCH_MODE, MAX_FACTS_PER_MEMORY
from memos.graph.service import (
    MAX_NAME_CHARS,
    MAX_PREDICATE_CHARS,
    MAX_VALUE_CHARS,
    FactInput,
)
from memos.records import Memory, SearchHit, VersionRecord


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Unknown fields in a request are an error, not silently ignored; a date-time must
    stay one in UTC (every body's date-times are parsed here, so no route forgets it)."""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime) and not check.in_utc_range(value):
                raise ValueError(f"{name} {check.OUT_OF_RANGE}, got {value.isoformat()}")


# The limits the kernel enforces, stated in the schema too (the kernel stays the judge).
Name = Annotated[str, Meta(min_length=1, max_length=check.MAX_ID_CHARS)]
Tag = Annotated[str, Meta(min_length=1, max_length=check.MAX_TAG_CHARS)]
Tags = Annotated[list[Tag], Meta(max_length=check.MAX_TAGS)]
FilterTags = Annotated[list[Tag], Meta(max_length=check.MAX_FILTER_TAGS)]
Importance = Annotated[float, Meta(ge=0, le=1)]
Ttl = Annotated[float, Meta(gt=0, le=check.MAX_TTL_S)]
Moment = Annotated[datetime, Meta(tz=True)]
MemoryId = Annotated[str, Meta(pattern=check.ID_PATTERN)]
Version = Annotated[int, Meta(ge=1, le=check.MAX_INT32)]
StateName = Literal["generated", "activated", "archived", "merged"]


class FactSpec(Strict):
    subject: Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS)]
    predicate: Annotated[str, Meta(min_length=1, max_length=MAX_PREDICATE_CHARS)]
    object: Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS)] | None = None
    value: Annotated[str, Meta(max_length=MAX_VALUE_CHARS)] | None = None
    valid_from: Moment | None = None  # when it became true in the world
    valid_until: Moment | None = None  # when it stopped, if the assertion says so

    def to_input(self) -> FactInput:
        return FactInput(self.subject, self.predicate, self.object, self.value,
                         self.valid_from, self.valid_until)  # fmt: skip


class MemoryIn(Strict):
    text: str
    user_id: Name | None = None
    agent_id: Name | None = None
    session_id: Name | None = None
    category: Name | None = None
    tags: Tags = msgspec.field(default_factory=list)
    metadata: dict[str, Any] | None = None
    importance: Importance = 0.5
    ttl_s: Ttl | None = None
    valid_from: Moment | None = None
    valid_to: Moment | None = None
    facts: Annotated[list[FactSpec], Meta(max_length=MAX_FACTS_PER_MEMORY)] = msgspec.field(
        default_factory=list
    )
    # false: a record, stored each time and never merged; unset: true (in a batch, the
    # batch's dedupe)
    dedupe: bool | msgspec.UnsetType = msgspec.UNSET

    def dedupes(self, default: bool = True) -> bool:
        return default if self.dedupe is msgspec.UNSET else self.dedupe


class BatchIn(Strict):
    items: list[MemoryIn]
    dedupe: bool = True  # for the items that do not say


class MemoryPatch(Strict):
    text: str | msgspec.UnsetType = msgspec.UNSET
    category: Name | msgspec.UnsetType | None = msgspec.UNSET
    tags: Tags | msgspec.UnsetType = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    importance: Importance | msgspec.UnsetType = msgspec.UNSET
    ttl_s: Ttl | msgspec.UnsetType | None = msgspec.UNSET
    valid_to: Moment | msgspec.UnsetType | None = msgspec.UNSET


class FiltersIn(Strict):
    user_id: Name | None = None
    agent_id: Name | None = None
    session_id: Name | None = None
    category: Name | None = None
    kind: Literal["plaintext", "activation", "parametric", "composition"] | None = None
    tags: FilterTags = msgspec.field(default_factory=list)
    created_after: Moment | None = None
    created_before: Moment | None = None
    # lifecycle states to include; none given: the served ones (generated, activated)
    states: Annotated[list[StateName], Meta(max_length=4)] = msgspec.field(default_factory=list)


class ConsistencyIn(Strict):
    # a change number a write answered with (header MemOS-Seq): a replica first applies
    # every change up to it, so the client reads its own writes
    after: Annotated[int, Meta(ge=0)]


class SearchIn(Strict):
    query: str
    top_k: Annotated[int, Meta(ge=1, le=MAX_TOP_K)] = 10
    min_score: Annotated[float, Meta(ge=-1, le=1)] | None = None
    filters: FiltersIn | None = None
    mode: Literal["vector", "hybrid", "graph"] = DEFAULT_SEARCH_MODE
    as_of: Moment | None = None  # memories (and in graph mode facts) true at this time
    include_superseded: bool = False  # graph mode: keep memories whose facts no longer hold
    consistency: ConsistencyIn | None = None


class ErasedOut(msgspec.Struct):
    erased: list[str]  # memories whose content is gone: the one asked for and its derivatives
    rebuilt: list[str]  # memories written again without them (compositions, merge sources)
    retired_adapters: list[str]  # parametric memories no longer served: retrain them


class RollbackIn(Strict):
    version: Version


class MemoryOut(msgspec.Struct):
    id: str
    text: str | None
    kind: str
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    category: str | None
    tags: list[str]
    metadata: dict[str, Any]
    importance: float
    state: str
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    valid_from: datetime | None
    valid_to: datetime | None
    access_count: int
    content_hash: str | None
    embedding_model: str | None

    @classmethod
    def of(cls, m: Memory) -> MemoryOut:
        return cls(
            id=m.id, text=m.text, kind=m.kind, user_id=m.user_id, agent_id=m.agent_id,
            session_id=m.session_id, category=m.category, tags=list(m.tags),
            metadata=m.metadata, importance=m.importance, state=m.state, version=m.version,
            created_at=m.created_at, updated_at=m.updated_at, expires_at=m.expires_at,
            valid_from=m.valid_from, valid_to=m.valid_to, access_count=m.access_count,
            content_hash=m.content_hash, embedding_model=m.embedding_model,
        )  # fmt: skip


class AddOut(MemoryOut):
    created: bool = True


class BatchOut(msgspec.Struct):
    ids: list[str]
    created: list[bool]


class IndexCheckOut(msgspec.Struct):
    vectors: int
    missing: int
    extra: int
    stale: int
    applied_seq: int | None


class ListOut(msgspec.Struct):
    items: list[MemoryOut]
    next_cursor: str | None


class HitOut(MemoryOut):
    score: float = 0.0  # what the mode ranked by
    similarity: float | None = None  # cosine similarity to the query

    @classmethod
    def of_hit(cls, hit: SearchHit) -> HitOut:
        base = msgspec.structs.asdict(MemoryOut.of(hit.memory))
        similarity = round(hit.similarity, 6) if hit.similarity is not None else None
        return cls(**base, score=round(hit.score, 6), similarity=similarity)


class SearchOut(msgspec.Struct):
    results: list[HitOut]


class VersionOut(msgspec.Struct):
    version: int
    text: str | None
    category: str | None
    tags: list[str]
    metadata: dict[str, Any]
    importance: float
    state: str
    expires_at: datetime | None
    content_hash: str | None
    embedding_model: str | None
    source: str
    actor: str | None
    operation: str
    derived_from: list[dict[str, Any]]
    recorded_at: datetime
    superseded_at: datetime | None

    @classmethod
    def of(cls, v: VersionRecord) -> VersionOut:
        return cls(
            version=v.version, text=v.text, category=v.category, tags=list(v.tags),
            metadata=v.metadata, importance=v.importance, state=v.state,
            expires_at=v.expires_at, content_hash=v.content_hash,
            embedding_model=v.embedding_model, source=v.source, actor=v.actor,
            operation=v.operation, derived_from=list(v.derived_from),
            recorded_at=v.recorded_at, superseded_at=v.superseded_at,
        )  # fmt: skip


class HistoryOut(msgspec.Struct):
    id: str
    versions: list[VersionOut]
