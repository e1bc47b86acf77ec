"""Tool calls' durations, as the TTL policy learned them: appended, read back at start."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from .models import ToolCall


def add_calls(session: Session, calls: Iterable[tuple[str, str, float]], now: datetime) -> int:
    rows = [
        {"namespace": ns, "tool": tool, "seconds": s, "recorded_at": now} for ns, tool, s in calls
    ]
    if rows:
        session.execute(insert(ToolCall), rows)
    return len(rows)


def _ranked():
    """Every call with its place among its namespace's calls of its tool, newest 1."""
    newest_first = (
        func.row_number()
        .over(partition_by=(ToolCall.namespace, ToolCall.tool), order_by=ToolCall.id.desc())
        .label("newest_first")
    )
    columns = (ToolCall.id, ToolCall.namespace, ToolCall.tool, ToolCall.seconds)
    return select(*columns, newest_first).subquery()


def recent_calls(session: Session, window: int) -> Iterator[tuple[str, str, float]]:
    """The last ``window`` calls of each namespace's tools, oldest first."""
    ranked = _ranked()
    stmt = (
        select(ranked.c.namespace, ranked.c.tool, ranked.c.seconds)
        .where(ranked.c.newest_first <= window)
        .order_by(ranked.c.id)
    )
    for namespace, tool, seconds in session.execute(stmt):
        yield str(namespace), str(tool), float(seconds)


def prune_calls(session: Session, window: int) -> None:
    """Forget calls older than each namespace's tool's last ``window``."""
    ranked = _ranked()
    stale = select(ranked.c.id).where(ranked.c.newest_first > window)
    session.execute(delete(ToolCall).where(ToolCall.id.in_(stale)))
