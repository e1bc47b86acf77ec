"""Jobs that move memories along their lifecycle: TTL expiry and the purge of tombstones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from memos.memcube.models import (
    INDEXED_STATES,
    CubeVersion,
    MemCube,
    Operation,
    Source,
    State,
    utcnow,
)
from memos.memcube.repository import CubeRepository

from .provenance import Origin, version_row

if TYPE_CHECKING:
    from .core import MemOS

TTL = Origin(Source.SCHEDULER.value, "ttl")
PURGE = Origin(Source.SCHEDULER.value, "purge")


def expire_due(memos: MemOS, batch: int = 1_000, namespace: str | None = None) -> int:
    """Move served (or archived) memories whose TTL has passed to ``expired`` (in one
    namespace, when given); returns how many."""
    with memos.db.reader() as session:
        rows = CubeRepository(session).due_to_expire(utcnow(), batch, namespace)
        due = [(c.namespace, c.id) for c in rows]
    total = 0
    for namespace in sorted({ns for ns, _ in due}):
        ids = [cube_id for ns, cube_id in due if ns == namespace]
        with memos.indexes.lock(namespace):
            index = memos.indexes.get(namespace)
            with memos.db.unit_of_work() as session:
                repo = CubeRepository(session)
                now = utcnow()
                for cube_id in ids:
                    cube = repo.get(namespace, cube_id, for_update=True)
                    if cube is None or cube.state not in INDEXED_STATES:
                        continue
                    cube.state = State.EXPIRED.value
                    cube.updated_at = now
                    cube.version += 1
                    repo.add_version(CubeVersion(**version_row(cube, Operation.EXPIRE, TTL, now)))
                    total += 1
                revision = repo.bump_revision(namespace)
                uncache = memos.cache.invalidate_memories(session, namespace, ids)
            uncache()
            index.remove(ids)
            index.revision = revision
    return total


def purge_deleted(memos: MemOS, older_than_s: float, batch: int = 1_000) -> int:
    """Erase the content of memories deleted at least ``older_than_s`` seconds ago."""
    with memos.db.unit_of_work() as session:
        repo = CubeRepository(session)
        now = utcnow()
        cubes = repo.due_to_purge(now - timedelta(seconds=older_than_s), batch)
        for cube in cubes:
            erase(repo, cube, now, PURGE)
        return len(cubes)


def tombstone(
    repo: CubeRepository, cube: MemCube, now: datetime, origin: Origin,
    operation: Operation = Operation.DELETE, derived_from: Sequence[dict[str, Any]] = (),
) -> None:  # fmt: skip
    """In the caller's unit of work: ``cube`` deleted, as its next version (with the
    provenance of the change)."""
    cube.state, cube.deleted_at, cube.updated_at = State.DELETED.value, now, now
    cube.version += 1
    repo.add_version(CubeVersion(**version_row(cube, operation, origin, now, derived_from)))


def erase(repo: CubeRepository, cube: MemCube, now: datetime, origin: Origin) -> None:
    """Remove a memory's content for good: its text, metadata, tags, category and
    embedding go from the cube, and its versions give way to one tombstone."""
    repo.drop_versions(cube.id)
    cube.payload, cube.embedding, cube.content_hash, cube.meta = None, None, None, {}
    cube.tags, cube.category = [], None
    repo.set_tags(cube.id, [])
    cube.purged_at = now
    cube.version += 1
    repo.add_version(CubeVersion(**version_row(cube, Operation.PURGE, origin, now)))
