"""Index scale: the small instances imported into a SQLite archive, then the same objects indexed on PG.

PostgreSQL gets its index by ``ManageService.reindex`` over the SQLite archive's object store (storage URL
shared, database URL PostgreSQL): the same header parsing and index writes as an import, without writing
the objects a second time. When even that would not fit the run's time budget, the SQLite index rows are
bulk-copied instead (``pgcopy``); the report says which was done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.archives import fresh_archive
from bench.dataset import DatasetInfo, warm_page_cache
from bench.ingest_bench import ImportRun, run_import
from bench.pgcopy import copy_index
from bench.progress import Progress
from lightbox.app import Archive
from lightbox.config import IngestSettings


@dataclass
class ReindexRun:
    label: str
    workers: int
    indexed: int
    failed: int
    seconds: float
    errors: list[str]

    @property
    def rate(self) -> float:
        return self.indexed / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "workers": self.workers,
            "indexed": self.indexed,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "instances_per_s": round(self.rate, 1),
            "errors": self.errors,
        }


def counts(archive: Archive) -> dict[str, int]:
    stats = archive.manage.statistics()
    return {
        "patients": stats.patients,
        "studies": stats.studies,
        "series": stats.series,
        "instances": stats.instances,
    }


def build_sqlite(root: Path, dataset: DatasetInfo, workers: int) -> tuple[Archive, ImportRun]:
    archive = fresh_archive(root)
    run = run_import(archive, dataset.files, dataset.total_bytes, workers, "SQLite import")
    return archive, run


def build_postgres(
    root: Path, database_url: str, objects_url: str, workers: int
) -> tuple[Archive, ReindexRun]:
    archive = fresh_archive(root, database_url=database_url, storage_url=objects_url)
    with Progress("PostgreSQL reindex", None) as progress:
        start = time.perf_counter()
        report = archive.manage.reindex(progress.advance, workers=workers)
        seconds = time.perf_counter() - start
    errors = [f"{key}: {reason}" for key, reason in report.failed[:5]]
    return archive, ReindexRun(
        "PostgreSQL reindex", workers, report.indexed, len(report.failed), seconds, errors
    )


def copy_to_postgres(root: Path, database_url: str, sqlite_archive: Archive) -> tuple[Archive, ReindexRun]:
    """A PostgreSQL archive over the same objects whose index rows are copied from the SQLite archive."""
    archive = fresh_archive(root, database_url=database_url, storage_url=sqlite_archive.settings.storage_url)
    rows, seconds = copy_index(sqlite_archive.settings.database_url, database_url)
    indexed = counts(archive)["instances"]
    return archive, ReindexRun(f"PostgreSQL bulk copy ({rows:,} rows)", 1, indexed, 0, seconds, [])


def analyze_postgres(database_url: str) -> float:
    """Planner statistics after the bulk load, as autovacuum would gather within a minute; returns seconds."""
    import psycopg

    start = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return time.perf_counter() - start


def postgres_version(database_url: str) -> str:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def import_small_archive(data_dir: Path, small: DatasetInfo) -> tuple[Path, str]:
    """The small dataset imported into a fresh SQLite archive, as the query part builds it, for the parts
    that run without it (--only dimse, --only dicomweb): its data directory and a line saying how."""
    warm_page_cache(small.files)
    workers = IngestSettings().workers
    built, imported = build_sqlite(data_dir / "runs" / "index-sqlite", small, workers)
    built.close()
    if imported.failed:
        raise RuntimeError(f"{imported.failed} of {len(small.files):,} instances failed to import")
    return (
        built.settings.data_dir,
        f"imported for this part: {imported.rate:,.0f} instances/s, {workers} threads",
    )
