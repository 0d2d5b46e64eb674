"""Alembic environment: migrations run only through ``SqlIndex.migrate`` (``lightbox`` does it at start)."""

from __future__ import annotations

from alembic import context

from lightbox.index.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through lightbox (SqlIndex.migrate), which passes the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
context.run_migrations()
