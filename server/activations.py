"""/v1/activations: activation memories, a user's or agent's memories kept as the KV
cache of one rendered block (memos/activation/). Chat with ``memory`` naming the same
user and agent starts with the block and reuses its cache."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Response, delete, get, post
from msgspec import Meta

from memos.activation import Activation
from memos.activation.service import MAX_ACTIVATION_IDS
from memos.kernel import Kernel
from memos.memcube.filters import MemoryFilter

from .auth import Tenant, TenantController
from .problems import problems
from .schemas import FilterTags, MemoryId, Name, Strict

MemoryIds = Annotated[list[MemoryId], Meta(min_length=1, max_length=MAX_ACTIVATION_IDS)]


class ActivationFilter(Strict):
    session_id: Name | None = None
    category: Name | None = None
    tags: FilterTags = msgspec.field(default_factory=list)


class ActivationIn(Strict):
    user_id: Name | None = None
    agent_id: Name | None = None
    # the memories to render: these ids, or the hottest the filter matches
    memory_ids: MemoryIds | None = None
    filters: ActivationFilter | None = None


class ActivationOut(msgspec.Struct):
    id: str
    user_id: str | None
    agent_id: str | None
    text: str | None
    memory_ids: list[str]
    sources: list[dict[str, Any]]  # the memory versions the block renders
    prefix_tokens: int  # the block's tokens the engine keeps (0 until counted)
    pad_tokens: int  # filler after the text that ends the block on a KV block's edge
    selection: str  # "ids" (chosen by a caller) or "hot" (kept by the scheduler)
    version: int
    state: str
    uses: int
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime
    engine: dict[str, int]  # pinned_blocks, host_blocks (empty when the engine cannot tell)

    @classmethod
    def of(cls, a: Activation, engine: dict[str, int]) -> ActivationOut:
        m = a.memory
        return cls(
            id=m.id, user_id=m.user_id, agent_id=m.agent_id, text=m.text,
            memory_ids=a.memory_ids, sources=list(a.sources), prefix_tokens=a.prefix_tokens,
            pad_tokens=a.pad_tokens,
            selection=a.selection, version=m.version, state=m.state, uses=m.access_count,
            last_used_at=m.last_accessed_at, created_at=m.created_at, updated_at=m.updated_at,
            engine=engine,
        )  # fmt: skip


class ActivationsOut(msgspec.Struct):
    items: list[ActivationOut]


class ActivationController(TenantController):
    path = "/v1/activations"
    tags = ["activations"]

    @get("/", summary="List activation memories", responses=problems())
    async def list_activations(self, tenant: Tenant, kernel: Kernel) -> ActivationsOut:
        found = await anyio.to_thread.run_sync(kernel.activations.list, tenant.namespace)
        return ActivationsOut([await _out(kernel, a) for a in found])

    @get("/{activation_id:str}", summary="Get an activation memory", responses=problems(404))
    async def get_activation(
        self, activation_id: str, tenant: Tenant, kernel: Kernel
    ) -> ActivationOut:
        found = await anyio.to_thread.run_sync(
            kernel.activations.get, tenant.namespace, activation_id
        )
        return await _out(kernel, found)

    @post(
        "/",
        summary="Make a user's or agent's activation memory from memory ids or a filter",
        responses=problems(404, 503),
    )
    async def create(
        self, data: ActivationIn, tenant: Tenant, kernel: Kernel
    ) -> Response[ActivationOut]:
        """201 with a new activation, 200 with a new version of the one the user and agent
        had. The block's KV cache is computed and pinned before the answer (503 while
        the language model is not ready; nothing is stored then)."""
        kernel.activations.require_model()
        flt = None
        if data.filters is not None or data.memory_ids is None:
            f = data.filters or ActivationFilter()
            flt = MemoryFilter(session_id=f.session_id, category=f.category, tags=tuple(f.tags))

        def build() -> tuple[Activation, bool]:
            return kernel.activations.build(
                tenant.namespace, user_id=data.user_id, agent_id=data.agent_id,
                memory_ids=data.memory_ids, filters=flt, origin=tenant.origin(),
            )  # fmt: skip

        activation, created = await anyio.to_thread.run_sync(build)
        activation = await kernel.activations.warm(activation)
        return Response(await _out(kernel, activation), status_code=201 if created else 200)

    @delete(
        "/{activation_id:str}", summary="Delete an activation memory", responses=problems(404)
    )
    async def delete_activation(self, activation_id: str, tenant: Tenant, kernel: Kernel) -> None:
        """204; the engine lets the block's KV cache go."""
        activation = await anyio.to_thread.run_sync(
            kernel.activations.delete, tenant.namespace, activation_id, tenant.origin()
        )
        await kernel.activations.release(activation)


async def _out(kernel: Kernel, activation: Activation) -> ActivationOut:
    held = await anyio.to_thread.run_sync(kernel.activations.held, activation)
    return ActivationOut.of(activation, held)
