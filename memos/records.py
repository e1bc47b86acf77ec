"""Plain, immutable results the memory core hands out (detached from any session)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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
    score: float


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
