"""The migrations build the schema the models describe, on every engine: a table or column added to
``index/models.py`` without its Alembic migration (or the other way round) fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lightbox.index.models import metadata
from lightbox.index.sql import SqlIndex


def test_migrations_match_the_models(index: SqlIndex) -> None:
    with index.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
