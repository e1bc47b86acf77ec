"""Near-duplicate memories fused into one: the newest wording, every source's tags and
metadata, derived from each source's version; the sources are marked merged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from memos.errors import ConflictError, MemOSError, NotFoundError
from memos.graph.service import NewNode
from memos.memcube.filters import MemoryFilter
from memos.memcube.graph_rows import has_live_facts
from memos.memcube.ids import new_id
from memos.memcube.models import (
    CubeVersion,
    Kind,
    MemCube,
    Operation,
    State,
    is_served,
    utcnow,
)
from memos.memcube.repository import CubeRepository
from memos.provenance import Origin, content_hash, version_row
from memos.records import NewMemory

if TYPE_CHECKING:
    from memos.core import MemOS

NEIGHBOURS = 8  # nearest memories looked at for each candidate


def duplicate_groups(
    memos: MemOS, namespace: str, cubes: Sequence[MemCube], min_similarity: float
) -> list[list[str]]:
    """Groups of two or more served memories of ``namespace``, each a candidate from
    ``cubes`` and the memories of the same user and agent at least ``min_similarity``
    like it; a memory is in one group at most."""
    index = memos.indexes.get(namespace)
    grouped: set[str] = set()
    groups: list[list[str]] = []
    now = utcnow()
    with memos.db.reader() as session:
        repo = CubeRepository(session)
        for cube in cubes:
            if cube.id in grouped or cube.id not in index:
                continue
            vector = index.vectors_of([cube.id])[0]
            near = [
                n.id for n in index.search(vector, NEIGHBOURS)
                if n.id != cube.id and n.id not in grouped and n.score >= min_similarity
            ]  # fmt: skip
            rows = repo.live_by_ids(namespace, near, MemoryFilter(), now)
            twins = [i for i in near if i in rows and _owner(rows[i]) == _owner(cube)]
            if not twins:
                continue
            group = [cube.id, *twins]
            grouped.update(group)
            groups.append(group)
    return groups


def fuse_duplicates(memos: MemOS, namespace: str, ids: Sequence[str], origin: Origin) -> str | None:
    """Fuse the near-duplicate memories ``ids`` into a new one with the newest wording;
    the new id, or None when one of them is no longer served or asserts facts (their
    provenance stays with the memory that asserted them), in which case nothing is
    written."""
    try:
        return fuse(memos, namespace, ids, origin)
    except MemOSError:
        return None


def fuse(
    memos: MemOS, namespace: str, ids: Sequence[str], origin: Origin, text: str | None = None
) -> str:
    """Fuse the served memories ``ids`` into a new memory, derived from each one's
    version; the sources are marked merged (``merged_into`` the new one). Its text is
    ``text``, or the newest source's wording. Refused (nothing written) when a source
    is not served (404) or asserts facts (409)."""
    vector_of_text = memos.embedder.embed([text])[0] if text is not None else None
    with memos.indexes.lock(namespace), memos.graph.lock:
        index = memos.indexes.get(namespace)
        memos.graph.graph(namespace)
        with memos.db.unit_of_work() as session:
            repo = CubeRepository(session)
            now = utcnow()
            live: list[MemCube] = []
            for memory_id in ids:
                cube = repo.get(namespace, memory_id, for_update=True)
                if cube is None or not is_served(cube.state, cube.expires_at, now):
                    raise NotFoundError(f"memory {memory_id!r} not found (or not served)")
                if has_live_facts(session, namespace, cube.id):
                    raise ConflictError(
                        f"memory {memory_id!r} asserts facts; their provenance stays with it"
                    )
                live.append(cube)
            newest = max(live, key=lambda c: (c.updated_at, c.id))
            if text is None:
                vector = index.vectors_of([newest.id])[0]
                item, digest = _merged(live, newest, now), newest.content_hash or ""
            else:
                vector = vector_of_text
                item = replace(_merged(live, newest, now), text=text)
                digest = content_hash(Kind.PLAINTEXT.value, text)
            fused = memos.new_cube_row(new_id(), namespace, item, digest, vector, now)
            if any(c.state == State.ACTIVATED.value for c in live):
                fused.state = State.ACTIVATED.value
            derived = [{"id": c.id, "version": c.version} for c in live]
            repo.insert_new([vars(fused)], [version_row(fused, Operation.FUSE, origin, now,
                                                        derived)])  # fmt: skip
            into = [{"id": fused.id, "version": 1, "relation": "merged_into"}]
            for cube in live:
                cube.state = State.MERGED.value
                cube.updated_at = now
                cube.version += 1
                repo.add_version(
                    CubeVersion(**version_row(cube, Operation.MERGE, origin, now, into))
                )
            revision = repo.bump_revision(namespace)
            uncache = memos.cache.invalidate_memories(session, namespace, list(ids))
            near = [
                (n.id, n.score) for n in index.search(vector, len(ids) + 3)
                if n.id not in ids and n.score >= memos.graph.policy.related_min_score
            ][: memos.graph.policy.related_k]  # fmt: skip
            node = NewNode(fused.id, 1, fused.payload, fused.valid_from,
                           related=tuple(near), derived_from=tuple(ids))  # fmt: skip
            link = memos.graph.fuse(session, namespace, node, now)
        uncache()
        link()
        index.remove(list(ids))
        index.upsert([fused.id], vector[None, :])
        index.revision = revision
    return fused.id


def _merged(sources: Sequence[MemCube], newest: MemCube, now: Any) -> NewMemory:
    """The fused memory's fields: the newest wording, category, session and end of
    validity; every tag and metadata key (newer values win); the highest importance;
    the earliest start of validity; a TTL only when every source has one (the latest)."""
    ordered = sorted(sources, key=lambda c: (c.updated_at, c.id))
    tags = tuple(dict.fromkeys(t for c in ordered for t in c.tags))
    metadata: dict[str, Any] = {}
    for cube in ordered:
        metadata.update(cube.meta)
    starts = [c.valid_from for c in sources if c.valid_from is not None]
    ends = [c.expires_at for c in sources]
    ttl_s = None
    if all(e is not None for e in ends):
        ttl_s = max(1.0, (max(e for e in ends if e is not None) - now) / timedelta(seconds=1))
    return NewMemory(
        text=newest.payload or "", user_id=newest.user_id, agent_id=newest.agent_id,
        session_id=newest.session_id, category=newest.category, tags=tags,
        metadata=metadata, importance=max(c.importance for c in sources), ttl_s=ttl_s,
        valid_from=min(starts) if starts else None, valid_to=newest.valid_to,
    )  # fmt: skip


def _owner(cube: MemCube) -> tuple[str | None, str | None, str]:
    return cube.user_id, cube.agent_id, cube.kind
