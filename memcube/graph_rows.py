"""The graph's rows: entities, facts and links, added, retired and read back per namespace."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .models import GraphEdge, GraphEntity, GraphFact


def claim_entities(session: Session, entities: Sequence[dict]) -> dict[str, Row]:
    """Insert entities; one whose name another process stored first (a replica that had
    not seen it yet) is not inserted. Returns, for each of those, the stored row by the
    id it was given here."""
    if not entities:
        return {}
    dialect = session.get_bind().dialect.name
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    stored = set(session.scalars(
        insert_(GraphEntity).values(list(entities))
        .on_conflict_do_nothing(index_elements=["namespace", "key"])
        .returning(GraphEntity.id)
    ))  # fmt: skip
    lost = {e["key"]: e["id"] for e in entities if e["id"] not in stored}
    if not lost:
        return {}
    namespace = entities[0]["namespace"]
    rows = session.execute(
        select(*GraphEntity.__table__.c).where(
            GraphEntity.namespace == namespace, GraphEntity.key.in_(list(lost))
        )
    )
    return {lost[row.key]: row for row in rows}


def update_entity(
    session: Session, namespace: str, entity_id: str, type: str, aliases: list[str]
) -> None:
    session.execute(
        update(GraphEntity)
        .where(GraphEntity.namespace == namespace, GraphEntity.id == entity_id)
        .values(type=type, aliases=aliases)
    )


def move_entity(
    session: Session, namespace: str, source: tuple[str, str], target: tuple[str, str],
    at: datetime,
) -> None:  # fmt: skip
    """Retire the live facts and links that name the entity ``source`` (its id and its
    node) and state each again, recorded ``at``, naming ``target`` instead; ``source``
    is marked merged into ``target``. What was believed before ``at`` stays as it was."""
    (source_id, source_node), (target_id, target_node) = source, target
    facts = session.scalars(select(GraphFact).where(
        GraphFact.namespace == namespace, GraphFact.retired_at.is_(None),
        (GraphFact.subject == source_id) | (GraphFact.object == source_id),
    )).all()  # fmt: skip
    moved = []
    for fact in facts:
        fact.retired_at = at
        moved.append(dict(
            id=str(uuid.uuid4()), namespace=namespace,
            subject=target_id if fact.subject == source_id else fact.subject,
            predicate=fact.predicate,
            object=target_id if fact.object == source_id else fact.object,
            value=fact.value, valid_from=fact.valid_from, valid_until=fact.valid_until,
            recorded_at=at, retired_at=None, memory_id=fact.memory_id,
            memory_version=fact.memory_version,
        ))  # fmt: skip
    edges = session.scalars(select(GraphEdge).where(
        GraphEdge.namespace == namespace, GraphEdge.retired_at.is_(None),
        (GraphEdge.source == source_node) | (GraphEdge.target == source_node),
    )).all()  # fmt: skip
    relinked = []
    for edge in edges:
        edge.retired_at = at
        relinked.append(dict(
            id=str(uuid.uuid4()), namespace=namespace, kind=edge.kind,
            source=target_node if edge.source == source_node else edge.source,
            target=target_node if edge.target == source_node else edge.target,
            weight=edge.weight, memory_id=edge.memory_id, created_at=at, retired_at=None,
        ))  # fmt: skip
    session.flush()
    add_facts(session, moved)
    add_edges(session, relinked)
    session.execute(
        update(GraphEntity)
        .where(GraphEntity.namespace == namespace, GraphEntity.id == source_id)
        .values(merged_into=target_id)
    )


def add_facts(session: Session, facts: Sequence[dict]) -> None:
    if facts:
        session.execute(insert(GraphFact), list(facts))


def retire_facts(session: Session, namespace: str, memory_id: str, at: datetime) -> list[str]:
    """Retire the live facts ``memory_id`` asserted; their ids."""
    return _retire(session, GraphFact, namespace, memory_id, at)


def _retire(
    session: Session, row: type[GraphFact] | type[GraphEdge], namespace: str, memory_id: str,
    at: datetime,
) -> list[str]:  # fmt: skip
    live = (row.namespace == namespace) & (row.memory_id == memory_id) & row.retired_at.is_(None)
    ids = list(session.scalars(select(row.id).where(live)))
    if ids:
        session.execute(update(row).where(live).values(retired_at=at))
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


def graph_namespaces(session: Session) -> list[str]:
    """The namespaces that have a graph (any entity)."""
    return list(session.scalars(select(GraphEntity.namespace).distinct()))


def load_entities(session: Session, namespace: str) -> Sequence[Row]:
    """The namespace's entities as plain rows (a namespace's graph loads in one go)."""
    stmt = select(*GraphEntity.__table__.c).where(GraphEntity.namespace == namespace)
    return session.execute(stmt.order_by(GraphEntity.created_at, GraphEntity.id)).all()


def load_facts(session: Session, namespace: str) -> Sequence[Row]:
    stmt = select(*GraphFact.__table__.c).where(GraphFact.namespace == namespace)
    return session.execute(stmt.order_by(GraphFact.recorded_at, GraphFact.id)).all()


def add_edges(session: Session, edges: Sequence[dict]) -> None:
    if edges:
        session.execute(insert(GraphEdge), list(edges))


def retire_edges(session: Session, namespace: str, memory_id: str, at: datetime) -> list[str]:
    """Retire the live links ``memory_id`` made; their ids."""
    return _retire(session, GraphEdge, namespace, memory_id, at)


def load_edges(session: Session, namespace: str) -> Sequence[Row]:
    """The namespace's live links, oldest first, as plain rows."""
    stmt = select(*GraphEdge.__table__.c).where(
        GraphEdge.namespace == namespace, GraphEdge.retired_at.is_(None)
    )
    return session.execute(stmt.order_by(GraphEdge.created_at, GraphEdge.id)).all()


def rows_by_id(
    session: Session, row: type[GraphEntity] | type[GraphFact] | type[GraphEdge],
    namespace: str, ids: Sequence[str],
) -> dict[str, Row]:  # fmt: skip
    """The rows of ``ids`` still stored in ``namespace`` (for a replica catching up)."""
    if not ids:
        return {}
    stmt = select(*row.__table__.c).where(row.namespace == namespace, row.id.in_(list(ids)))
    return {r.id: r for r in session.execute(stmt)}
