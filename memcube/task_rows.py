"""The task memory's rows: one namespace's tasks, read and written in a caller's unit of
work."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Task


def get_task(
    session: Session, namespace: str, task_id: str, for_update: bool = False
) -> Task | None:
    stmt = select(Task).where(Task.namespace == namespace, Task.id == task_id)
    return session.scalar(stmt.with_for_update() if for_update else stmt)


def namespace_tasks(session: Session, namespace: str) -> Sequence[Task]:
    """Every task of the namespace, oldest first."""
    stmt = select(Task).where(Task.namespace == namespace)
    return session.scalars(stmt.order_by(Task.created_at, Task.id)).all()


def add_task(session: Session, task: Task) -> None:
    session.add(task)
    session.flush()
