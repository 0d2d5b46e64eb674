"""instances.stored_by: the archive user whose credentials stored each instance (a radiologist may delete
what they stored); NULL for instances stored before, or without a user (an AE, an import)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("stored_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("stored_by")
