"""MemCube operations on the caller's memories: fuse (more to come: migrate, compose)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import post
from msgspec import Meta

from memos.core import MemOS
from memos.fusion import MAX_SOURCES, MIN_SOURCES, fuse_memories
from memos.kernel import Kernel

from .auth import Tenant, TenantController
from .problems import problems
from .schemas import MemoryId, MemoryOut, Strict


class FuseIn(Strict):
    memory_ids: Annotated[list[MemoryId], Meta(min_length=MIN_SOURCES, max_length=MAX_SOURCES)]
    # merge: the sources' sentences in order, repeats dropped; summary: the chat model's
    mode: Literal["merge", "summary"] = "merge"


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
