"""Queries over MemCubes, their tags and versions, inside one caller-owned session."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    String,
    and_,
    cast,
    delete,
    distinct,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, defer

from .filters import MemoryFilter
from .lexical import lexical_search
from .models import (
    INDEXED_STATES,
    LIVE_STATES,
    CubeTag,
    CubeVersion,
    Kind,
    MemCube,
    Namespace,
    State,
    utcnow,
)

# A memory's columns but its embedding, named as the model's attributes (rows that
# records.memory_of reads like a MemCube).
_RECORD_COLUMNS = [
    getattr(MemCube, attribute.key)
    for attribute in MemCube.__mapper__.column_attrs
    if attribute.key != "embedding"
]


class CubeRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # namespaces -----------------------------------------------------------------

    def ensure_namespace(self, name: str) -> None:
        """The namespace's row, made if missing; two processes making it at once both
        succeed (the second insert does nothing)."""
        if self.session.get(Namespace, name) is not None:
            return
        dialect = self.session.get_bind().dialect.name
        insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
        self.session.execute(
            insert_(Namespace)
            .values(name=name, created_at=utcnow(), revision=0)
            .on_conflict_do_nothing(index_elements=["name"])
        )

    def namespace_names(self) -> list[str]:
        return list(self.session.scalars(select(Namespace.name).order_by(Namespace.name)))

    def revision(self, namespace: str) -> int:
        value = self.session.scalar(select(Namespace.revision).where(Namespace.name == namespace))
        return int(value or 0)

    def bump_revision(self, namespace: str) -> int:
        """Mark a change the vector index must reflect; returns the new revision."""
        self.session.execute(
            update(Namespace)
            .where(Namespace.name == namespace)
            .values(revision=Namespace.revision + 1)
        )
        return self.revision(namespace)

    # cubes ----------------------------------------------------------------------

    def live_condition(self, now: datetime, states: Sequence[str] = LIVE_STATES):
        """In one of ``states`` (by default those served) and not past its TTL."""
        return and_(
            MemCube.state.in_(list(states)),
            (MemCube.expires_at.is_(None)) | (MemCube.expires_at > now),
        )

    def get(self, namespace: str, cube_id: str, *, for_update: bool = False) -> MemCube | None:
        stmt = select(MemCube).where(MemCube.id == cube_id, MemCube.namespace == namespace)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalar(stmt)

    def live_with_hashes(
        self, namespace: str, hashes: Iterable[str], now: datetime
    ) -> list[MemCube]:
        stmt = select(MemCube).where(
            MemCube.namespace == namespace,
            MemCube.content_hash.in_(set(hashes)),
            self.live_condition(now),
        )
        return list(self.session.scalars(stmt))

    def count_access(self, cube_ids: str | Sequence[str], now: datetime) -> None:
        ids = [cube_ids] if isinstance(cube_ids, str) else list(cube_ids)
        self.session.execute(
            update(MemCube)
            .where(MemCube.id.in_(ids))
            .values(access_count=MemCube.access_count + 1, last_accessed_at=now)
        )

    def insert_new(
        self, cubes: Sequence[dict[str, Any]], versions: Sequence[dict[str, Any]]
    ) -> None:
        """Insert new cubes, their first versions and their tags as bulk statements."""
        if not cubes:
            return
        self.session.execute(insert(MemCube), list(cubes))
        self.session.execute(insert(CubeVersion), list(versions))
        tags = [{"cube_id": c["id"], "tag": tag} for c in cubes for tag in c["tags"]]
        if tags:
            self.session.execute(insert(CubeTag), tags)

    def set_tags(self, cube_id: str, tags: Iterable[str]) -> None:
        self.session.execute(delete(CubeTag).where(CubeTag.cube_id == cube_id))
        self.session.add_all(CubeTag(cube_id=cube_id, tag=tag) for tag in tags)

    def add_version(self, version: CubeVersion) -> None:
        self.session.add(version)

    def filtered(self, namespace: str, flt: MemoryFilter, now: datetime) -> Select[tuple[MemCube]]:
        """Served cubes matching ``flt``; the embedding blob is left unloaded."""
        stmt = select(MemCube).where(
            MemCube.namespace == namespace, self.live_condition(now, flt.lifecycle)
        )
        return self._apply(stmt.options(defer(MemCube.embedding)), flt)

    def _apply(self, stmt: Select, flt: MemoryFilter) -> Select:
        for column, value in (
            (MemCube.user_id, flt.user_id),
            (MemCube.agent_id, flt.agent_id),
            (MemCube.session_id, flt.session_id),
            (MemCube.category, flt.category),
            (MemCube.kind, flt.kind),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if flt.tags:
            # One grouped subquery, whatever the number of tags (a chain of EXISTS per tag
            # outgrows SQLite's expression depth limit).
            tagged_with_all = (
                select(CubeTag.cube_id)
                .where(CubeTag.tag.in_(flt.tags))
                .group_by(CubeTag.cube_id)
                .having(func.count(distinct(CubeTag.tag)) == len(flt.tags))
            )
            stmt = stmt.where(MemCube.id.in_(tagged_with_all))
        if flt.created_after is not None:
            stmt = stmt.where(MemCube.created_at >= flt.created_after)
        if flt.created_before is not None:
            stmt = stmt.where(MemCube.created_at < flt.created_before)
        if flt.valid_at is not None:
            stmt = stmt.where(
                func.coalesce(MemCube.valid_from, MemCube.created_at) <= flt.valid_at,
                MemCube.valid_to.is_(None) | (MemCube.valid_to > flt.valid_at),
            )
        return stmt

    def page(
        self, namespace: str, flt: MemoryFilter, now: datetime, limit: int, before_id: str | None
    ) -> list[MemCube]:
        """Newest first; ``before_id`` continues after the last id of the previous page."""
        stmt = self.filtered(namespace, flt, now)
        if before_id is not None:
            stmt = stmt.where(MemCube.id < before_id)
        return list(self.session.scalars(stmt.order_by(MemCube.id.desc()).limit(limit)))

    def lexical(
        self, namespace: str, query: str, flt: MemoryFilter, now: datetime, limit: int
    ) -> list[tuple[str, float]]:
        """Served cubes matching ``flt`` whose text best matches ``query``, with scores."""
        stmt = self.filtered(namespace, flt, now).where(MemCube.kind == Kind.PLAINTEXT.value)
        where = stmt.whereclause
        assert where is not None
        return lexical_search(self.session, namespace, query, where, limit)

    def matching_ids(
        self, namespace: str, flt: MemoryFilter, now: datetime, limit: int
    ) -> list[str]:
        stmt = self.filtered(namespace, flt, now).with_only_columns(MemCube.id).limit(limit)
        return list(self.session.scalars(stmt))

    def live_by_ids(
        self, namespace: str, ids: Sequence[str], flt: MemoryFilter, now: datetime
    ) -> dict[str, Any]:
        """Search hits' rows: read-only (plain rows, no embedding), by id."""
        if not ids:
            return {}
        stmt = (
            self.filtered(namespace, flt, now)
            .where(MemCube.id.in_(list(ids)))
            .with_only_columns(*_RECORD_COLUMNS)
        )
        return {row.id: row for row in self.session.execute(stmt)}

    def indexed_embeddings(
        self, namespace: str, now: datetime, batch: int = 5_000
    ) -> Iterator[list[tuple[str, bytes]]]:
        """Every indexed cube's stored embedding (served or archived), in id order, a
        batch at a time."""
        last = ""
        while True:
            rows = self.session.execute(
                select(MemCube.id, MemCube.embedding)
                .where(
                    MemCube.namespace == namespace,
                    MemCube.id > last,
                    MemCube.embedding.is_not(None),
                    self.live_condition(now, INDEXED_STATES),
                )
                .order_by(MemCube.id)
                .limit(batch)
            ).all()
            if not rows:
                return
            yield [(row[0], row[1]) for row in rows]
            last = rows[-1][0]

    def indexed_embeddings_of(
        self, namespace: str, ids: Sequence[str], now: datetime
    ) -> dict[str, bytes]:
        """The stored embeddings of those of ``ids`` an index holds (served or archived)."""
        if not ids:
            return {}
        rows = self.session.execute(
            select(MemCube.id, MemCube.embedding).where(
                MemCube.namespace == namespace,
                MemCube.id.in_(list(ids)),
                MemCube.embedding.is_not(None),
                self.live_condition(now, INDEXED_STATES),
            )
        )
        return {row[0]: row[1] for row in rows}

    def count_live(
        self, namespace: str, now: datetime, states: Sequence[str] = LIVE_STATES
    ) -> int:
        stmt = (
            select(func.count())
            .select_from(MemCube)
            .where(MemCube.namespace == namespace, self.live_condition(now, states))
        )
        return int(self.session.scalar(stmt) or 0)

    def due_to_expire(
        self, now: datetime, limit: int, namespace: str | None = None
    ) -> list[MemCube]:
        stmt = (
            select(MemCube)
            .where(MemCube.state.in_(INDEXED_STATES), MemCube.expires_at <= now)
            .limit(limit)
        )
        return list(self.session.scalars(_in(stmt, namespace)))

    def due_to_activate(
        self, namespace: str | None, now: datetime, min_accesses: int, read_since: datetime,
        limit: int,
    ) -> list[MemCube]:
        """Generated or archived plaintext read at least ``min_accesses`` times, last
        since ``read_since`` and after its last change."""
        stmt = (
            select(MemCube)
            .where(
                MemCube.state.in_([State.GENERATED.value, State.ARCHIVED.value]),
                MemCube.kind == Kind.PLAINTEXT.value,
                MemCube.access_count >= min_accesses,
                MemCube.last_accessed_at >= read_since,
                MemCube.last_accessed_at > MemCube.updated_at,
                (MemCube.expires_at.is_(None)) | (MemCube.expires_at > now),
            )
            .order_by(MemCube.namespace, MemCube.id)
            .limit(limit)
        )
        return list(self.session.scalars(_in(stmt, namespace)))

    def due_to_archive(
        self, namespace: str | None, now: datetime, cold_before: datetime, limit: int
    ) -> list[MemCube]:
        """Served plaintext neither read nor changed since ``cold_before``."""
        stmt = (
            select(MemCube)
            .where(
                self.live_condition(now),
                MemCube.kind == Kind.PLAINTEXT.value,
                func.coalesce(MemCube.last_accessed_at, MemCube.created_at) < cold_before,
                MemCube.updated_at < cold_before,
            )
            .order_by(MemCube.namespace, MemCube.id)
            .limit(limit)
        )
        return list(self.session.scalars(_in(stmt, namespace)))

    def changed_since(
        self, namespace: str | None, now: datetime, after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[MemCube]:
        """Served plaintext changed after ``after`` (a change time and an id, the last
        row of the previous batch), oldest change first."""
        stmt = select(MemCube).where(
            self.live_condition(now), MemCube.kind == Kind.PLAINTEXT.value
        )
        if after is not None:
            at, last_id = after
            stmt = stmt.where(
                (MemCube.updated_at > at) | ((MemCube.updated_at == at) & (MemCube.id > last_id))
            )
        stmt = stmt.options(defer(MemCube.embedding)).order_by(MemCube.updated_at, MemCube.id)
        return list(self.session.scalars(_in(stmt, namespace).limit(limit)))

    def hottest(
        self, namespace: str, flt: MemoryFilter, now: datetime, limit: int
    ) -> list[MemCube]:
        """Plaintext matching ``flt``, most read first, then most recently read."""
        stmt = self.filtered(namespace, flt, now).where(MemCube.kind == Kind.PLAINTEXT.value)
        stmt = stmt.order_by(
            MemCube.access_count.desc(),
            func.coalesce(MemCube.last_accessed_at, MemCube.created_at).desc(),
            MemCube.id.desc(),
        )
        return list(self.session.scalars(stmt.limit(limit)))

    def hot_scopes(
        self, namespace: str | None, now: datetime, read_since: datetime, min_memories: int
    ) -> list[tuple[str, str | None, str | None]]:
        """(namespace, user_id, agent_id) of owners with at least ``min_memories``
        activated plaintext memories read since ``read_since``."""
        stmt = (
            select(MemCube.namespace, MemCube.user_id, MemCube.agent_id)
            .where(
                self.live_condition(now, (State.ACTIVATED.value,)),
                MemCube.kind == Kind.PLAINTEXT.value,
                MemCube.last_accessed_at >= read_since,
            )
            .group_by(MemCube.namespace, MemCube.user_id, MemCube.agent_id)
            .having(func.count() >= min_memories)
        )
        return [(row[0], row[1], row[2]) for row in self.session.execute(_in(stmt, namespace))]

    def named(
        self, namespace: str, kind: str, name: str, *, for_update: bool = False
    ) -> MemCube | None:
        """The live cube of ``kind`` whose metadata names it ``name`` (parametric
        memories and compositions are found by name)."""
        stmt = select(MemCube).where(
            MemCube.namespace == namespace, MemCube.kind == kind,
            MemCube.state.in_(list(LIVE_STATES)),
        )  # fmt: skip
        if for_update:
            stmt = stmt.with_for_update()
        return next((c for c in self.session.scalars(stmt) if c.meta.get("name") == name), None)

    def of_kind(self, namespace: str | None, kind: str, states: Sequence[str]) -> list[MemCube]:
        """Cubes of ``kind`` in ``states`` (of every namespace when none is given)."""
        stmt = select(MemCube).where(MemCube.kind == kind, MemCube.state.in_(list(states)))
        stmt = _in(stmt, namespace).order_by(MemCube.namespace, MemCube.id)
        return list(self.session.scalars(stmt))

    def owned(
        self, namespace: str, kind: str, states: Sequence[str], user_id: str | None,
        agent_id: str | None, *, for_update: bool = False,
    ) -> MemCube | None:  # fmt: skip
        """The first cube of ``kind`` in ``states`` whose owner is exactly this user and
        agent (None matches only None)."""
        stmt = select(MemCube).where(
            MemCube.namespace == namespace, MemCube.kind == kind,
            MemCube.state.in_(list(states)),
            MemCube.user_id.is_(None) if user_id is None else MemCube.user_id == user_id,
            MemCube.agent_id.is_(None) if agent_id is None else MemCube.agent_id == agent_id,
        ).order_by(MemCube.id).limit(1)  # fmt: skip
        return self.session.scalar(stmt.with_for_update() if for_update else stmt)

    def due_to_purge(self, deleted_before: datetime, limit: int) -> list[MemCube]:
        stmt = (
            select(MemCube)
            .where(
                MemCube.state == State.DELETED.value,
                MemCube.purged_at.is_(None),
                MemCube.deleted_at <= deleted_before,
            )
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def export_rows(self, namespace: str, batch: int = 1_000) -> Iterator[list[MemCube]]:
        last = ""
        while True:
            rows = list(
                self.session.scalars(
                    select(MemCube)
                    .where(MemCube.namespace == namespace, MemCube.id > last)
                    .order_by(MemCube.id)
                    .limit(batch)
                )
            )
            if not rows:
                return
            yield rows
            last = rows[-1].id

    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        ids = list(ids)
        if not ids:
            return set()
        return set(self.session.scalars(select(MemCube.id).where(MemCube.id.in_(ids))))

    # versions -------------------------------------------------------------------

    def versions(self, cube_id: str) -> list[CubeVersion]:
        stmt = (
            select(CubeVersion).where(CubeVersion.cube_id == cube_id).order_by(CubeVersion.version)
        )
        return list(self.session.scalars(stmt))

    def versions_of(self, cube_ids: Sequence[str]) -> dict[str, list[CubeVersion]]:
        """Each cube's versions, oldest first."""
        found: dict[str, list[CubeVersion]] = {cube_id: [] for cube_id in cube_ids}
        if cube_ids:
            stmt = (
                select(CubeVersion)
                .where(CubeVersion.cube_id.in_(list(cube_ids)))
                .order_by(CubeVersion.cube_id, CubeVersion.version)
            )
            for version in self.session.scalars(stmt):
                found[version.cube_id].append(version)
        return found

    def created_by(self, cube_ids: Sequence[str]) -> dict[str, str]:
        """Each cube's creation source (the source of its first version)."""
        if not cube_ids:
            return {}
        stmt = select(CubeVersion.cube_id, CubeVersion.source).where(
            CubeVersion.cube_id.in_(list(cube_ids)), CubeVersion.version == 1
        )
        return {cube_id: source for cube_id, source in self.session.execute(stmt)}

    def version(self, cube_id: str, version: int) -> CubeVersion | None:
        stmt = select(CubeVersion).where(
            CubeVersion.cube_id == cube_id, CubeVersion.version == version
        )
        return self.session.scalar(stmt)

    def drop_versions(self, cube_id: str) -> None:
        """Remove every version of a cube (an erasure keeps only its tombstone)."""
        self.session.execute(delete(CubeVersion).where(CubeVersion.cube_id == cube_id))
        self.session.flush()

    def derived_from_any(
        self, namespace: str, source_ids: Iterable[str]
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        """(cube id, derived_from) of each version in ``namespace`` whose provenance may
        name one of ``source_ids`` (the caller reads the entries)."""
        wanted = list(source_ids)
        if not wanted:
            return []
        text = cast(CubeVersion.derived_from, String)
        stmt = (
            select(CubeVersion.cube_id, CubeVersion.derived_from)
            .join(MemCube, MemCube.id == CubeVersion.cube_id)
            .where(MemCube.namespace == namespace, or_(*(text.contains(i) for i in wanted)))
        )
        return [(cube_id, list(derived)) for cube_id, derived in self.session.execute(stmt)]


def _in(stmt: Select, namespace: str | None) -> Select:
    """``stmt`` kept to one namespace, when one is given."""
    return stmt if namespace is None else stmt.where(MemCube.namespace == namespace)
