"""Task memory: a namespace's tasks as a tree (each task's ``parent``) and a dependency DAG
(``depends_on``), each with a status, an owner, an outcome and the memories attached to
it. A task's context is what an agent working on it needs: the path from its root, the
outcomes of what it depends on (transitively, dependencies first) and the memories
attached along the way. A change that would close a cycle is refused, naming it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from memos import validation as check
from memos.errors import ConflictError, InvalidInputError, NotFoundError
from memos.memcube.database import Database
from memos.memcube.filters import MemoryFilter
from memos.memcube.ids import is_id, new_id
from memos.memcube.models import Task, utcnow
from memos.memcube.repository import CubeRepository
from memos.memcube.task_rows import add_task, get_task, namespace_tasks
from memos.records import Memory, memory_of

STATUSES = ("todo", "in_progress", "blocked", "done", "cancelled")
MAX_TITLE_CHARS = 500
MAX_OWNER_CHARS = 200
MAX_OUTCOME_CHARS = 20_000
MAX_LINKS = 256  # dependencies or memories of one task
CONTEXT_LIMIT = 200  # ancestors and dependencies a context holds, by default ...
MAX_CONTEXT_LIMIT = 1_000  # ... and at most


@dataclass(frozen=True)
class TaskRecord:
    id: str
    title: str
    status: str
    owner: str | None
    parent_id: str | None
    depends_on: tuple[str, ...]
    memory_ids: tuple[str, ...]
    outcome: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TaskContext:
    task: TaskRecord
    path: list[TaskRecord]  # from the root (or the limit-th ancestor) down to the parent
    dependencies: list[TaskRecord]  # all it depends on (the nearest limit), deps first
    memories: list[Memory] = field(default_factory=list)  # attached to those and the task
    path_total: int = 0  # ancestors in all
    dependencies_total: int = 0  # tasks it depends on, transitively, in all


class TaskBoard:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()  # cycle checks read the namespace, then write

    def create(
        self, namespace: str, title: str, *, parent_id: str | None = None,
        depends_on: Sequence[str] = (), status: str = "todo", owner: str | None = None,
        memory_ids: Sequence[str] = (), outcome: str | None = None,
    ) -> TaskRecord:  # fmt: skip
        fields = _checked(
            title=title, status=status, owner=owner, outcome=outcome, parent_id=parent_id,
            depends_on=depends_on, memory_ids=memory_ids,
        )  # fmt: skip
        now = utcnow()
        task = Task(id=new_id(), namespace=namespace, created_at=now, updated_at=now, **fields)
        with self._lock, self._db.unit_of_work() as session:
            tasks = {t.id: t for t in namespace_tasks(session, namespace)}
            _check_references(session, namespace, tasks, task.id, fields)
            add_task(session, task)
            return _record(task)

    def update(self, namespace: str, task_id: str, **changes: Any) -> TaskRecord:
        """Change the given fields (title, status, owner, outcome, parent_id, depends_on,
        memory_ids); a field given as None is cleared."""
        known = {"title", "status", "owner", "outcome", "parent_id", "depends_on", "memory_ids"}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InvalidInputError(f"{unknown[0]} is not a task field")
        fields = _checked(**changes)
        with self._lock, self._db.unit_of_work() as session:
            task = get_task(session, namespace, task_id, for_update=True)
            if task is None:
                raise NotFoundError(f"task {task_id!r} not found")
            tasks = {t.id: t for t in namespace_tasks(session, namespace)}
            _check_references(session, namespace, tasks, task.id, fields)
            for key, value in fields.items():
                setattr(task, key, value)
            task.updated_at = utcnow()
            return _record(task)

    def get(self, namespace: str, task_id: str) -> TaskRecord:
        with self._db.reader() as session:
            task = get_task(session, namespace, task_id)
            if task is None:
                raise NotFoundError(f"task {task_id!r} not found")
            return _record(task)

    def list(
        self, namespace: str, parent_id: str | None = None, status: str | None = None
    ) -> list[TaskRecord]:
        if status is not None and status not in STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}")
        with self._db.reader() as session:
            tasks = namespace_tasks(session, namespace)
        return [
            _record(t) for t in tasks
            if (parent_id is None or t.parent_id == parent_id)
            and (status is None or t.status == status)
        ]  # fmt: skip

    def delete(self, namespace: str, task_id: str) -> None:
        """Delete a task no other task has as parent or dependency."""
        with self._lock, self._db.unit_of_work() as session:
            task = get_task(session, namespace, task_id, for_update=True)
            if task is None:
                raise NotFoundError(f"task {task_id!r} not found")
            for other in namespace_tasks(session, namespace):
                if other.parent_id == task_id or task_id in other.depends_on:
                    relation = "parent" if other.parent_id == task_id else "dependency"
                    raise ConflictError(f"task {task_id!r} is the {relation} of task "
                                        f"{other.id!r}; change that task first")  # fmt: skip
            session.delete(task)

    def context(
        self, namespace: str, task_id: str, limit: int = CONTEXT_LIMIT
    ) -> TaskContext:
        """The task, its ancestors and what it depends on: at most ``limit`` of each, the
        nearest (the totals say how many there are), with the memories attached."""
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidInputError("limit must be a whole number")
        if not 1 <= limit <= MAX_CONTEXT_LIMIT:
            raise InvalidInputError(f"limit must be from 1 to {MAX_CONTEXT_LIMIT}, got {limit}")
        with self._db.reader() as session:
            tasks = {t.id: _record(t) for t in namespace_tasks(session, namespace)}
            if task_id not in tasks:
                raise NotFoundError(f"task {task_id!r} not found")
            task = tasks[task_id]
            ancestors: list[TaskRecord] = []
            parent = task.parent_id
            while parent is not None and parent in tasks:
                ancestors.append(tasks[parent])
                parent = tasks[parent].parent_id
            path = ancestors[:limit][::-1]
            order = _dependencies_first(tasks, task_id)
            dependencies = [tasks[d] for d in _nearest(tasks, task_id, order, limit)]
            attached = [m for t in [*path, *dependencies, task] for m in t.memory_ids]
            served = CubeRepository(session).live_by_ids(
                namespace, list(dict.fromkeys(attached)), MemoryFilter(), utcnow()
            )
            memories = [memory_of(served[m]) for m in dict.fromkeys(attached) if m in served]
        return TaskContext(task, path, dependencies, memories, len(ancestors), len(order))


def _dependencies_first(tasks: dict[str, TaskRecord], task_id: str) -> list[str]:
    """Every task ``task_id`` depends on, transitively, each after its own dependencies
    (a walk with a stack of its own: chains may be deeper than Python's recursion)."""
    order: list[str] = []
    seen: set[str] = set()
    stack = [(task_id, iter(tasks[task_id].depends_on))]
    while stack:
        current, pending = stack[-1]
        for dep in pending:
            if dep in tasks and dep not in seen:
                seen.add(dep)
                stack.append((dep, iter(tasks[dep].depends_on)))
                break
        else:
            stack.pop()
            if current != task_id:
                order.append(current)
    return order


def _nearest(
    tasks: dict[str, TaskRecord], task_id: str, order: list[str], limit: int
) -> list[str]:
    """The ``limit`` dependencies fewest steps from ``task_id``, in ``order``."""
    if len(order) <= limit:
        return order
    near: set[str] = set()
    frontier = [task_id]
    while frontier and len(near) < limit:
        following = []
        for current in frontier:
            for dep in tasks[current].depends_on:
                if dep in tasks and dep not in near and len(near) < limit:
                    near.add(dep)
                    following.append(dep)
        frontier = following
    return [d for d in order if d in near]


def _checked(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "title":
            check.bounded_text(value, MAX_TITLE_CHARS, name)
        elif name == "status":
            if value not in STATUSES:
                raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}, "
                                        f"got {value!r}")  # fmt: skip
        elif name in ("owner", "outcome") and value is not None:
            limit = MAX_OWNER_CHARS if name == "owner" else MAX_OUTCOME_CHARS
            check.bounded_text(value, limit, name)
        elif name == "parent_id" and value is not None and not is_id(value):
            raise InvalidInputError(f"parent_id {value!r} is not a task id")
        elif name in ("depends_on", "memory_ids"):
            if value is None:
                value = []
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise InvalidInputError(f"{name} must be a list of ids")
            if len(value) > MAX_LINKS:
                raise InvalidInputError(f"{name} may hold at most {MAX_LINKS} ids")
            for i, item in enumerate(value):
                if not isinstance(item, str) or not is_id(item):
                    raise InvalidInputError(f"{name}[{i}] {item!r} is not an id")
            value = list(dict.fromkeys(value))
        out[name] = value
    return out


