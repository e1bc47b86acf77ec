"""/v1/compositions: named, versioned sets of memories of any kind (memos/composition.py),
used together in chat as ``memory: {compose: "<name>"}``."""

from __future__ import annotations

from typing import Annotated

import anyio
import msgspec
from litestar import Response, delete, get, put
from msgspec import Meta

from memos.composition import MAX_MEMBERS, Composition
from memos.kernel import Kernel

from .auth import Tenant, TenantController
from .problems import problems
from .schemas import MemoryId, Strict, Version

CompositionName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class CompositionIn(Strict):
    memory_ids: Annotated[list[MemoryId], Meta(min_length=1, max_length=MAX_MEMBERS)]


class MemberOut(msgspec.Struct):
    id: str
    kind: str
    version: int


class CompositionOut(msgspec.Struct):
    id: str
    name: str
    version: int
    members: list[MemberOut]

    @classmethod
    def of(cls, c: Composition) -> CompositionOut:
        members = [MemberOut(m.id, m.kind, m.version) for m in c.members]
        return cls(c.id, c.name, c.version, members)


class CompositionListOut(msgspec.Struct):
    compositions: list[CompositionOut]


class CompositionController(TenantController):
    path = "/v1/compositions"
    tags = ["compositions"]

    @put("/{name:str}", responses=problems(404),
         summary="Compose memories under a name (its next version if the name exists)")  # fmt: skip
    async def put_composition(
        self, name: CompositionName, data: CompositionIn, tenant: Tenant, kernel: Kernel
    ) -> Response[CompositionOut]:
        """201 with a new composition, 200 with the next version of an existing one (or
        the same version when nothing changed). Members are served memories of the
        namespace, each recorded at its current version; at most one activation and one
        parametric memory."""
        done, created = await anyio.to_thread.run_sync(
            kernel.compositions.put, tenant.namespace, name, data.memory_ids, tenant.origin()
        )
        return Response(CompositionOut.of(done), status_code=201 if created else 200)

    @get("/", summary="List compositions", responses=problems())
    async def list_compositions(self, tenant: Tenant, kernel: Kernel) -> CompositionListOut:
        found = await anyio.to_thread.run_sync(kernel.compositions.list, tenant.namespace)
        return CompositionListOut([CompositionOut.of(c) for c in found])

    @get("/{name:str}", summary="Get a composition (or one of its versions)",
         responses=problems(404))  # fmt: skip
    async def get_composition(
        self, name: CompositionName, tenant: Tenant, kernel: Kernel, version: Version | None = None
    ) -> CompositionOut:
        found = await anyio.to_thread.run_sync(
            kernel.compositions.get, tenant.namespace, name, version
        )
        return CompositionOut.of(found)

    @delete("/{name:str}", summary="Delete a composition (its members stay)",
            responses=problems(404))  # fmt: skip
    async def delete_composition(self, name: CompositionName, tenant: Tenant,
                                 kernel: Kernel) -> None:  # fmt: skip
        await anyio.to_thread.run_sync(
            kernel.compositions.delete, tenant.namespace, name, tenant.origin()
        )
