"""Graph memory: entities and bi-temporal facts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "graph_entities",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("namespace", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("aliases", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("namespace", "key", name="uq_graph_entities_ns_key"),
    )
    op.create_table(
        "graph_facts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("namespace", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(36), nullable=False),
        sa.Column("predicate", sa.String(128), nullable=False),
        sa.Column("object", sa.String(36), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("memory_id", sa.String(36), nullable=True),
        sa.Column("memory_version", sa.Integer(), nullable=True),
    )
    op.create_index(
        "ix_graph_facts_ns_subject", "graph_facts", ["namespace", "subject", "predicate"]
    )
    op.create_index("ix_graph_facts_ns_memory", "graph_facts", ["namespace", "memory_id"])


def downgrade() -> None:
    op.drop_index("ix_graph_facts_ns_memory", table_name="graph_facts")
    op.drop_index("ix_graph_facts_ns_subject", table_name="graph_facts")
    op.drop_table("graph_facts")
    op.drop_table("graph_entities")
