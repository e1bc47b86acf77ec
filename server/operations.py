"""MemCube operations on the caller's memories: fuse, unmerge and migrate."""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

import msgspec
from litestar import Request, post
from msgspec import Meta

from memos.core import MemOS
from memos.errors import ForbiddenError
from memos.fusion import MAX_SOURCES, MIN_SOURCES, fuse_memories
from memos.kernel import Kernel
from memos.relocate import KEEP, MAX_MIGRATE, MigrationTarget, migrate_memories
from memos.scheduler.merge import unmerge
from memos.validation import NAMESPACE_PATTERN

from .auth import Tenant, TenantController
from .problems import problems
from .schemas import MemoryId, MemoryOut, Name, Strict


class FuseIn(Strict):
    memory_ids: Annotated[list[MemoryId], Meta(min_length=MIN_SOURCES, max_length=MAX_SOURCES)]
    # merge: the sources' sentences in order, repeats dropped; summary: the chat model's
    mode: Literal["merge", "summary"] = "merge"


class MigrateIn(Strict):
    memory_ids: Annotated[list[MemoryId], Meta(min_length=1, max_length=MAX_MIGRATE)]
    mode: Literal["copy", "move"] = "copy"
    # the target namespace (default: the caller's); another needs X-Target-Key
    namespace: Annotated[str, Meta(pattern=NAMESPACE_PATTERN.pattern)] | None = None
    user_id: Name | msgspec.UnsetType | None = msgspec.UNSET  # the new owner; null: none
    agent_id: Name | msgspec.UnsetType | None = msgspec.UNSET


class UnmergedOut(msgspec.Struct):
    memories: list[MemoryOut]  # the sources, served again, in the order they were fused


class MigratedOut(msgspec.Struct):
    namespace: str
    memories: list[MemoryOut]


class OperationsController(TenantController):
    path = "/v1/memories"
    tags = ["memories"]

    @post("/fuse", status_code=201, responses=problems(404, 409, 503),
          summary="Fuse memories into a new one; the sources are marked merged")  # fmt: skip
    async def fuse(self, data: FuseIn, tenant: Tenant, memos: MemOS, kernel: Kernel) -> MemoryOut:
        """201 with the new memory (its first version is derived from each source's).
        Sources must be served plaintext memories of one user and agent that assert no
        graph facts (409: their provenance stays with them)."""
        memory = await fuse_memories(memos, kernel.chat, tenant.namespace, data.memory_ids,
                                     data.mode, tenant.origin())  # fmt: skip
        return MemoryOut.of(memory)

    @post("/{memory_id:str}/unmerge", status_code=200, sync_to_thread=True,
          responses=problems(404, 409),
          summary="Undo a merge: the sources served again, the fused memory deleted")  # fmt: skip
    def unmerge(self, memory_id: str, tenant: Tenant, memos: MemOS) -> UnmergedOut:
        """``memory_id`` is a memory the MemScheduler's merge rule or ``/fuse`` made. Its
        sources come back as they were before (state, text, ids, order), each with a
        version ``unmerged_from`` it; it is deleted. 409 when it was not made by a merge,
        or a source changed since."""
        restored = unmerge(memos, tenant.namespace, memory_id, tenant.origin())
        return UnmergedOut([MemoryOut.of(m) for m in restored])

    @post(
        "/migrate",
        status_code=201,
        sync_to_thread=True,
        responses=problems(403, 404, 409),
        summary="Copy or move memories, with their versions, to another namespace or owner",
    )
    def migrate(
        self, data: MigrateIn, tenant: Tenant, memos: MemOS, request: Request
    ) -> MigratedOut:
        """201 with the new memories, in the order asked. Each carries every version of
        its source, then a version derived from the source's namespace, id and version.
        ``move`` also tombstones the sources. Another namespace needs its key (or the
        admin key) in ``X-Target-Key``. All are migrated or none is."""
        target = data.namespace or tenant.namespace
        if target != tenant.namespace:
            _check_target_key(memos, request.headers.get("x-target-key"), target)
        where = MigrationTarget(
            target,
            KEEP if data.user_id is msgspec.UNSET else data.user_id,
            KEEP if data.agent_id is msgspec.UNSET else data.agent_id,
        )
        memories = migrate_memories(memos, data.memory_ids, tenant.namespace, where,
                                    move=data.mode == "move", origin=tenant.origin())  # fmt: skip
        return MigratedOut(target, [MemoryOut.of(m) for m in memories])


def _check_target_key(memos: MemOS, secret: str | None, target: str) -> None:
    """The target namespace is opened by a key of its own, or by the admin key."""
    if not secret:
        raise ForbiddenError(
            f"namespace {target!r} is not the caller's: send its key in X-Target-Key"
        )
    admin = memos.settings.admin_key
    if admin and hmac.compare_digest(secret.encode(), admin.encode()):
        return
    if memos.keys.namespace_for(secret) != target:
        raise ForbiddenError(f"X-Target-Key does not open namespace {target!r}")
