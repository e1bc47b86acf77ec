"""Migrate: copy or move memories, with their versions, to another namespace or owner.

A migrated memory is a new memory in the target: every version of the source is
copied under the new id (each keeps its own provenance), then one more version records
the migration, derived from the source's namespace, id and version. A move also
tombstones the source, pointing at the copy. All of it is one unit of work: every
memory is migrated, or none is.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memos import validation as check
from memos.errors import ConflictError, InvalidInputError, NotFoundError
from memos.graph.service import NewNode
from memos.lifecycle import tombstone
from memos.memcube.graph_rows import has_live_facts
from memos.memcube.identity import identity_of
from memos.memcube.ids import is_id, new_id
from memos.memcube.models import CubeVersion, Kind, MemCube, Operation, is_served, utcnow
from memos.memcube.repository import CubeRepository
from memos.provenance import Origin, version_row
from memos.records import Memory, memory_of
from memos.vector_index import decode_vector

if TYPE_CHECKING:
    from memos.core import MemOS

MAX_MIGRATE = 100  # memories a call
KEEP = object()  # an owner field left as the source has it


@dataclass(frozen=True)
class MigrationTarget:
    namespace: str
    user_id: Any = KEEP  # str | None, or KEEP
    agent_id: Any = KEEP


def migrate_memories(
    memos: MemOS, ids: Sequence[str], source: str, target: MigrationTarget, *,
    move: bool, origin: Origin,
) -> list[Memory]:  # fmt: skip
    """Copy (or move) the served plaintext memories ``ids`` of namespace ``source`` to
    ``target``; returns the new memories, in the order of ``ids``. Refused, with nothing
    written, when a memory is not found (404), is not plaintext or asserts graph facts
    (409: their provenance stays with it), or its content is already stored for the
    same owner in the target (409, naming the memory there)."""
    _check(ids, source, target)
    namespaces = sorted({source, target.namespace})
    with ExitStack() as locks:
        for namespace in namespaces:  # always in name order: two migrations never deadlock
            locks.enter_context(memos.indexes.lock(namespace))
        locks.enter_context(memos.graph.lock)
        source_index = memos.indexes.get(source)
        target_index = memos.indexes.get(target.namespace)
        for namespace in namespaces:
            memos.graph.graph(namespace)
        with memos.db.unit_of_work() as session:
            repo = CubeRepository(session)
            repo.ensure_namespace(target.namespace)
            now = utcnow()
            cubes = [_migratable(repo, session, source, memory_id, now) for memory_id in ids]
            copies: list[MemCube] = []
            vectors = []
            for cube in cubes:
                copy = _copy_of(cube, target)
                _refuse_twin(repo, copy, now)
                vector = decode_vector(cube.embedding, memos.embedder.dim)
                relation = "moved_from" if move else "copied_from"
                history = [_copied_version(v, copy.id) for v in repo.versions(cube.id)]
                copy.version = len(history) + 1
                derived = [{"namespace": source, "id": cube.id, "version": cube.version,
                            "relation": relation}]  # fmt: skip
                repo.insert_new(
                    [_columns(copy)],
                    [*history, version_row(copy, Operation.MIGRATE, origin, now, derived)],
                )
                copies.append(copy)
                vectors.append(vector)
            retire = []
            if move:
                for cube, copy in zip(cubes, copies, strict=True):
                    moved = [{"namespace": target.namespace, "id": copy.id,
                              "version": copy.version, "relation": "moved_to"}]  # fmt: skip
                    tombstone(repo, cube, now, origin, Operation.MIGRATE, moved)
                    retire.append(memos.graph.retire_memory(session, source, cube.id, now))
            revisions = {namespace: repo.bump_revision(namespace) for namespace in namespaces}
            uncache = memos.cache.invalidate_memories(session, source, list(ids)) if move else None
            nodes = [
                NewNode(copy.id, copy.version, copy.payload or "", copy.valid_from,
                        related=memos.related(target_index, vector[None, :], itself=copy.id)[0])
                for copy, vector in zip(copies, vectors, strict=True)
            ]  # fmt: skip
            link = memos.graph.ingest(session, target.namespace, nodes, now)
            result = [memory_of(copy) for copy in copies]
        if uncache is not None:
            uncache()
        for apply in retire:
            apply()
        link()
        if move:
            source_index.remove(list(ids))
        for copy, vector in zip(copies, vectors, strict=True):
            target_index.upsert([copy.id], vector[None, :])
        source_index.revision = revisions[source]
        target_index.revision = revisions[target.namespace]
    return result


def _check(ids: Sequence[str], source: str, target: MigrationTarget) -> None:
    check.namespace(source)
    check.namespace(target.namespace)
    if not isinstance(ids, list | tuple) or not 1 <= len(ids) <= MAX_MIGRATE:
        raise InvalidInputError(f"memory_ids must list 1 to {MAX_MIGRATE} memory ids")
    for memory_id in ids:
        if not isinstance(memory_id, str) or not is_id(memory_id):
            raise InvalidInputError(f"memory_ids: {memory_id!r} is not a memory id (a UUID)")
    if len(set(ids)) != len(ids):
        raise InvalidInputError("memory_ids names a memory twice")
    for field in ("user_id", "agent_id"):
        value = getattr(target, field)
        if value is not KEEP and value is not None:
            check.text(value, 128, field)
    if target.namespace == source and target.user_id is KEEP and target.agent_id is KEEP:
        raise InvalidInputError(
            "nothing to migrate to: give another namespace, user_id or agent_id"
        )


def _migratable(repo: CubeRepository, session: Any, namespace: str, memory_id: str,
                now: Any) -> MemCube:  # fmt: skip
    cube = repo.get(namespace, memory_id, for_update=True)
    if cube is None or not is_served(cube.state, cube.expires_at, now):
        raise NotFoundError(f"memory {memory_id!r} not found (or not served)")
    if cube.kind != Kind.PLAINTEXT.value:
        raise ConflictError(f"memory {memory_id!r} is a {cube.kind} memory; migrate plaintext")
    if cube.embedding is None:
        raise ConflictError(f"memory {memory_id!r} has no embedding to carry")
    if has_live_facts(session, namespace, cube.id):
        raise ConflictError(f"memory {memory_id!r} asserts facts; their provenance stays with it")
    return cube


def _copy_of(cube: MemCube, target: MigrationTarget) -> MemCube:
    columns = _columns(cube)
    columns.update(id=new_id(), namespace=target.namespace, access_count=0,
                   last_accessed_at=None, tags=list(cube.tags), meta=dict(cube.meta))  # fmt: skip
    for field in ("user_id", "agent_id"):
        if getattr(target, field) is not KEEP:
            columns[field] = getattr(target, field)
    return MemCube(**columns)


def _columns(cube: MemCube) -> dict[str, Any]:
    return {c.key: getattr(cube, c.key) for c in MemCube.__mapper__.column_attrs}


def _refuse_twin(repo: CubeRepository, copy: MemCube, now: Any) -> None:
    """A copy whose exact twin the target holds would be a duplicate (records are never
    duplicates: each is kept)."""
    if not copy.mergeable:
        return
    for twin in repo.live_with_hashes(copy.namespace, [copy.content_hash or ""], now):
        if twin.mergeable and identity_of(twin) == identity_of(copy):
            raise ConflictError(
                f"namespace {copy.namespace!r} already holds this content for the same "
                f"owner as memory {twin.id!r}"
            )



def _copied_version(version: CubeVersion, cube_id: str) -> dict[str, Any]:
    columns = {c.key: getattr(version, c.key) for c in CubeVersion.__mapper__.column_attrs}
    del columns["id"]
    columns["cube_id"] = cube_id
    return columns
