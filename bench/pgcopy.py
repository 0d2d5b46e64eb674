"""The PostgreSQL index as a bulk copy of the SQLite index rows, when a reindex would not fit the time budget.

The target schema is the one the archive migrated on PostgreSQL; every table of the index metadata is copied
in dependency order with its ids, then the id sequences are moved past the copied rows. The result holds
the same rows a reindex would write, so queries see the same index; the copy measures no ingest path.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, create_engine, insert, select, text

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
                result = src.execute(select(table)).mappings()
                while batch := result.fetchmany(_BATCH):
                    dst.execute(insert(table), [_aware(dict(r), times) for r in batch])
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
