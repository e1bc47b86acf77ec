"""Who changed a memory, how, and from what: the record every version carries."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from memos.memcube.models import Operation, Source

from .errors import InvalidInputError


@dataclass(frozen=True)
class Origin:
    """Who or what asked for a change, recorded in the provenance of the version it writes."""

    source: str = Source.SDK.value
    actor: str | None = None

    def __post_init__(self) -> None:
        if self.source not in {s.value for s in Source}:
            raise InvalidInputError(f"unknown provenance source {self.source!r}")


SDK = Origin()  # the default: a change made through the Python API by an unnamed caller


def content_hash(kind: str, text: str) -> str:
    return hashlib.sha256(f"{kind}\x00{text}".encode()).hexdigest()


class CubeState(Protocol):
    """What a version copies from its cube (a MemCube row or a row about to be inserted)."""

    id: str
    version: int
    payload: str | None
    category: str | None
    tags: list[str]
    meta: dict[str, Any]
    importance: float
    state: str
    valid_from: datetime | None
    valid_to: datetime | None
    expires_at: datetime | None
    content_hash: str | None
    embedding_model: str | None


def version_row(
    cube: CubeState,
    operation: Operation,
    origin: Origin,
    now: datetime,
    derived_from: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The version record of ``cube`` as it is now, with the provenance of the change."""
    return {
        "cube_id": cube.id,
        "version": cube.version,
        "payload": cube.payload,
        "category": cube.category,
        "tags": list(cube.tags),
        "meta": dict(cube.meta),
        "importance": cube.importance,
        "state": cube.state,
        "valid_from": cube.valid_from,
        "valid_to": cube.valid_to,
        "expires_at": cube.expires_at,
        "content_hash": cube.content_hash,
        "embedding_model": cube.embedding_model,
        "source": origin.source,
        "actor": origin.actor,
        "operation": operation.value,
        "derived_from": list(derived_from),
        "recorded_at": now,
    }
