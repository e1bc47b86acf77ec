"""What the clients hand back: plain, typed objects built from the API's JSON (the
whole answer stays in ``raw``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True)
class Memory:
    id: str
    text: str | None
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    category: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    importance: float = 0.5
    kind: str = "plaintext"
    state: str = "generated"
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    access_count: int = 0
    created: bool | None = None  # an add: False when identical content was already stored
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Memory:
        return cls(
            id=body["id"],
            text=body.get("text"),
            user_id=body.get("user_id"),
            agent_id=body.get("agent_id"),
            session_id=body.get("session_id"),
            category=body.get("category"),
            tags=tuple(body.get("tags") or ()),
            metadata=dict(body.get("metadata") or {}),
            importance=body.get("importance", 0.5),
            kind=body.get("kind", "plaintext"),
            state=body.get("state", "generated"),
            version=body.get("version", 1),
            created_at=_time(body.get("created_at")),
            updated_at=_time(body.get("updated_at")),
            expires_at=_time(body.get("expires_at")),
            access_count=body.get("access_count", 0),
            created=body.get("created"),
            raw=body,
        )


@dataclass(frozen=True)
class SearchResult:
    """A memory a search found, with what ranked it."""

    memory: Memory
    score: float
    similarity: float | None

    @property
    def id(self) -> str:
        return self.memory.id

    @property
    def text(self) -> str | None:
        return self.memory.text

    @classmethod
    def of(cls, body: dict[str, Any]) -> SearchResult:
        return cls(Memory.of(body), body.get("score", 0.0), body.get("similarity"))


@dataclass(frozen=True)
class Erasure:
    """What erasing a memory touched."""

    erased: tuple[str, ...]  # memories whose content is gone: it and what was made from it
    rebuilt: tuple[str, ...]  # memories written again without them
    retired_adapters: tuple[str, ...]  # parametric memories no longer served: retrain them

    @classmethod
    def of(cls, body: dict[str, Any]) -> Erasure:
        return cls(tuple(body["erased"]), tuple(body["rebuilt"]),
                   tuple(body["retired_adapters"]))  # fmt: skip


@dataclass(frozen=True)
class Version:
    version: int
    text: str | None
    state: str
    source: str
    actor: str | None
    operation: str
    derived_from: tuple[dict[str, Any], ...]
    recorded_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Version:
        return cls(
            body["version"],
            body.get("text"),
            body["state"],
            body["source"],
            body.get("actor"),
            body["operation"],
            tuple(body.get("derived_from") or ()),
            _time(body.get("recorded_at")),
            body,
        )


@dataclass(frozen=True)
class Page:
    items: list[Memory]
    next_cursor: str | None


@dataclass(frozen=True)
class CachedAnswer:
    """A semantic-cache lookup: ``hit`` and, on a hit, the answer."""

    hit: bool
    category: str
    similarity: float | None
    entry_id: str | None
    response: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, body: dict[str, Any]) -> CachedAnswer:
        entry = body.get("entry") or {}
        return cls(
            body["hit"],
            body["category"],
            body.get("similarity"),
            entry.get("id"),
            entry.get("response"),
            body,
        )


@dataclass(frozen=True)
class ChatAnswer:
    """A chat completion: the text, and the memories it was given (``memory_used``)."""

    text: str
    finish_reason: str | None
    memory_used: list[str]
    stored_id: str | None
    usage: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, body: dict[str, Any]) -> ChatAnswer:
        choice = body["choices"][0]
        memory = body.get("memory") or {}
        return cls(
            choice["message"]["content"],
            choice.get("finish_reason"),
            list(memory.get("used") or ()),
            memory.get("stored"),
            body.get("usage") or {},
            body,
        )
