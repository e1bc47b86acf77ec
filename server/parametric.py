"""/v1/parametric: parametric memories (LoRA adapters trained on memories' text), and
/v1/jobs: the training jobs that make them (memos/parametric/)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Response, delete, get, post
from msgspec import Meta

from memos.kernel import Kernel
from memos.memcube.filters import MemoryFilter
from memos.parametric.service import JobInfo, Parametric
from memos.parametric.training import (
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_RANK,
    MAX_STEPS,
    MAX_TEXTS,
    MAX_TOKENS,
    TARGET_MODULES,
    TrainingConfig,
)

from .auth import Tenant, TenantController
from .problems import problems
from .schemas import FilterTags, MemoryId, Name, Strict

AdapterName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
MemoryIds = Annotated[list[MemoryId], Meta(min_length=1, max_length=MAX_TEXTS)]
TargetModule = Annotated[str, Meta(pattern="^(" + "|".join(TARGET_MODULES) + ")$")]


class SourceFilter(Strict):
    user_id: Name | None = None
    agent_id: Name | None = None
    session_id: Name | None = None
    category: Name | None = None
    tags: FilterTags = msgspec.field(default_factory=list)


class ParametricIn(Strict):
    name: AdapterName
    # the memories to learn: these ids, or every served plaintext memory the filter matches
    memory_ids: MemoryIds | None = None
    filter: SourceFilter | None = None
    # optimizer steps; by default enough for ``epochs`` passes over the examples
    steps: Annotated[int, Meta(ge=1, le=MAX_STEPS)] | None = None
    epochs: Annotated[int, Meta(ge=1, le=MAX_EPOCHS)] = 10
    batch_size: Annotated[int, Meta(ge=1, le=MAX_BATCH)] = 16
    rank: Annotated[int, Meta(ge=1, le=MAX_RANK)] = 8
    alpha: Annotated[int, Meta(ge=1, le=4 * MAX_RANK)] = 16
    learning_rate: Annotated[float, Meta(gt=0, le=0.1)] = 5e-3
    max_tokens: Annotated[int, Meta(ge=8, le=MAX_TOKENS)] = 64
    # the layers to adapt; by default those the engine serves (MEMOS_LLM_LORA_MODULES)
    target_modules: (
        Annotated[list[TargetModule], Meta(min_length=1, max_length=len(TARGET_MODULES))] | None
    ) = None
    # weight of the term that holds the model to its own behaviour on other text
    replay_weight: Annotated[float, Meta(ge=0, le=100)] = 1.0


class JobOut(msgspec.Struct):
    id: str
    kind: str
    state: str  # queued | running | succeeded | failed | cancelled
    progress: float  # 0..1
    detail: dict[str, Any]
    result_id: str | None  # the cube a succeeded job made
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: JobInfo) -> JobOut:
        return cls(job.id, job.kind, job.state, job.progress, job.detail, job.result_id,
                   job.error, job.created_at, job.started_at, job.finished_at)  # fmt: skip


class ParametricOut(msgspec.Struct):
    id: str
    name: str
    version: int
    checksum: str
    base_model: str
    training: dict[str, Any]
    metrics: dict[str, Any]
    derived_from: list[dict[str, Any]]  # the memory versions it was trained on

    @classmethod
    def of(cls, p: Parametric) -> ParametricOut:
        return cls(p.id, p.name, p.version, p.checksum, p.base_model, p.training, p.metrics,
                   list(p.derived_from))  # fmt: skip


class ParametricListOut(msgspec.Struct):
    items: list[ParametricOut]


class ParametricController(TenantController):
    path = "/v1/parametric"
    tags = ["parametric"]

    @post("/", status_code=202, responses=problems(404, 409, 429, 503),
          summary="Train a named adapter on memories (a background job)")  # fmt: skip
    async def train(self, data: ParametricIn, tenant: Tenant, kernel: Kernel) -> JobOut:
        """202 with the job; `GET /v1/jobs/{id}` follows it. The memories are chosen now
        (their versions are the new memory's provenance); the adapter is trained on the
        chat model, one job at a time."""
        flt = None
        if data.filter is not None:
            f = data.filter
            flt = MemoryFilter(user_id=f.user_id, agent_id=f.agent_id, session_id=f.session_id,
                               category=f.category, tags=tuple(f.tags))  # fmt: skip
        config = TrainingConfig(steps=data.steps, epochs=data.epochs, batch_size=data.batch_size,
                                rank=data.rank, alpha=data.alpha,
                                learning_rate=data.learning_rate, max_tokens=data.max_tokens,
                                target_modules=tuple(data.target_modules or
                                                     kernel.memos.settings.llm_lora_modules),
                                replay_weight=data.replay_weight)  # fmt: skip

        def start() -> JobInfo:
            return kernel.parametric.start(
                tenant.namespace, data.name, memory_ids=data.memory_ids, filters=flt,
                config=config, origin=tenant.origin(),
            )  # fmt: skip

        return JobOut.of(await anyio.to_thread.run_sync(start))

    @post("/{name:str}/retrain", status_code=202, responses=problems(404, 409, 429, 503),
          summary="Train an adapter an erasure retired again, without the erased")  # fmt: skip
    async def retrain(self, name: str, tenant: Tenant, kernel: Kernel) -> JobOut:
        """202 with the job: the retired adapter's training configuration on its sources
        that are still served. 404 when no adapter of that name was retired; 409 when
        one of that name is served, or none of its sources is."""
        info = await anyio.to_thread.run_sync(
            kernel.parametric.retrain, tenant.namespace, name, tenant.origin()
        )
        return JobOut.of(info)

    @get("/", summary="List parametric memories", responses=problems())
    async def list_parametric(self, tenant: Tenant, kernel: Kernel) -> ParametricListOut:
        found = await anyio.to_thread.run_sync(kernel.parametric.list, tenant.namespace)
        return ParametricListOut([ParametricOut.of(p) for p in found])

    @get("/{name:str}", summary="Get a parametric memory", responses=problems(404))
    async def get_parametric(self, name: str, tenant: Tenant, kernel: Kernel) -> ParametricOut:
        found = await anyio.to_thread.run_sync(kernel.parametric.get, tenant.namespace, name)
        return ParametricOut.of(found)

    @delete("/{name:str}", summary="Delete a parametric memory and its adapter's files",
            responses=problems(404))  # fmt: skip
    async def delete_parametric(self, name: str, tenant: Tenant, kernel: Kernel) -> None:
        """204; an engine that loaded the adapter drops it."""
        await anyio.to_thread.run_sync(
            kernel.parametric.delete, tenant.namespace, name, tenant.origin()
        )


class JobController(TenantController):
    path = "/v1/jobs"
    tags = ["jobs"]

    @get("/{job_id:str}", summary="A job's state and progress", responses=problems(404))
    async def get_job(self, job_id: str, tenant: Tenant, kernel: Kernel) -> JobOut:
        return JobOut.of(await anyio.to_thread.run_sync(kernel.parametric.job, tenant.namespace,
                                                        job_id))  # fmt: skip

    @post("/{job_id:str}/cancel", status_code=202, responses=problems(404, 409),
          summary="Cancel a queued or running job")  # fmt: skip
    async def cancel_job(self, job_id: str, tenant: Tenant, kernel: Kernel) -> Response[JobOut]:
        """202: it stops between two training steps, leaving nothing; 409 once it ended."""
        info = await anyio.to_thread.run_sync(kernel.parametric.cancel, tenant.namespace, job_id)
        return Response(JobOut.of(info), status_code=202)
