"""The change feed in SQL: what replicas read to follow the database (memos/replication.py).

Rows are added by PostgreSQL's triggers (migration 0008), never by this code; here they
are read in sequence, counted, and pruned once old.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .models import Change, ChangeHorizon

CHANNEL = "memos_changes"  # the triggers' NOTIFY channel; the payload is the schema
ENTITIES = ("memory", "cache", "entity", "fact", "edge", "key")


@dataclass(frozen=True)
class ChangeRow:
    seq: int
    namespace: str
    entity: str
    row_id: str
    recorded_at: datetime


def latest_seq(session: Session) -> int:
    """The newest change's number (0 before the first), pruned or not."""
    newest = session.scalar(select(func.max(Change.seq)))
    return int(newest) if newest is not None else pruned_through(session)


def pruned_through(session: Session) -> int:
    """Changes up to this number are gone from the feed."""
    return int(session.scalar(select(ChangeHorizon.pruned_through)) or 0)


def changes_after(session: Session, seq: int, limit: int) -> list[ChangeRow]:
    rows = session.execute(
        select(Change.seq, Change.namespace, Change.entity, Change.row_id, Change.recorded_at)
        .where(Change.seq > seq)
        .order_by(Change.seq)
        .limit(limit)
    ).all()
    return [ChangeRow(*row) for row in rows]


def row_ids_after(session: Session, namespace: str, entity: str, seq: int) -> list[str]:
    """The rows of one kind in ``namespace`` changed after change ``seq``."""
    stmt = (
        select(Change.row_id)
        .where(Change.seq > seq, Change.namespace == namespace, Change.entity == entity)
        .distinct()
    )
    return list(session.scalars(stmt))


def oldest_recorded_after(session: Session, seq: int) -> datetime | None:
    """When the first change after ``seq`` was made (None when there is none)."""
    return session.scalar(select(func.min(Change.recorded_at)).where(Change.seq > seq))


def prune(session: Session, recorded_before: datetime) -> int:
    """Drop the changes recorded before ``recorded_before`` (in the caller's transaction)
    and move the horizon past them; returns how many went."""
    through = session.scalar(
        select(func.max(Change.seq)).where(Change.recorded_at < recorded_before)
    )
    if through is None:
        return 0
    gone = session.execute(delete(Change).where(Change.seq <= through)).rowcount
    horizon = session.get(ChangeHorizon, 1)
    if horizon is None:
        session.add(ChangeHorizon(id=1, pruned_through=through))
    else:
        horizon.pruned_through = max(horizon.pruned_through, through)
    return int(gone or 0)


class WriteMark:
    """The newest change a piece of work (one API request) is known to have made."""

    def __init__(self) -> None:
        self.seq = 0


_mark: ContextVar[WriteMark | None] = ContextVar("memos_write_mark", default=None)


@contextmanager
def marking_writes() -> Iterator[WriteMark]:
    """Within the block, every committed write records a change number at least its own
    in the mark (threads the block starts copy the context, and with it the mark)."""
    mark = WriteMark()
    token = _mark.set(mark)
    try:
        yield mark
    finally:
        _mark.reset(token)


def marking() -> bool:
    return _mark.get() is not None


def note_write(session: Session) -> None:
    """After a commit: raise the current mark, if any, to the newest change, which is
    at least the one that commit made."""
    mark = _mark.get()
    if mark is not None:
        mark.seq = max(mark.seq, latest_seq(session))
