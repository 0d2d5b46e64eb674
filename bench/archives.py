"""Fresh archives for the benchmark, built through the composition root like the CLI builds them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lightbox.app import Archive, build_archive
from lightbox.config import load_settings


def isolate_from_environment() -> None:
    """Drop LIGHTBOX_* settings so that a developer's own archive configuration cannot leak into a run.

    LIGHTBOX_TEST_POSTGRES_URL stays: it names an existing PostgreSQL server to use instead of a throwaway.
    """
    for name in list(os.environ):
        if name.startswith("LIGHTBOX_") and name != "LIGHTBOX_TEST_POSTGRES_URL":
            del os.environ[name]


def fresh_archive(
    root: Path,
    *,
    database_url: str | None = None,
    storage_url: str | None = None,
    replica_url: str | None = None,
    audit: bool = True,
) -> Archive:
    """An empty archive under ``root`` (removed first): SQLite and filesystem unless URLs are given, every
    object replicated to ``replica_url`` when given; ``audit``: whether it records the audit trail (the
    default, as ``lightbox serve`` does)."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    settings = load_settings(
        data_dir=root.resolve(),
        database={"url": database_url or f"sqlite:///{(root / 'index.db').resolve()}"},
        storage={"url": storage_url or f"file://{(root / 'objects').resolve()}", "replica_url": replica_url},
        audit={"enabled": audit},
    )
    return build_archive(settings)
