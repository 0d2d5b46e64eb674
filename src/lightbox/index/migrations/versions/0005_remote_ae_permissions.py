"""remote_aes.permissions: what each registered AE may ask (echo, store, find, get, move)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Registered before permissions existed: they keep what they could do, everything
    with op.batch_alter_table("remote_aes") as batch:
        batch.add_column(
            sa.Column("permissions", sa.Text(), nullable=False, server_default="echo,store,find,get,move")
        )


def downgrade() -> None:
    with op.batch_alter_table("remote_aes") as batch:
        batch.drop_column("permissions")
