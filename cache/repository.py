"""All SQL of the semantic cache, in one session (one unit of work) at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from .models import CacheEntry, CacheEntryMemory

LOAD_BATCH = 5_000


class CacheRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def insert(self, entry: CacheEntry) -> None:
        self.session.add(entry)
        self.session.flush()
        for memory_id in dict.fromkeys(entry.memory_ids):
            self.session.add(
                CacheEntryMemory(entry_id=entry.id, memory_id=memory_id, namespace=entry.namespace)
            )

    def hit(self, namespace: str, entry_id: str, now: datetime) -> CacheEntry | None:
        """The entry, counted as hit, if it is still stored and live."""
        entry = self.session.get(CacheEntry, entry_id)
        if entry is None or entry.namespace != namespace or entry.expires_at <= now:
            return None
        self.session.execute(
            update(CacheEntry)
            .where(CacheEntry.id == entry_id)
            .values(hits=CacheEntry.hits + 1, last_hit_at=now)
        )  # counted in SQL, so concurrent hits all count; the session's copy follows
        return entry

    def get(self, namespace: str, entry_id: str) -> CacheEntry | None:
        entry = self.session.get(CacheEntry, entry_id)
        return entry if entry is not None and entry.namespace == namespace else None

    def by_ids(self, entry_ids: Iterable[str]) -> list[CacheEntry]:
        ids = list(entry_ids)
        return list(self.session.scalars(select(CacheEntry).where(CacheEntry.id.in_(ids))))

    def delete_ids(self, entry_ids: Iterable[str]) -> None:
        ids = list(entry_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            self.session.execute(
                delete(CacheEntryMemory).where(CacheEntryMemory.entry_id.in_(chunk))
            )
            self.session.execute(delete(CacheEntry).where(CacheEntry.id.in_(chunk)))

    def ids_where(
        self, namespace: str | None = None, category: str | None = None
    ) -> list[tuple[str, str, str]]:
        """(id, namespace, category) of the entries in a namespace, a category, or all."""
        stmt = select(CacheEntry.id, CacheEntry.namespace, CacheEntry.category)
        if namespace is not None:
            stmt = stmt.where(CacheEntry.namespace == namespace)
        if category is not None:
            stmt = stmt.where(CacheEntry.category == category)
        return [tuple(row) for row in self.session.execute(stmt)]

    def ids_using(self, namespace: str, memory_ids: Iterable[str]) -> list[tuple[str, str]]:
        """(id, category) of the entries whose answers used any of these memories."""
        ids = list(memory_ids)
        stmt = (
            select(CacheEntry.id, CacheEntry.category)
            .join(CacheEntryMemory, CacheEntryMemory.entry_id == CacheEntry.id)
            .where(CacheEntryMemory.namespace == namespace, CacheEntryMemory.memory_id.in_(ids))
            .distinct()
        )
        return [tuple(row) for row in self.session.execute(stmt)]

    def expired(self, now: datetime, limit: int) -> list[tuple[str, str, str]]:
        stmt = (
            select(CacheEntry.id, CacheEntry.namespace, CacheEntry.category)
            .where(CacheEntry.expires_at <= now)
            .limit(limit)
        )
        return [tuple(row) for row in self.session.execute(stmt)]

    def count_live(self, now: datetime) -> int:
        stmt = select(func.count()).select_from(CacheEntry).where(CacheEntry.expires_at > now)
        return int(self.session.scalar(stmt) or 0)

    def live_rows(self, now: datetime) -> Iterator[list[tuple]]:
        """(id, namespace, category, query, embedding, created_at, expires_at,
        ttl_from_policy, hits, last used), in batches."""
        last = ""
        while True:
            stmt = (
                select(
                    CacheEntry.id,
                    CacheEntry.namespace,
                    CacheEntry.category,
                    CacheEntry.query,
                    CacheEntry.embedding,
                    CacheEntry.created_at,
                    CacheEntry.expires_at,
                    CacheEntry.ttl_from_policy,
                    CacheEntry.hits,
                    func.coalesce(CacheEntry.last_hit_at, CacheEntry.created_at),
                )
                .where(CacheEntry.expires_at > now, CacheEntry.id > last)
                .order_by(CacheEntry.id)
                .limit(LOAD_BATCH)
            )
            rows = [tuple(row) for row in self.session.execute(stmt)]
            if not rows:
                return
            yield rows
            last = rows[-1][0]
