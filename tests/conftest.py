"""Shared fixtures: every Index backend (SQLite and a real PostgreSQL) and every BlobStore backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lightbox.domain.audit import GENESIS
from lightbox.index.models import metadata
from lightbox.index.sql import SqlIndex
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.ci import IN_CI
from tests.support.postgres import PostgresUnavailable, create_database, postgres_server
from tests.support.s3 import S3Server, s3_server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database. In CI a missing server fails the run instead of skipping."""
    try:
        with postgres_server() as server:
            url = create_database(server, "lightbox_test")
            index = SqlIndex(url)
            index.migrate()
            index.close()
            yield url
    except PostgresUnavailable as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")


def _truncate(index: SqlIndex) -> None:
    """Empty every table but audit_head, whose one row goes back to the start of the chain; the audit log's
    append-only trigger is lifted for the occasion."""
    names = ", ".join(t.name for t in metadata.sorted_tables if t.name != "audit_head")
    with index.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        conn.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        conn.exec_driver_sql(f"UPDATE audit_head SET seq = 0, hash = '{GENESIS}'")


@pytest.fixture(params=["sqlite", "postgresql"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlIndex]:
    """A fresh, migrated index on each engine."""
    if request.param == "sqlite":
        idx = SqlIndex(f"sqlite:///{tmp_path / 'index.db'}")
        idx.migrate()
    else:
        url = request.getfixturevalue("postgres_url")
        idx = SqlIndex(url)
        _truncate(idx)
    yield idx
    idx.close()


@pytest.fixture
def blob_store(tmp_path: Path) -> FileSystemBlobStore:
    return FileSystemBlobStore(tmp_path / "objects")


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3 endpoint over HTTP (moto's server, its own process) for the whole run."""
    with s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server
