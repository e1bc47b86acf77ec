"""A lifecycle transition as one write: each memory still where the rule found it moves
to its new state as a new version whose provenance names the scheduler and the rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from memos.memcube.models import CubeVersion, Operation, Source, is_served, utcnow
from memos.memcube.repository import CubeRepository
from memos.provenance import Origin, version_row

if TYPE_CHECKING:
    from memos.core import MemOS


def rule_origin(rule: str, reason: str | None = None) -> Origin:
    """The provenance of a change a scheduler rule made: ``rule`` or ``rule.reason``."""
    return Origin(Source.SCHEDULER.value, f"{rule}.{reason}" if reason else rule)


def move(
    memos: MemOS, namespace: str, ids: Sequence[str], from_states: Sequence[str], to_state: str,
    operation: Operation, origin: Origin, unindex: bool = False,
) -> list[str]:  # fmt: skip
    """Move each of ``ids`` still in one of ``from_states`` (and not past its TTL) to
    ``to_state`` in one unit of work; ``unindex`` takes them out of search. The answers
    cached from them are dropped. Returns the ids moved."""
    if not ids:
        return []
    with memos.indexes.lock(namespace):
        index = memos.indexes.get(namespace)
        with memos.db.unit_of_work() as session:
            repo = CubeRepository(session)
            now = utcnow()
            moved = []
            for cube_id in ids:
                cube = repo.get(namespace, cube_id, for_update=True)
                if cube is None or not is_served(cube.state, cube.expires_at, now,
                                                 tuple(from_states)):  # fmt: skip
                    continue  # changed since the rule chose it
                cube.state = to_state
                cube.updated_at = now
                cube.version += 1
                repo.add_version(CubeVersion(**version_row(cube, operation, origin, now)))
                moved.append(cube_id)
            if not moved:
                return []
            revision = repo.bump_revision(namespace)
            uncache = memos.cache.invalidate_memories(session, namespace, moved)
        uncache()
        if unindex:
            index.remove(moved)
        index.revision = revision
    return moved
