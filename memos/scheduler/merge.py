"""Near-duplicate memories fused into one: the newest wording, every source's tags and
metadata, derived from each source's version; the sources are marked merged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.orm import Session

from memos.errors import ConflictError, MemOSError, NotFoundError
from memos.graph.service import NewNode
from memos.lifecycle import tombstone
from memos.memcube.filters import MemoryFilter
from memos.memcube.graph_rows import has_live_facts
from memos.memcube.identity import canonical_metadata, identity_key
from memos.memcube.ids import new_id
from memos.memcube.models import (
    INDEXED_STATES,
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
from memos.records import Memory, NewMemory, memory_of
from memos.vector_index import VectorIndex, decode_vector

if TYPE_CHECKING:
    from memos.core import MemOS

    from .policy import SchedulerPolicy

NEIGHBOURS = 8  # nearest memories looked at for each candidate


def duplicate_groups(
    memos: MemOS, namespace: str, cubes: Sequence[MemCube], policy: SchedulerPolicy
) -> list[list[str]]:
    """Groups of two or more served memories of ``namespace``, each a candidate from
    ``cubes`` and the memories at least ``merge_min_similarity`` like it that are the
    same record but for their wording (``_same_record``), all of them ones the policy
    lets merge; a memory is in one group at most."""
    index = memos.indexes.get(namespace)
    grouped: set[str] = set()
    groups: list[list[str]] = []
    now = utcnow()
    with memos.db.reader() as session:
        repo = CubeRepository(session)
        candidates = [c for c in cubes if c.mergeable and c.id in index]
        created_by = repo.created_by([c.id for c in candidates])
        for cube in candidates:
            if cube.id in grouped or not policy.merges(cube.category, created_by[cube.id]):
                continue
            vector = index.vectors_of([cube.id])[0]
            near = [
                n.id for n in index.search(vector, NEIGHBOURS)
                if n.id != cube.id and n.id not in grouped
                and n.score >= policy.merge_min_similarity
            ]  # fmt: skip
            rows = repo.live_by_ids(namespace, near, MemoryFilter(), now)
            alike = [i for i in near if i in rows and _same_record(rows[i], cube)]
            twin_sources = repo.created_by(alike)
            twins = [i for i in alike if policy.merges(rows[i].category, twin_sources[i])]
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


def _same_record(other: MemCube, cube: MemCube) -> bool:
    """Whether ``other`` differs from ``cube`` at most in its wording: the same kind,
    owner, session, category, tag set and metadata, and neither a record."""
    return (
        other.mergeable and cube.mergeable and _selectors(other) == _selectors(cube)
    )


def _selectors(cube: MemCube) -> tuple:
    selected = identity_key("", cube.user_id, cube.agent_id, cube.session_id, cube.category,
                            cube.tags)  # fmt: skip
    return (*selected, canonical_metadata(cube.meta), cube.kind)


def unmerge(memos: MemOS, namespace: str, fused_id: str, origin: Origin) -> list[Memory]:
    """Undo the merge that made ``fused_id``: its sources are served again as they were
    before it (their state, text, ids and so their order), each with a new version
    unmerged from it, and the fused memory is deleted. Refused (nothing written) when
    ``fused_id`` was not made by a merge (409) or a source has changed since (409)."""
    with memos.db.reader() as session:
        repo = CubeRepository(session)
        fused = repo.get(namespace, fused_id)
        first = repo.version(fused_id, 1) if fused is not None else None
    if fused is None or first is None:
        raise NotFoundError(f"memory {fused_id!r} not found")
    if first.operation != Operation.FUSE.value:
        raise ConflictError(f"memory {fused_id!r} was not made by merging memories")
    source_ids = [d["id"] for d in first.derived_from]
    with memos.indexes.lock(namespace), memos.graph.lock:
        index = memos.indexes.get(namespace)
        memos.graph.graph(namespace)
        with memos.db.unit_of_work() as session:
            repo = CubeRepository(session)
            now = utcnow()
            fused = repo.get(namespace, fused_id, for_update=True)
            if fused is None or fused.state not in INDEXED_STATES:
                raise NotFoundError(f"memory {fused_id!r} not found")
            restored = restore_sources(memos, session, fused, source_ids, origin, now, index)
            into = [{"id": c.id, "version": c.version, "relation": "unmerged_into"}
                    for c in restored.cubes]  # fmt: skip
            tombstone(repo, fused, now, origin, Operation.UNMERGE, into)
            revision = repo.bump_revision(namespace)
            uncache = memos.cache.invalidate_memories(session, namespace, [fused_id])
            retire = memos.graph.retire_memory(session, namespace, fused_id, now)
            result = [memory_of(cube) for cube in restored.cubes]
        uncache()
        retire()
        index.remove([fused_id])
        restored.apply(index)
        index.revision = revision
    return result


@dataclass
class Restored:
    """Sources served again in a unit of work, and what follows once it committed."""

    cubes: list[MemCube]
    vectors: list[np.ndarray]
    relinks: list[Callable[[], None]]

    def apply(self, index: VectorIndex) -> None:
        for relink in self.relinks:
            relink()
        if self.cubes:
            index.upsert([c.id for c in self.cubes], np.stack(self.vectors))


def restore_sources(
    memos: MemOS, session: Session, fused: MemCube, source_ids: Sequence[str], origin: Origin,
    now: datetime, index: VectorIndex, *, strict: bool = True,
) -> Restored:  # fmt: skip
    """In the caller's unit of work (holding the index and graph locks): the sources of
    ``fused`` that are still merged into it served again in the state they had before,
    each with a version ``unmerged_from`` it. ``strict``: one that is not is a conflict
    (otherwise it is left as it is)."""
    repo = CubeRepository(session)
    unmerged_from = [{"id": fused.id, "version": fused.version, "relation": "unmerged_from"}]
    restored = Restored([], [], [])
    for source_id in source_ids:
        found = _merged_source(repo, fused.namespace, source_id, fused.id)
        if found is None:
            if strict:
                raise ConflictError(f"memory {source_id!r} is no longer merged into "
                                    f"{fused.id!r}: it cannot be restored")  # fmt: skip
            continue
        cube, state = found
        cube.state = state
        cube.updated_at = now
        cube.version += 1
        repo.add_version(CubeVersion(**version_row(cube, Operation.UNMERGE, origin, now,
                                                   unmerged_from)))  # fmt: skip
        vector = decode_vector(cube.embedding, memos.embedder.dim)
        near = memos.related(index, vector[None, :], itself=cube.id)[0]
        node = NewNode(cube.id, cube.version, cube.payload or "", related=near)
        restored.cubes.append(cube)
        restored.vectors.append(vector)
        restored.relinks.append(memos.graph.relink(session, fused.namespace, node, now))
    return restored


def _merged_source(
    repo: CubeRepository, namespace: str, source_id: str, fused_id: str
) -> tuple[MemCube, str] | None:
    """A source still merged into ``fused_id``, and the state it had before; None when
    it is not (any longer)."""
    cube = repo.get(namespace, source_id, for_update=True)
    last = repo.version(source_id, cube.version) if cube is not None else None
    into = last.derived_from if last is not None else []
    if (
        cube is None or cube.state != State.MERGED.value or cube.embedding is None
        or not any(d.get("id") == fused_id and d.get("relation") == "merged_into" for d in into)
    ):  # fmt: skip
        return None
    before = repo.version(source_id, cube.version - 1)
    state = before.state if before is not None else State.GENERATED.value
    return cube, state if state in INDEXED_STATES else State.GENERATED.value
