"""What makes a memory the record it is: its text and everything a caller selects it by.
Two memories with the same identity are duplicates; any other two are distinct records,
however alike their text."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import MemCube


def identity_key(
    digest: str, user_id: str | None, agent_id: str | None, session_id: str | None,
    category: str | None, tags: Iterable[str], metadata: dict[str, Any] | None,
) -> tuple:  # fmt: skip
    """The content hash, owner, session, category, tag set and metadata, comparable."""
    canonical = json.dumps(metadata or {}, sort_keys=True, separators=(",", ":"))
    return (digest, user_id, agent_id, session_id, category, tuple(sorted(set(tags))), canonical)


def identity_of(cube: MemCube) -> tuple:
    """A stored memory's identity (see ``identity_key``)."""
    return identity_key(cube.content_hash or "", cube.user_id, cube.agent_id, cube.session_id,
                        cube.category, cube.tags, cube.meta)  # fmt: skip
