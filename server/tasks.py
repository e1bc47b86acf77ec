"""/v1/tasks: the caller's task tree and dependency DAG (memos/graph/tasks.py), and a
task's context: the path from its root, its dependencies' outcomes, its memories."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import delete, get, patch, post
from litestar.params import Parameter

from memos import validation as check
from memos.core import MemOS
from memos.graph.tasks import (
    CONTEXT_LIMIT,
    MAX_CONTEXT_LIMIT,
    MAX_LINKS,
    MAX_OUTCOME_CHARS,
    MAX_OWNER_CHARS,
    MAX_TITLE_CHARS,
    TaskContext,
    TaskRecord,
)

from .auth import Tenant, TenantController
from .problems import problems
from .schemas import MemoryId, MemoryOut, Strict

Status = Literal["todo", "in_progress", "blocked", "done", "cancelled"]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TITLE_CHARS)]
Owner = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_OWNER_CHARS)]
Outcome = Annotated[str, msgspec.Meta(max_length=MAX_OUTCOME_CHARS)]
Ids = Annotated[list[MemoryId], msgspec.Meta(max_length=MAX_LINKS)]
TASK_ID = Parameter(pattern=check.ID_PATTERN)


class TaskIn(Strict):
    title: Title
    parent_id: MemoryId | None = None
    depends_on: Ids = msgspec.field(default_factory=list)
    status: Status = "todo"
    owner: Owner | None = None
    memory_ids: Ids = msgspec.field(default_factory=list)
    outcome: Outcome | None = None


class TaskPatch(Strict):
    title: Title | msgspec.UnsetType = msgspec.UNSET
    parent_id: MemoryId | msgspec.UnsetType | None = msgspec.UNSET
    depends_on: Ids | msgspec.UnsetType = msgspec.UNSET
    status: Status | msgspec.UnsetType = msgspec.UNSET
    owner: Owner | msgspec.UnsetType | None = msgspec.UNSET
    memory_ids: Ids | msgspec.UnsetType = msgspec.UNSET
    outcome: Outcome | msgspec.UnsetType | None = msgspec.UNSET


class TaskOut(msgspec.Struct):
    id: str
    title: str
    status: str
    owner: str | None
    parent_id: str | None
    depends_on: list[str]
    memory_ids: list[str]
    outcome: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, task: TaskRecord) -> TaskOut:
        return cls(
            task.id, task.title, task.status, task.owner, task.parent_id,
            list(task.depends_on), list(task.memory_ids), task.outcome, task.created_at,
            task.updated_at,
        )  # fmt: skip


class TaskListOut(msgspec.Struct):
    items: list[TaskOut]


class ContextOut(msgspec.Struct):
    task: TaskOut
    path: list[TaskOut]  # from the root (or the limit-th ancestor) down to the parent
    dependencies: list[TaskOut]  # what it depends on (the nearest limit), deps first
    memories: list[MemoryOut]  # attached to those tasks and to it
    path_total: int  # ancestors in all
    dependencies_total: int  # tasks it depends on, transitively, in all

    @classmethod
    def of(cls, context: TaskContext) -> ContextOut:
        return cls(
            TaskOut.of(context.task), [TaskOut.of(t) for t in context.path],
            [TaskOut.of(t) for t in context.dependencies],
            [MemoryOut.of(m) for m in context.memories],
            context.path_total, context.dependencies_total,
        )  # fmt: skip


class TaskController(TenantController):
    path = "/v1/tasks"
    tags = ["tasks"]

    @post("/", status_code=201, sync_to_thread=True, summary="Create a task",
          responses=problems())  # fmt: skip
    def create(self, data: TaskIn, tenant: Tenant, memos: MemOS) -> TaskOut:
        return TaskOut.of(memos.tasks.create(tenant.namespace, **msgspec.structs.asdict(data)))

    @get("/", sync_to_thread=True, summary="List tasks, oldest first", responses=problems())
    def list_tasks(
        self, tenant: Tenant, memos: MemOS,
        parent_id: Annotated[str | None, Parameter(pattern=check.ID_PATTERN)] = None,
        status: Status | None = None,
    ) -> TaskListOut:  # fmt: skip
        tasks = memos.tasks.list(tenant.namespace, parent_id=parent_id, status=status)
        return TaskListOut([TaskOut.of(t) for t in tasks])

    @get("/{task_id:str}", sync_to_thread=True, summary="Get a task", responses=problems(404))
    def get_task(self, task_id: Annotated[str, TASK_ID], tenant: Tenant, memos: MemOS) -> TaskOut:
        return TaskOut.of(memos.tasks.get(tenant.namespace, task_id))

    @patch("/{task_id:str}", sync_to_thread=True, summary="Change a task",
           responses=problems(404))  # fmt: skip
    def update(
        self, task_id: Annotated[str, TASK_ID], data: TaskPatch, tenant: Tenant, memos: MemOS
    ) -> TaskOut:
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        return TaskOut.of(memos.tasks.update(tenant.namespace, task_id, **changes))

    @delete("/{task_id:str}", sync_to_thread=True, summary="Delete a task",
            responses=problems(404, 409))  # fmt: skip
    def delete_task(self, task_id: Annotated[str, TASK_ID], tenant: Tenant, memos: MemOS) -> None:
        memos.tasks.delete(tenant.namespace, task_id)

    @get("/{task_id:str}/context", sync_to_thread=True, responses=problems(404),
         summary="A task's path from the root, dependencies' outcomes, memories")  # fmt: skip
    def context(
        self, task_id: Annotated[str, TASK_ID], tenant: Tenant, memos: MemOS,
        limit: Annotated[int, Parameter(ge=1, le=MAX_CONTEXT_LIMIT)] = CONTEXT_LIMIT,
    ) -> ContextOut:  # fmt: skip
        """At most ``limit`` ancestors and dependencies, the nearest; ``path_total`` and
        ``dependencies_total`` say how many there are in all."""
        return ContextOut.of(memos.tasks.context(tenant.namespace, task_id, limit))
