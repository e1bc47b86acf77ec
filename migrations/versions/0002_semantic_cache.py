"""Semantic cache: cached answers and the memories each one used.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cache_entries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("namespace", sa.String(64), sa.ForeignKey("namespaces.name"), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("embedding_model", sa.String(200), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column(
            "memory_ids",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("ttl_from_policy", sa.Boolean(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("last_hit_at", TIME),
    )
    op.create_index("ix_cache_entries_ns_category", "cache_entries", ["namespace", "category"])
    op.create_index("ix_cache_entries_expires_at", "cache_entries", ["expires_at"])
    op.create_table(
        "cache_entry_memories",
        sa.Column(
            "entry_id",
            sa.String(36),
            sa.ForeignKey("cache_entries.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("memory_id", sa.String(36), primary_key=True),
        sa.Column("namespace", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_cache_entry_memories_ns_memory", "cache_entry_memories", ["namespace", "memory_id"]
    )


def downgrade() -> None:
    op.drop_table("cache_entry_memories")
    op.drop_table("cache_entries")
