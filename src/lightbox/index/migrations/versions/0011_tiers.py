"""instances.tier: the storage tier an object was moved to (NULL: the first); studies.accessed_at: when a
study was last retrieved or viewed, for the lifecycle rules

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("tier", sa.String(length=32), nullable=True))
    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("accessed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("accessed_at")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("tier")
