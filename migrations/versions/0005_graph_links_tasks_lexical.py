"""Graph links (mentions, related, ...), task memory, and the lexical index over memory
text (SQLite FTS5 kept by triggers; a PostgreSQL full-text GIN index).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# SQLite: an external-content FTS5 table over memcubes' payload and namespace (so that a
# match is confined to one namespace inside the index), keyed by the cube's rowid, kept
# in step by triggers (porter stemming, like PostgreSQL's 'english').
SQLITE_UP = [
    "CREATE VIRTUAL TABLE memcube_fts USING fts5(payload, namespace, content='memcubes', "
    "content_rowid='rowid', tokenize='porter unicode61')",
    "CREATE TRIGGER memcube_fts_insert AFTER INSERT ON memcubes BEGIN "
    "INSERT INTO memcube_fts(rowid, payload, namespace) "
    "VALUES (new.rowid, new.payload, new.namespace); END",
    "CREATE TRIGGER memcube_fts_delete AFTER DELETE ON memcubes BEGIN "
    "INSERT INTO memcube_fts(memcube_fts, rowid, payload, namespace) "
    "VALUES ('delete', old.rowid, old.payload, old.namespace); END",
    "CREATE TRIGGER memcube_fts_update AFTER UPDATE OF payload ON memcubes BEGIN "
    "INSERT INTO memcube_fts(memcube_fts, rowid, payload, namespace) "
    "VALUES ('delete', old.rowid, old.payload, old.namespace); "
    "INSERT INTO memcube_fts(rowid, payload, namespace) "
    "VALUES (new.rowid, new.payload, new.namespace); END",
    "INSERT INTO memcube_fts(memcube_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS memcube_fts_update",
    "DROP TRIGGER IF EXISTS memcube_fts_delete",
    "DROP TRIGGER IF EXISTS memcube_fts_insert",
    "DROP TABLE IF EXISTS memcube_fts",
]
# PostgreSQL: the text's tsvector kept in a stored generated column (ranking reads it
# instead of parsing the text again), with a GIN index.
POSTGRES_UP = [
    "ALTER TABLE memcubes ADD COLUMN payload_tsv tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english', coalesce(payload, ''))) STORED",
    "CREATE INDEX ix_memcubes_fts ON memcubes USING gin (payload_tsv)",
]
POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_memcubes_fts",
    "ALTER TABLE memcubes DROP COLUMN IF EXISTS payload_tsv",
]


def upgrade() -> None:
    op.create_table(
        "graph_edges",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("namespace", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.String(48), nullable=False),
        sa.Column("target", sa.String(48), nullable=False),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.Column("memory_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_graph_edges_ns", "graph_edges", ["namespace", "created_at"])
    op.create_index("ix_graph_edges_ns_memory", "graph_edges", ["namespace", "memory_id"])
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("namespace", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        sa.Column("parent_id", sa.String(36), nullable=True),
        sa.Column("depends_on", JSON, nullable=False),
        sa.Column("memory_ids", JSON, nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_tasks_ns", "tasks", ["namespace", "created_at"])
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}.get(dialect, []):
        op.execute(statement)
    op.drop_index("ix_tasks_ns", table_name="tasks")
    op.drop_table("tasks")
    op.drop_index("ix_graph_edges_ns_memory", table_name="graph_edges")
    op.drop_index("ix_graph_edges_ns", table_name="graph_edges")
    op.drop_table("graph_edges")
