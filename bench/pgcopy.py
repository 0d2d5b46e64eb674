"""The PostgreSQL index as a bulk copy of the SQLite index rows, when a reindex would not fit the time budget.

The target schema is the one the archive migrated on PostgreSQL; every table of the index metadata is copied
in dependency order with its ids, then the id sequences are moved past the copied rows. A row the migrations
put there already (the audit trail's head) is replaced by the copied one. The result holds the same rows a
reindex would write, so queries see the same index; the copy measures no ingest path.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Insert, Table, create_engine, func, select, text
from sqlalchemy.dialects.postgresql import insert

from lightbox.index.models import metadata
from lightbox.index.sql import normalize_url

_BATCH = 5000


def _aware(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    # SQLite hands back naive datetimes; the index stores UTC.
    for name in columns:
        value = row[name]
        if isinstance(value, datetime) and value.tzinfo is None:
            row[name] = value.replace(tzinfo=UTC)
    return row


def _replacing(table: Table) -> Insert:
    """An insert of ``table``'s rows that replaces a row of the same primary key. Only for the tables the
    migrations filled: an upsert fires UPDATE triggers, and the audit log's refuse any update."""
    statement = insert(table)
    keys = {c.name for c in table.primary_key.columns}
    others = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    if not others:
        return statement.on_conflict_do_nothing()
    return statement.on_conflict_do_update(index_elements=sorted(keys), set_=others)


def copy_index(sqlite_url: str, postgres_url: str) -> tuple[int, float]:
    """Copy every index row; returns the number of rows and the seconds it took."""
    source = create_engine(sqlite_url)
    target = create_engine(normalize_url(postgres_url))
    rows = 0
    start = time.perf_counter()
    try:
        with source.connect() as src, target.begin() as dst:
            for table in metadata.sorted_tables:
                times = [c.name for c in table.columns if isinstance(c.type, DateTime)]
                seeded = dst.execute(select(func.count()).select_from(table)).scalar_one() > 0
                statement = _replacing(table) if seeded else insert(table)
                result = src.execute(select(table)).mappings()
                while batch := result.fetchmany(_BATCH):
                    dst.execute(statement, [_aware(dict(r), times) for r in batch])
                    rows += len(batch)
                if "id" in table.columns and table.c.id.autoincrement:
                    dst.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table.name}), false)"
                        )
                    )
    finally:
        source.dispose()
        target.dispose()
    return rows, time.perf_counter() - start
