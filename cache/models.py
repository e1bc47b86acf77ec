"""SQL tables of the semantic cache: the entries, and which memories each answer used.

The entries' vectors are stored too, so the in-memory index rebuilds at start without
embedding anything again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from memos.memcube.models import Base, JSONType, utcnow


class CacheEntry(Base):
    __tablename__ = "cache_entries"
    __table_args__ = (
        Index("ix_cache_entries_ns_category", "namespace", "category"),
        Index("ix_cache_entries_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    namespace: Mapped[str] = mapped_column(ForeignKey("namespaces.name"))
    category: Mapped[str] = mapped_column(String(64))
    query: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    embedding_model: Mapped[str] = mapped_column(String(200))
    response: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    memory_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]  # never served after this
    # True: the category's TTL applies, stretched under load up to its max_ttl_s (then
    # expires_at is created_at + max_ttl_s); False: the caller fixed the TTL.
    ttl_from_policy: Mapped[bool] = mapped_column(Boolean, default=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    last_hit_at: Mapped[datetime | None]


class CacheEntryMemory(Base):
    """One row per (entry, memory it used): updating or deleting the memory finds the
    answers to invalidate by an indexed lookup."""

    __tablename__ = "cache_entry_memories"
    __table_args__ = (Index("ix_cache_entry_memories_ns_memory", "namespace", "memory_id"),)

    entry_id: Mapped[str] = mapped_column(
        ForeignKey("cache_entries.id", ondelete="CASCADE"), primary_key=True
    )
    memory_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(64))
