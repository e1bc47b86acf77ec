"""Initial schema: namespaces, API keys, MemCubes, their tags and versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "namespaces",
        sa.Column("name", sa.String(64), primary_key=True),
        _time("created_at", nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("namespace", sa.String(64), sa.ForeignKey("namespaces.name"), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(200)),
        _time("created_at", nullable=False),
        _time("revoked_at"),
    )
    op.create_index("ix_api_keys_namespace", "api_keys", ["namespace"])
    op.create_table(
        "memcubes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("namespace", sa.String(64), sa.ForeignKey("namespaces.name"), nullable=False),
        sa.Column("user_id", sa.String(128)),
        sa.Column("agent_id", sa.String(128)),
        sa.Column("session_id", sa.String(128)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text()),
        sa.Column("category", sa.String(128)),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("embedding", sa.LargeBinary()),
        sa.Column("embedding_model", sa.String(200)),
        sa.Column("content_hash", sa.String(64)),
        _time("valid_from"),
        _time("valid_to"),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        _time("expires_at"),
        _time("deleted_at"),
        _time("purged_at"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("access_count", sa.Integer(), nullable=False),
        _time("last_accessed_at"),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    for name, column in (
        ("id", "id"),
        ("user", "user_id"),
        ("agent", "agent_id"),
        ("session", "session_id"),
        ("category", "category"),
        ("created", "created_at"),
        ("hash", "content_hash"),
    ):
        op.create_index(f"ix_memcubes_ns_{name}", "memcubes", ["namespace", column])
    op.create_index("ix_memcubes_expires_at", "memcubes", ["expires_at"])
    op.create_table(
        "memcube_tags",
        sa.Column(
            "cube_id",
            sa.String(36),
            sa.ForeignKey("memcubes.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tag", sa.String(128), primary_key=True),
    )
    op.create_index("ix_memcube_tags_tag", "memcube_tags", ["tag", "cube_id"])
    op.create_table(
        "memcube_versions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "cube_id",
            sa.String(36),
            sa.ForeignKey("memcubes.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text()),
        sa.Column("category", sa.String(128)),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _time("valid_from"),
        _time("valid_to"),
        _time("expires_at"),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("embedding_model", sa.String(200)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("derived_from", JSON, nullable=False),
        _time("recorded_at", nullable=False),
        sa.UniqueConstraint("cube_id", "version", name="uq_memcube_versions_cube_version"),
    )
    op.create_index("ix_memcube_versions_cube_id", "memcube_versions", ["cube_id"])


def downgrade() -> None:
    op.drop_table("memcube_versions")
    op.drop_table("memcube_tags")
    op.drop_table("memcubes")
    op.drop_table("api_keys")
    op.drop_table("namespaces")
