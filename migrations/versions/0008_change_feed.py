"""The change feed replicas follow: on PostgreSQL, every write to a table some replica
holds in memory (memories, cache entries, the graph, API keys) adds a row to
``changes`` in its own transaction, numbered in commit order, and wakes the listeners
of channel ``memos_changes``. SQLite (one process) keeps the table empty.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The triggers are deferred: they run as their transaction commits, one transaction at
# a time (the advisory lock is held from the first until the commit ends), so sequence
# numbers are handed out in commit order and a replica that applied every change up to
# n never meets a smaller one later. Held only while committing, the lock never waits on
# anything a caller does inside its transaction.
NOTE_CHANGE = """
CREATE FUNCTION memos_note_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.changes'));
    IF TG_OP = 'DELETE' THEN
        INSERT INTO changes (namespace, entity, row_id, recorded_at)
        VALUES (OLD.namespace, TG_ARGV[0], OLD.id, clock_timestamp());
    ELSE
        IF TG_OP = 'UPDATE' THEN
            IF OLD.namespace IS DISTINCT FROM NEW.namespace THEN
                INSERT INTO changes (namespace, entity, row_id, recorded_at)
                VALUES (OLD.namespace, TG_ARGV[0], OLD.id, clock_timestamp());
            END IF;
        END IF;
        INSERT INTO changes (namespace, entity, row_id, recorded_at)
        VALUES (NEW.namespace, TG_ARGV[0], NEW.id, clock_timestamp());
    END IF;
    PERFORM pg_notify('memos_changes', current_schema());
    RETURN NULL;
END
$$
"""

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# table -> (entity name, the condition under which an update is a change)
WATCHED = {
    "memcubes": (
        "memory",
        "OLD.version IS DISTINCT FROM NEW.version OR OLD.state IS DISTINCT FROM NEW.state "
        "OR OLD.expires_at IS DISTINCT FROM NEW.expires_at "
        "OR OLD.embedding IS DISTINCT FROM NEW.embedding "
        "OR OLD.namespace IS DISTINCT FROM NEW.namespace",
    ),
    "cache_entries": (
        "cache",
        "OLD.expires_at IS DISTINCT FROM NEW.expires_at "
        "OR OLD.namespace IS DISTINCT FROM NEW.namespace",
    ),
    "graph_entities": ("entity", "true"),
    "graph_facts": ("fact", "true"),
    "graph_edges": ("edge", "true"),
    "api_keys": ("key", "OLD.revoked_at IS DISTINCT FROM NEW.revoked_at"),
}


def _postgres_up() -> list[str]:
    statements = [NOTE_CHANGE]
    for table, (entity, changed) in WATCHED.items():
        statements += [
            f"CREATE CONSTRAINT TRIGGER {table}_noted AFTER INSERT OR DELETE ON {table} "
            f"DEFERRABLE INITIALLY DEFERRED "
            f"FOR EACH ROW EXECUTE FUNCTION memos_note_change('{entity}')",
            f"CREATE CONSTRAINT TRIGGER {table}_noted_update AFTER UPDATE ON {table} "
            f"DEFERRABLE INITIALLY DEFERRED "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION memos_note_change('{entity}')",
        ]
    return statements


def _postgres_down() -> list[str]:
    statements = []
    for table in WATCHED:
        statements += [
            f"DROP TRIGGER IF EXISTS {table}_noted_update ON {table}",
            f"DROP TRIGGER IF EXISTS {table}_noted ON {table}",
        ]
    return [*statements, "DROP FUNCTION IF EXISTS memos_note_change()"]


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("row_id", sa.String(36), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_changes_recorded_at", "changes", ["recorded_at"])
    op.create_table(
        "change_horizon",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("pruned_through", sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in _postgres_up():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _postgres_down():
            op.execute(statement)
    op.drop_table("change_horizon")
    op.drop_index("ix_changes_recorded_at", table_name="changes")
    op.drop_table("changes")
