"""What makes a memory the record it is. Two memories with the same text, owner
(user, agent), session, category and tag set are one memory added twice (the add path
keeps the first); any other two are distinct records, however alike their text. The
metadata is a record's data, not part of its identity: a caller whose records differ
only in metadata (a key, a position) adds them with ``dedupe`` false."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import MemCube


def identity_key(
    digest: str, user_id: str | None, agent_id: str | None, session_id: str | None,
    category: str | None, tags: Iterable[str],
) -> tuple:  # fmt: skip
    """The content hash, owner, session, category and tag set, comparable."""
    return (digest, user_id, agent_id, session_id, category, tuple(sorted(set(tags))))


def identity_of(cube: MemCube) -> tuple:
    """A stored memory's identity (see ``identity_key``)."""
    return identity_key(cube.content_hash or "", cube.user_id, cube.agent_id, cube.session_id,
                        cube.category, cube.tags)  # fmt: skip


def canonical_metadata(metadata: dict[str, Any] | None) -> str:
    """Metadata as one comparable string (keys sorted)."""
    return json.dumps(metadata or {}, sort_keys=True, separators=(",", ":"))
