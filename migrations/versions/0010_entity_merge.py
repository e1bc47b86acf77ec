"""An entity merged into another keeps its row (the facts once stated of it keep their
history) and names the entity it became.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("graph_entities") as batch:
        batch.add_column(sa.Column("merged_into", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("graph_entities") as batch:
        batch.drop_column("merged_into")
