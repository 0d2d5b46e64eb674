"""instances.compression: why lossless compression left an object as it is, so that it is not tried again;
NULL when it was not tried (or the object is compressed)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("compression", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("compression")
