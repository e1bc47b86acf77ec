"""Plain, immutable results the memory core hands out (detached from any session)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .graph.service import FactInput


@dataclass(frozen=True)
class Memory:
    id: str
    namespace: str
    text: str | None
    kind: str
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    category: str | None
    tags: tuple[str, ...]
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
    last_accessed_at: datetime | None
    content_hash: str | None
    embedding_model: str | None


@dataclass(frozen=True)
class AddResult:
    memory: Memory
    created: bool  # False when identical content already existed and its id is returned


@dataclass(frozen=True)
class SearchHit:
    memory: Memory
    score: float  # what the search mode ranked by (for vector: the similarity)
    similarity: float | None = None  # cosine similarity to the query


@dataclass(frozen=True)
class VersionRecord:
    version: int
    text: str | None
    category: str | None
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    importance: float
    state: str
    expires_at: datetime | None
    content_hash: str | None
    embedding_model: str | None
    source: str
    actor: str | None
    operation: str
    derived_from: tuple[dict[str, Any], ...]
    recorded_at: datetime
    superseded_at: datetime | None


@dataclass(frozen=True)
class Page:
    items: list[Memory]
    next_cursor: str | None


@dataclass(frozen=True)
class NewMemory:
    """One memory to add; the fields a caller may set."""

    text: str
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    category: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    importance: float = 0.5
    ttl_s: float | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    facts: tuple[FactInput, ...] = ()  # asserted by this memory (its first version)


@dataclass(frozen=True)
class PriorVersions:
    """An imported memory's history: its version rows as exported (each with its own
    provenance, ``cube_id`` left out), and what the import's own version derives from."""

    rows: tuple[dict[str, Any], ...]
    derived_from: tuple[dict[str, Any], ...] = ()


def memory_of(cube: Any) -> Memory:
    """The plain record of a MemCube row (or of a row's values about to be inserted)."""
    return Memory(
        id=cube.id,
        namespace=cube.namespace,
        text=cube.payload,
        kind=cube.kind,
        user_id=cube.user_id,
        agent_id=cube.agent_id,
        session_id=cube.session_id,
        category=cube.category,
        tags=tuple(cube.tags or ()),
        metadata=dict(cube.meta or {}),
        importance=cube.importance,
        state=cube.state,
        version=cube.version,
        created_at=cube.created_at,
        updated_at=cube.updated_at,
        expires_at=cube.expires_at,
        valid_from=cube.valid_from,
        valid_to=cube.valid_to,
        access_count=cube.access_count,
        last_accessed_at=cube.last_accessed_at,
        content_hash=cube.content_hash,
        embedding_model=cube.embedding_model,
    )


def version_record_of(v: Any, superseded_at: datetime | None) -> VersionRecord:
    return VersionRecord(
        version=v.version,
        text=v.payload,
        category=v.category,
        tags=tuple(v.tags or ()),
        metadata=dict(v.meta or {}),
        importance=v.importance,
        state=v.state,
        expires_at=v.expires_at,
        content_hash=v.content_hash,
        embedding_model=v.embedding_model,
        source=v.source,
        actor=v.actor,
        operation=v.operation,
        derived_from=tuple(v.derived_from or ()),
        recorded_at=v.recorded_at,
        superseded_at=superseded_at,
    )
