"""SQLAlchemy tables of the MemCube data model (see docs/design.md)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def in_utc_range(value: datetime) -> bool:
    """Whether an aware ``value`` is still a date-time once moved to UTC, as it is stored
    (the calendar's first and last hours with an offset are not)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Kind(enum.StrEnum):
    PLAINTEXT = "plaintext"
    ACTIVATION = "activation"
    PARAMETRIC = "parametric"
    COMPOSITION = "composition"  # a named set of other memories (memos/composition.py)


class State(enum.StrEnum):
    """Lifecycle of a cube. Only ``generated`` and ``activated`` cubes are served."""

    GENERATED = "generated"
    ACTIVATED = "activated"
    MERGED = "merged"
    ARCHIVED = "archived"
    EXPIRED = "expired"
    DELETED = "deleted"


LIVE_STATES = (State.GENERATED.value, State.ACTIVATED.value)
# Archived memories leave default search but stay indexed: a search naming them finds them.
INDEXED_STATES = (*LIVE_STATES, State.ARCHIVED.value)
# The states a filter may ask for (list takes merged too: merged memories are not indexed).
KEPT_STATES = (*INDEXED_STATES, State.MERGED.value)


def is_served(
    state: str, expires_at: datetime | None, now: datetime, states: tuple[str, ...] = LIVE_STATES
) -> bool:
    """The rule CubeRepository.live_condition states in SQL, for a row already loaded."""
    return state in states and (expires_at is None or expires_at > now)


class Source(enum.StrEnum):
    API = "api"
    SDK = "sdk"
    AGENT = "agent"
    TOOL = "tool"
    IMPORT = "import"
    SCHEDULER = "scheduler"
    CHAT = "chat"  # an exchange memory-augmented chat stored


class Operation(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    ROLLBACK = "rollback"
    EXPIRE = "expire"
    PURGE = "purge"
    FUSE = "fuse"
    MIGRATE = "migrate"
    IMPORT = "import"
    PROMOTE = "promote"
    ACTIVATE = "activate"
    ARCHIVE = "archive"
    MERGE = "merge"
    UNMERGE = "unmerge"


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Namespace(Base):
    """A tenant. ``revision`` grows with every change the vector index must reflect."""

    __tablename__ = "namespaces"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)


class ApiKey(Base):
    """A bearer key scoped to one namespace; only its SHA-256 digest is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    namespace: Mapped[str] = mapped_column(ForeignKey("namespaces.name"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class MemCube(Base):
    """The current state of one memory; its past lives in ``memcube_versions``."""

    __tablename__ = "memcubes"
    __table_args__ = (
        Index("ix_memcubes_ns_id", "namespace", "id"),
        Index("ix_memcubes_ns_user", "namespace", "user_id"),
        Index("ix_memcubes_ns_agent", "namespace", "agent_id"),
        Index("ix_memcubes_ns_session", "namespace", "session_id"),
        Index("ix_memcubes_ns_category", "namespace", "category"),
        Index("ix_memcubes_ns_created", "namespace", "created_at"),
        Index("ix_memcubes_ns_hash", "namespace", "content_hash"),
        Index("ix_memcubes_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    namespace: Mapped[str] = mapped_column(ForeignKey("namespaces.name"))
    user_id: Mapped[str | None] = mapped_column(String(128))
    agent_id: Mapped[str | None] = mapped_column(String(128))
    session_id: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default=Kind.PLAINTEXT.value)
    payload: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(128))
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    importance: Mapped[float] = mapped_column(Float, default=0.5)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    valid_from: Mapped[datetime | None]
    valid_to: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default=State.GENERATED.value)
    access_count: Mapped[int] = mapped_column(Integer, default=0)
    last_accessed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)
    # False for a record (added with dedupe off): its identity is more than its text, so
    # the MemScheduler never merges it with another
    mergeable: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class CubeTag(Base):
    """One row per (cube, tag), so tag filters are plain indexed joins on every backend."""

    __tablename__ = "memcube_tags"
    __table_args__ = (Index("ix_memcube_tags_tag", "tag", "cube_id"),)

    cube_id: Mapped[str] = mapped_column(
        ForeignKey("memcubes.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(128), primary_key=True)


class CubeVersion(Base):
    """An append-only record of one version of a cube, with its provenance."""

    __tablename__ = "memcube_versions"
    __table_args__ = (
        UniqueConstraint("cube_id", "version", name="uq_memcube_versions_cube_version"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    cube_id: Mapped[str] = mapped_column(ForeignKey("memcubes.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(128))
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    importance: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[datetime | None]
    valid_to: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    content_hash: Mapped[str | None] = mapped_column(String(64))
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(16))
    derived_from: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ToolCall(Base):
    """One tool call's duration, as the TTL policy learned it (kept across restarts)."""

    __tablename__ = "tool_calls"
    __table_args__ = (Index("ix_tool_calls_ns_tool", "namespace", "tool", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(128))
    seconds: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[datetime]


class GraphEntity(Base):
    """A person, issue, service, ... the graph links memories and facts to. ``key`` is its
    name folded for lookup: one entity per name (or alias) in a namespace."""

    __tablename__ = "graph_entities"
    __table_args__ = (UniqueConstraint("namespace", "key", name="uq_graph_entities_ns_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64))
    aliases: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    merged_into: Mapped[str | None] = mapped_column(String(36))  # the entity it became


class GraphFact(Base):
    """One assertion about an entity, bi-temporal (memos/graph/timeline.py). Rows are only
    ever added or retired, so every past belief can be asked for again."""

    __tablename__ = "graph_facts"
    __table_args__ = (
        Index("ix_graph_facts_ns_subject", "namespace", "subject", "predicate"),
        Index("ix_graph_facts_ns_memory", "namespace", "memory_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(36))
    predicate: Mapped[str] = mapped_column(String(128))
    object: Mapped[str | None] = mapped_column(String(36))
    value: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None]
    recorded_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]
    memory_id: Mapped[str | None] = mapped_column(String(36))
    memory_version: Mapped[int | None] = mapped_column(Integer)


class GraphEdge(Base):
    """A typed link between two graph nodes (``memory:<id>`` or ``entity:<id>``): a
    memory mentions an entity, is related to a similar memory, is derived from another.
    Retired (never deleted) when the memory that made it is deleted."""

    __tablename__ = "graph_edges"
    __table_args__ = (
        Index("ix_graph_edges_ns", "namespace", "created_at"),
        Index("ix_graph_edges_ns_memory", "namespace", "memory_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(48))
    target: Mapped[str] = mapped_column(String(48))
    weight: Mapped[float | None] = mapped_column(Float)
    memory_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


class Task(Base):
    """A node of a namespace's task tree (``parent_id``) and dependency DAG (``depends_on``)."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_ns", "namespace", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str | None] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(String(36))
    depends_on: Mapped[list[str]] = mapped_column(JSONType, default=list)
    memory_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class IdempotentAnswer(Base):
    """The answer a write with an ``Idempotency-Key`` got, replayed when the client sends
    the same key again (a retry), for ``IDEMPOTENCY_TTL_S``."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)

    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the request it answered
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class Job(Base):
    """A long piece of work a request started (training an adapter): its state, progress
    and outcome. Rows stay after the job ends, so its caller can read how it ended."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_ns", "namespace", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # queued|running|succeeded|failed|cancelled
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    request: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result_id: Mapped[str | None] = mapped_column(String(36))  # the cube it made
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    owner: Mapped[str | None] = mapped_column(String(36))  # the process that runs it
    lease_until: Mapped[datetime | None]  # past this, unrenewed: another process takes it


class Lease(Base):
    """A named piece of background work one process holds at a time (memos/leases.py)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str] = mapped_column(String(36))
    until: Mapped[datetime]


class Change(Base):
    """One row of the change feed replicas follow (memos/replication.py): a write to a
    row some replica holds in memory. PostgreSQL's triggers add these as their
    transaction commits, numbered in commit order (migration 0008); SQLite adds none."""

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_recorded_at", "recorded_at"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    namespace: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(16))  # memory | cache | entity | fact | edge | key
    row_id: Mapped[str] = mapped_column(String(36))
    recorded_at: Mapped[datetime]


class ChangeHorizon(Base):
    """The last change pruned from the feed: a replica that has not applied it must load
    everything again."""

    __tablename__ = "change_horizon"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    pruned_through: Mapped[int] = mapped_column(BigInteger)
