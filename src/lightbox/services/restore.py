"""``lightbox restore SRC --data-dir NEW``: a working archive again, from one backup.

The backup's index snapshot becomes NEW's index (an SQLite database; or its rows go into an empty
PostgreSQL database), upgraded to this Lightbox's schema; every object it refers to is copied into NEW's
store and its SHA-256 checked against the index. The snapshot must be the one backed up: its file's
checksum and the digest of its object list are compared with the manifest first. An object missing from
the backup or damaged there is reported and its instance left out, so the archive restored is whole and
consistent; the restore then reports failure. NEW must be empty: nothing is ever restored over an archive.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightbox.domain.errors import Conflict
from lightbox.domain.levels import Level
from lightbox.index.base import Index, InstanceLocation
from lightbox.services import backup_layout as layout
from lightbox.services.backup import OpenSnapshot
from lightbox.services.backup_layout import KeyDigest, Problem
from lightbox.storage.base import BlobStore
from lightbox.storage.local_files import file_sha256, fsync_dir
from lightbox.storage.tiered import split_key

INDEX_FILE = "index.db"


@dataclass
class RestoreReport:
    name: str
    instances: int = 0
    bytes: int = 0
    restored: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0


def check_empty(target: Path) -> None:
    """Refuse a target that holds anything: a restore never mixes with an archive."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Conflict(f"{target} is not empty: restore into a new or empty folder")


class RestoreService:
    def __init__(
        self, source: Path, backup_store: BlobStore, open_snapshot: OpenSnapshot, *, workers: int = 4
    ):
        self.source = source
        self.backup_store = backup_store
        self.open_snapshot = open_snapshot
        self.workers = workers

    def restore(
        self,
        name: str,
        target: Path,
        store: Callable[[], BlobStore],
        database: Index | None = None,
    ) -> RestoreReport:
        """Restore backup ``name`` into the empty folder ``target``; ``store`` makes its blob store (once
        the folder is known to be empty); ``database``: an empty index to fill instead of an SQLite file."""
        started = time.monotonic()
        check_empty(target)
        manifest = layout.read_manifest(self.source, name)
        snapshot = self.source / manifest["index"]["file"]
        if file_sha256(snapshot) != manifest["index"]["sha256"]:
            raise Conflict(f"the index snapshot {snapshot} is damaged (its SHA-256 is not the manifest's)")
        created = not target.exists()
        target.mkdir(parents=True, exist_ok=True)
        try:
            report = self._restore(name, manifest, snapshot, target, store(), database)
        except BaseException:
            _empty(target, created)  # nothing half-restored stays behind
            raise
        report.seconds = time.monotonic() - started
        return report

    def _restore(
        self,
        name: str,
        manifest: dict[str, Any],
        snapshot: Path,
        target: Path,
        objects: BlobStore,
        database: Index | None,
    ) -> RestoreReport:
        report = RestoreReport(name)
        index_file = target / (INDEX_FILE if database is None else f"{name}.restoring.db")
        shutil.copyfile(snapshot, index_file)
        with self.open_snapshot(index_file) as snap:
            self._check_objects_listed(snap, manifest)
            snap.migrate()  # an older backup comes up to this Lightbox's schema
            moved: dict[str, str] = {}  # the keys of objects in other tiers -> their keys in the first
            with ThreadPoolExecutor(self.workers, thread_name_prefix="restore") as pool:
                for page in layout.pages(snap):
                    outcomes = pool.map(lambda loc: self._copy(loc, objects), page)
                    moved.update(
                        (loc.blob_key, _first_tier(loc.blob_key)) for loc in page if loc.blob_key[0] == "@"
                    )
                    for location, wrong in zip(page, outcomes, strict=True):
                        if wrong is None:
                            report.restored += 1
                        else:
                            report.problems.append(
                                Problem(location.blob_key, location.sop_instance_uid, wrong)
                            )
            for left_out in report.problems:
                deletion = snap.delete_content(Level.IMAGE, left_out.sop_instance_uid)
                snap.forget_blob_deletions(deletion.blob_keys)
            snap.restored_in_first_tier(moved)
            stats = snap.statistics()
            report.instances, report.bytes = stats.instances, stats.size_bytes
        if database is not None:
            database.restore_from(index_file)
            index_file.unlink()
        else:
            _fsync(index_file)
        return report

    def _check_objects_listed(self, snap: Index, manifest: dict[str, Any]) -> None:
        digest = KeyDigest()
        for page in layout.pages(snap):
            for location in page:
                digest.add(location)
        if digest.hexdigest() != manifest["objects"]["keys_sha256"]:
            raise Conflict(
                "the index snapshot does not list the objects its manifest records: it is not this backup's"
            )

    def _copy(self, location: InstanceLocation, objects: BlobStore) -> str | None:
        key = _first_tier(location.blob_key)
        problem = layout.copy_or_problem(self.backup_store, objects, location, "the backup", key)
        return "missing from the backup" if problem == layout.GONE else problem


def _first_tier(key: str) -> str:
    """Every object is restored into the one store of the new archive, its first tier."""
    return split_key(key)[1]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def _empty(target: Path, created: bool) -> None:
    if created:
        shutil.rmtree(target, ignore_errors=True)
        return
    for entry in target.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
