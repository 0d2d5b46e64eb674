"""Import rate: files through ``IngestService.ingest_file`` on a thread pool, as ``lightbox import`` does.

Every acknowledged object must be durable: the filesystem blob store fsyncs the object and its directory
before the index commit. The run counts the ``os.fsync`` calls it sees, so the report shows that the
durable path was taken (SQLite's own syncs happen in C and are not counted).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.progress import Progress
from lightbox.app import Archive
from lightbox.domain.errors import LightboxError

_MAX_ERRORS_KEPT = 5


@dataclass
class ImportRun:
    label: str
    workers: int
    instances: int
    source_bytes: int
    seconds: float
    outcomes: dict[str, int]
    failed: int
    fsyncs: int
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.instances / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.source_bytes / 1e6 / self.seconds if self.seconds else 0.0

    @property
    def fsyncs_per_object(self) -> float:
        stored = self.instances - self.failed
        return self.fsyncs / stored if stored else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "workers": self.workers,
            "instances": self.instances,
            "source_bytes": self.source_bytes,
            "seconds": round(self.seconds, 3),
            "instances_per_s": round(self.rate, 1),
            "mb_per_s": round(self.mb_per_s, 1),
            "outcomes": self.outcomes,
            "failed": self.failed,
            "blob_fsyncs_per_object": round(self.fsyncs_per_object, 2),
            "errors": self.errors,
        }


@contextlib.contextmanager
def count_fsyncs() -> Iterator[Callable[[], int]]:
    """Count ``os.fsync`` calls made while the block runs (``next`` on a count is atomic under the GIL)."""
    real = os.fsync
    counter = itertools.count()

    def counting(fd: Any) -> None:
        next(counter)
        real(fd)

    os.fsync = counting
    seen: list[int] = []
    try:
        yield lambda: seen[0] if seen else 0
    finally:
        os.fsync = real
        seen.append(next(counter))


def run_import(archive: Archive, files: list[Path], source_bytes: int, workers: int, label: str) -> ImportRun:
    """Import ``files`` with ``workers`` threads, timed from the first submit to the last result."""
    outcomes: Counter[str] = Counter()
    errors: list[str] = []
    failed = 0

    def one(path: Path) -> str | None:
        try:
            return archive.ingest.ingest_file(path).outcome.value
        except (LightboxError, OSError) as exc:
            return f"error: {path.name}: {exc}"

    with Progress(label, len(files)) as progress, count_fsyncs() as fsyncs:
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-import") as pool:
            for outcome in pool.map(one, files):
                progress.advance()
                if outcome is not None and outcome.startswith("error: "):
                    failed += 1
                    if len(errors) < _MAX_ERRORS_KEPT:
                        errors.append(outcome[7:])
                else:
                    outcomes[str(outcome)] += 1
        seconds = time.perf_counter() - start
    return ImportRun(
        label, workers, len(files), source_bytes, seconds, dict(outcomes), failed, fsyncs(), errors
    )
