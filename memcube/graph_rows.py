"""The graph's rows: entities and facts, added, retired and read back per namespace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .models import GraphEntity, GraphFact


def add_entity(session: Session, entity: GraphEntity) -> None:
    session.add(entity)
    session.flush()  # the unique (namespace, key) is checked here, inside the unit of work


def add_fact(session: Session, fact: GraphFact) -> None:
    session.add(fact)


def retire_facts(session: Session, namespace: str, memory_id: str, at: datetime) -> list[str]:
    """Retire the live facts ``memory_id`` asserted; their ids."""
    live = (
        (GraphFact.namespace == namespace)
        & (GraphFact.memory_id == memory_id)
        & GraphFact.retired_at.is_(None)
    )
    ids = list(session.scalars(select(GraphFact.id).where(live)))
    if ids:
        session.execute(update(GraphFact).where(live).values(retired_at=at))
    return ids


def has_live_facts(session: Session, namespace: str, memory_id: str) -> bool:
    stmt = select(GraphFact.id).where(
        GraphFact.namespace == namespace,
        GraphFact.memory_id == memory_id,
        GraphFact.retired_at.is_(None),
    )
    return session.scalars(stmt.limit(1)).first() is not None


def last_retired_facts(session: Session, namespace: str, memory_id: str) -> Sequence[GraphFact]:
    """The facts of ``memory_id`` retired together most recently (by its deletion)."""
    mine = (GraphFact.namespace == namespace) & (GraphFact.memory_id == memory_id)
    last = session.scalar(select(func.max(GraphFact.retired_at)).where(mine))
    if last is None:
        return []
    stmt = select(GraphFact).where(mine, GraphFact.retired_at == last)
    return session.scalars(stmt.order_by(GraphFact.recorded_at, GraphFact.id)).all()


def load_entities(session: Session, namespace: str) -> Sequence[GraphEntity]:
    stmt = select(GraphEntity).where(GraphEntity.namespace == namespace)
    return session.scalars(stmt.order_by(GraphEntity.created_at, GraphEntity.id)).all()


def load_facts(session: Session, namespace: str) -> Sequence[GraphFact]:
    stmt = select(GraphFact).where(GraphFact.namespace == namespace)
    return session.scalars(stmt.order_by(GraphFact.recorded_at, GraphFact.id)).all()
