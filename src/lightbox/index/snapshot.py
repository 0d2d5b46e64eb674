"""A consistent copy of a whole index as one SQLite file, taken while the archive keeps writing.

The backup format is the same whatever the engine: an SQLite database at the schema revision of the source.
SQLite is copied page by page with its online backup API in one step, so the copy is the database as one
read transaction saw it; writers go on meanwhile (WAL mode: readers never block them). PostgreSQL is copied
table by table inside one REPEATABLE READ, READ ONLY transaction: one MVCC snapshot, which is what pg_dump
does too, but without binaries that must match the server's version, and into a file that restores into
SQLite or PostgreSQL alike (``copy_tables``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, text

from lightbox.domain.errors import LightboxError
from lightbox.index.models import metadata

_BATCH = 1000


def sqlite_snapshot(engine: Engine, target: Path) -> None:
    """Copy the SQLite database behind ``engine`` to ``target`` with the online backup API."""
    with engine.connect() as conn:
        source = conn.connection.driver_connection
        assert isinstance(source, sqlite3.Connection)
        copy = sqlite3.connect(target)
        try:
            # pages=-1 (the default): every page in one step, under one read transaction. In several
            # steps a write in between would make SQLite start over, or, from this same connection,
            # mix two states.
            source.backup(copy)
        finally:
            copy.close()
    finish_sqlite_file(target)


def finish_sqlite_file(path: Path) -> None:
    """Make ``path`` one self-contained file (no -wal beside it) and durable."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def schema_revision(conn: Connection) -> str | None:
    """The Alembic revision the database is at (None: never migrated)."""
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:
        return None


def copy_tables(source: Connection, target: Connection) -> dict[str, int]:
    """Copy every table of the schema from ``source`` to ``target`` (both at the same revision, the
    target freshly migrated); rows per table. Parents before children, so foreign keys hold throughout."""
    source_revision, target_revision = schema_revision(source), schema_revision(target)
    if source_revision != target_revision:
        raise LightboxError(
            f"schema revisions differ: {source_revision} (source) and {target_revision} (target)"
        )
    counts: dict[str, int] = {}
    for table in reversed(metadata.sorted_tables):
        # A fresh schema holds seeded rows (the audit chain's head); an empty table is left alone, as
        # PostgreSQL's statement trigger on the audit log refuses even an empty DELETE.
        if target.execute(select(func.count()).select_from(table)).scalar_one():
            target.execute(delete(table))
    for table in metadata.sorted_tables:
        counts[table.name] = 0
        for rows in _batches(source, table):
            target.execute(insert(table), rows)
            counts[table.name] += len(rows)
    if target.dialect.name == "postgresql":
        _advance_sequences(target)
    return counts


def _batches(source: Connection, table: Table) -> Iterator[list[dict[str, Any]]]:
    result = source.execution_options(stream_results=True, yield_per=_BATCH).execute(select(table))
    for partition in result.mappings().partitions(_BATCH):
        yield [{k: _utc(v) for k, v in row.items()} for row in partition]


def _utc(value: Any) -> Any:
    # PostgreSQL hands times back in the session's zone; SQLite keeps them without one, and every stored
    # time is UTC.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def _advance_sequences(target: Connection) -> None:
    """Rows came with their ids: each id sequence must continue after the largest."""
    for table in metadata.sorted_tables:
        if "id" not in table.c or not table.c.id.autoincrement:
            continue
        sequence = target.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}).scalar()
        if sequence is None:
            continue
        largest = target.execute(select(func.max(table.c.id))).scalar()
        if largest is not None:
            target.execute(text("SELECT setval(:s, :n)"), {"s": sequence, "n": largest})
