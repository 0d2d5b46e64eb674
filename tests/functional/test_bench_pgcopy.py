"""The benchmark's bulk copy of a SQLite index into PostgreSQL: the same rows, audit trail included."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.pgcopy import copy_index
from sqlalchemy import create_engine, func, select

from lightbox.domain.audit import AuditAction, AuditOutcome, AuditRecord
from lightbox.index.models import metadata
from lightbox.index.sql import SqlIndex, normalize_url
from lightbox.services.events import EventBus
from lightbox.services.ingest import IngestService
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.dicom import part10
from tests.support.postgres import create_database


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables
            }
    finally:
        engine.dispose()


def test_the_copy_holds_every_row_and_the_audit_trails_head(postgres_url: str, tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'index.db'}"
    source = SqlIndex(source_url)
    source.migrate()
    ingest = IngestService(source, FileSystemBlobStore(tmp_path / "objects"), EventBus())
    for n in range(3):
        ingest.ingest([part10(PatientID=f"P{n}", StudyInstanceUID=f"1.2.3.{n}")], "t")
    ingest.close()
    record = AuditRecord(datetime.now(UTC), AuditAction.STORE, AuditOutcome.SUCCESS, "dimse", instances=3)
    source.append_audit([record, record])
    head = source.audit_head()
    source.close()

    target_url = create_database(postgres_url, "lightbox_bench_copy")
    target = SqlIndex(target_url)
    target.migrate()  # seeds the audit trail's head, which the copy replaces
    rows, _ = copy_index(source_url, target_url)
    copied, expected = _counts(target_url), _counts(source_url)
    assert rows == sum(expected.values())
    assert copied == expected
    assert copied["instances"] == 3
    assert target.audit_head() == head
    target.close()
