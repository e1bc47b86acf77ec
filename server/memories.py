"""/v1/memories: the memory verbs over HTTP. Thin: validation and work live in memos.core."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated

import anyio
import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from memos import validation as check
from memos.core import MAX_PAGE, MemOS
from memos.kernel import Kernel
from memos.memcube.filters import MemoryFilter
from memos.records import NewMemory

from .auth import Tenant, TenantController
from .idempotent import once, source_of
from .problems import problems
from .schemas import (
    AddOut,
    BatchIn,
    BatchOut,
    ErasedOut,
    FiltersIn,
    HistoryOut,
    HitOut,
    IndexCheckOut,
    ListOut,
    MemoryIn,
    MemoryOut,
    MemoryPatch,
    RollbackIn,
    SearchIn,
    SearchOut,
    StateName,
    VersionOut,
)

NAME = Parameter(min_length=1, max_length=check.MAX_ID_CHARS)
KIND_PATTERN = "^(plaintext|activation|parametric|composition)$"




def _new(item: MemoryIn) -> NewMemory:
    return NewMemory(
        text=item.text, user_id=item.user_id, agent_id=item.agent_id,
        session_id=item.session_id, category=item.category, tags=tuple(item.tags),
        metadata=item.metadata or {}, importance=item.importance, ttl_s=item.ttl_s,
        valid_from=item.valid_from, valid_to=item.valid_to,
        facts=tuple(f.to_input() for f in item.facts),
    )  # fmt: skip


def _filter(f: FiltersIn | None) -> MemoryFilter:
    if f is None:
        return MemoryFilter()
    return MemoryFilter(
        user_id=f.user_id, agent_id=f.agent_id, session_id=f.session_id, category=f.category,
        kind=f.kind, tags=tuple(f.tags), created_after=f.created_after,
        created_before=f.created_before, states=tuple(f.states),
    )  # fmt: skip


class MemoryController(TenantController):
    path = "/v1/memories"
    tags = ["memories"]

    @post(
        "/",
        summary="Add a memory",
        responses={
            **problems(),
            200: ResponseSpec(
                AddOut, description="Identical content was already stored: the existing memory"
            ),
        },
    )
    async def add(
        self, data: MemoryIn, request: Request, tenant: Tenant, memos: MemOS, kernel: Kernel,
    ) -> Response[AddOut]:  # fmt: skip
        """201 with the new memory; 200 with the existing one when its exact twin is stored
        (the same text, owner, session, category and tag set) unless ``dedupe`` is
        false, which stores a record (kept each time, never merged). A retry
        with the same ``Idempotency-Key`` header gets the first answer again;
        ``X-Memos-Source`` (api, sdk, agent, tool) is the provenance source."""
        source = source_of(request)

        def write() -> Response[AddOut]:
            result = memos.add_batch(
                [_new(data)], namespace=tenant.namespace, dedupe=data.dedupes(),
                origin=tenant.origin(source),
            )[0]  # fmt: skip
            out = MemoryOut.of(result.memory)
            body = AddOut(**msgspec.structs.asdict(out), created=result.created)
            return Response(body, status_code=201 if result.created else 200)

        return await once(request, tenant, kernel, write)

    @post("/batch", summary="Add many memories at once", responses=problems(409))
    async def add_batch(
        self, data: BatchIn, request: Request, tenant: Tenant, memos: MemOS, kernel: Kernel,
    ) -> Response[BatchOut]:  # fmt: skip
        """201; a retry with the same ``Idempotency-Key`` header gets the first answer
        again; ``X-Memos-Source`` (api, sdk, agent, tool) is the provenance source."""
        source = source_of(request)

        def write() -> Response[BatchOut]:
            results = memos.add_batch(
                [_new(item) for item in data.items],
                namespace=tenant.namespace,
                dedupe=[item.dedupes(data.dedupe) for item in data.items],
                origin=tenant.origin(source),
            )
            body = BatchOut([r.memory.id for r in results], [r.created for r in results])
            return Response(body, status_code=201)

        return await once(request, tenant, kernel, write)

    @get("/", sync_to_thread=True, summary="List memories, newest first", responses=problems())
    def list_memories(
        self,
        tenant: Tenant,
        memos: MemOS,
        user_id: Annotated[str | None, NAME] = None,
        agent_id: Annotated[str | None, NAME] = None,
        session_id: Annotated[str | None, NAME] = None,
        category: Annotated[str | None, NAME] = None,
        kind: Annotated[str | None, Parameter(pattern=KIND_PATTERN)] = None,
        tags: Annotated[
            list[str] | None,
            Parameter(query="tag", max_items=check.MAX_FILTER_TAGS),  # each: the kernel's bound
        ] = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        states: Annotated[
            list[StateName] | None, Parameter(query="state", max_items=4)
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = 100,
        cursor: Annotated[str | None, Parameter(pattern=check.ID_PATTERN)] = None,
    ) -> ListOut:
        flt = FiltersIn(
            user_id=user_id, agent_id=agent_id, session_id=session_id, category=category,
            kind=kind, tags=tags or [], created_after=created_after,
            created_before=created_before, states=states or [],
        )  # fmt: skip
        page = memos.list(
            namespace=tenant.namespace, filters=_filter(flt), limit=limit, cursor=cursor
        )
        return ListOut([MemoryOut.of(m) for m in page.items], page.next_cursor)

    @post(
        "/search",
        status_code=200,
        sync_to_thread=True,
        summary="Search by meaning (vector), also by words (hybrid), also along the graph",
        responses=problems(),
    )
    def search(self, data: SearchIn, tenant: Tenant, memos: MemOS) -> SearchOut:
        hits = memos.search(
            data.query,
            namespace=tenant.namespace,
            top_k=data.top_k,
            min_score=data.min_score,
            filters=_filter(data.filters),
            mode=data.mode,
            as_of=data.as_of,
            include_superseded=data.include_superseded,
            after=data.consistency.after if data.consistency is not None else None,
        )
        return SearchOut([HitOut.of_hit(h) for h in hits])

    @get("/{memory_id:str}", sync_to_thread=True, summary="Get one memory", responses=problems(404))
    def get_memory(self, memory_id: str, tenant: Tenant, memos: MemOS) -> MemoryOut:
        return MemoryOut.of(memos.get(memory_id, namespace=tenant.namespace))

    @patch(
        "/{memory_id:str}",
        sync_to_thread=True,
        summary="Update a memory (new version)",
        responses=problems(404),
    )
    def update(self, memory_id: str, data: MemoryPatch, tenant: Tenant, memos: MemOS) -> MemoryOut:
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        memory = memos.update(
            memory_id, namespace=tenant.namespace, origin=tenant.origin(), **changes
        )
        return MemoryOut.of(memory)

    @delete(
        "/{memory_id:str}",
        status_code=200,
        summary="Delete (tombstone) a memory, or erase it and what was made from it",
        responses={
            **problems(404, 409),
            204: ResponseSpec(None, description="A tombstone (without erase)"),
        },
    )
    async def delete_memory(
        self, memory_id: str, tenant: Tenant, memos: MemOS, kernel: Kernel, erase: bool = False
    ) -> Response[ErasedOut | None]:
        """204: a tombstone (the purge job removes its content after the configured
        grace period). With ``erase=true``, 200: its content is removed for good at
        once, with everything made from any of its versions (fused and copied memories,
        activation blocks and their KV, cached answers; compositions lose it; adapters
        trained on it are no longer served: retrain them), and its history keeps only
        the tombstone."""
        if erase:
            report = await kernel.erase(tenant.namespace, memory_id, tenant.origin())
            return Response(ErasedOut(report.erased, report.rebuilt, report.retired_adapters),
                            status_code=200)  # fmt: skip
        await anyio.to_thread.run_sync(partial(
            memos.delete, memory_id, namespace=tenant.namespace, origin=tenant.origin()
        ))  # fmt: skip
        return Response(None, status_code=204)

    @get(
        "/index/verify", sync_to_thread=True, responses=problems(),
        summary="Compare this process's search index with the database",
    )  # fmt: skip
    def verify_index(self, tenant: Tenant, memos: MemOS) -> IndexCheckOut:
        """The key's namespace: memories the index lacks, holds but should not, or holds
        with another vector than the stored one (all 0 on a replica that has applied
        every change), and the change it has applied up to (null on SQLite)."""
        found = memos.verify_index(tenant.namespace)
        applied = memos.follower.applied if memos.follower is not None else None
        return IndexCheckOut(**found, applied_seq=applied)

    @get(
        "/{memory_id:str}/history",
        sync_to_thread=True,
        summary="Every version of a memory",
        responses=problems(404),
    )
    def history(self, memory_id: str, tenant: Tenant, memos: MemOS) -> HistoryOut:
        versions = memos.history(memory_id, namespace=tenant.namespace)
        return HistoryOut(memory_id, [VersionOut.of(v) for v in versions])

    @post(
        "/{memory_id:str}/rollback", status_code=200, sync_to_thread=True,
        summary="Restore an earlier version (as a new version)", responses=problems(404, 409),
    )  # fmt: skip
    def rollback(self, memory_id: str, data: RollbackIn, tenant: Tenant, memos: MemOS) -> MemoryOut:
        memory = memos.rollback(
            memory_id, data.version, namespace=tenant.namespace, origin=tenant.origin()
        )
        return MemoryOut.of(memory)