def _check_references(
    session: Any, namespace: str, tasks: dict[str, Task], task_id: str, fields: dict[str, Any]
) -> None:
    """Ids must name this namespace's tasks and served memories; no cycle may close."""
    parent = fields.get("parent_id")
    if parent is not None:
        if parent not in tasks:
            raise InvalidInputError(f"parent_id {parent!r} is not a task in this namespace")
        chain, current = [task_id], parent
        while current is not None:
            chain.append(current)
            if current == task_id:
                raise InvalidInputError(
                    "parent_id would make a cycle: " + " -> ".join(reversed(chain))
                )
            current = tasks[current].parent_id if current in tasks else None
    depends_on = fields.get("depends_on")
    if depends_on:
        for i, dep in enumerate(depends_on):
            if dep not in tasks:
                raise InvalidInputError(f"depends_on[{i}] {dep!r} is not a task in this namespace")
        edges = {t.id: list(t.depends_on) for t in tasks.values()}
        edges[task_id] = list(depends_on)
        cycle = _cycle_through(edges, task_id)
        if cycle:
            raise InvalidInputError("depends_on would make a cycle: " + " -> ".join(cycle))
    memory_ids = fields.get("memory_ids")
    if memory_ids:
        repo = CubeRepository(session)
        served = repo.live_by_ids(namespace, memory_ids, MemoryFilter(), utcnow())
        for i, memory_id in enumerate(memory_ids):
            if memory_id not in served:
                raise InvalidInputError(f"memory_ids[{i}] {memory_id!r} is not a memory "
                                        "in this namespace")  # fmt: skip


def _cycle_through(edges: dict[str, list[str]], start: str) -> list[str] | None:
    """A chain of dependencies from ``start`` back to itself, if there is one."""
    came_from: dict[str, str] = {}
    stack = [start]
    while stack:
        node = stack.pop()
        for nxt in edges.get(node, ()):
            if nxt == start:
                chain = [node]
                while chain[-1] != start:
                    chain.append(came_from[chain[-1]])
                return [*reversed(chain), start]
            if nxt not in came_from:
                came_from[nxt] = node
                stack.append(nxt)
    return None


def _record(task: Task) -> TaskRecord:
    return TaskRecord(
        task.id, task.title, task.status, task.owner, task.parent_id,
        tuple(task.depends_on), tuple(task.memory_ids), task.outcome, task.created_at,
        task.updated_at,
    )  # fmt: skip
