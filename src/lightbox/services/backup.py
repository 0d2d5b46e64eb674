"""``lightbox backup DEST``: a consistent snapshot of the index, then the objects it refers to, copied once.

Objects never change once stored (a replacement is a new key), so the snapshot decides what the backup
holds: every object it refers to, none stored after it. It is taken first, in one read transaction, while
the archive goes on storing; then each object it refers to that DEST does not have yet is copied, its
SHA-256 checked against the index on the way.

An object may go from the archive between the snapshot and its copy: its instance was deleted, or replaced
by a newer object (a re-sent instance, a lossless re-encoding). The backup does not fail for that; it asks
the archive's index what became of the instance. Deleted: the instance is taken out of the snapshot too.
Replaced: the newer object is copied and indexed in the snapshot in place of the old one. Moved to another
storage tier: the moved copy is copied and the snapshot's instance pointed at it. Either way the
snapshot refers to exactly the objects the backup holds, and the manifest lists those instances. An object
the archive's index still refers to but that is missing or damaged in storage is a problem of the archive:
it is left out, listed, and the backup reports failure.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from lightbox import __version__
from lightbox.domain.errors import LightboxError
from lightbox.domain.levels import Level
from lightbox.index.base import DuplicatePolicy, Index, InstanceLocation
from lightbox.services import backup_layout as layout
from lightbox.services.backup_layout import KeyDigest, Problem
from lightbox.services.events import EventBus
from lightbox.services.ingest import IngestService
from lightbox.storage.base import BlobStore, BlobWriter
from lightbox.storage.local_files import file_sha256, fsync_dir
from lightbox.storage.tiered import split_key

log = logging.getLogger(__name__)

# An instance replaced again while its newer object was being copied is followed this many times.
_FOLLOW = 5

OpenSnapshot = Callable[[Path], AbstractContextManager[Index]]


@dataclass
class BackupReport:
    name: str
    manifest: Path
    instances: int = 0
    bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    already_there: int = 0
    deleted: list[str] = field(default_factory=list)  # SOP Instance UIDs deleted during the backup
    replaced: list[str] = field(default_factory=list)  # ... replaced: the newer object is in the backup
    moved: list[str] = field(default_factory=list)  # ... moved to another tier: the moved copy is in
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0


class BackupService:
    def __init__(
        self, index: Index, blobs: BlobStore, open_snapshot: OpenSnapshot, *, workers: int = 4
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.open_snapshot = open_snapshot
        self.workers = workers

    def backup(self, dest: Path, target: BlobStore, *, engine: str = "") -> BackupReport:
        """Back the archive up into ``dest``, whose objects live in ``target`` (``dest/objects``)."""
        started = time.monotonic()
        with layout.locked(dest):
            snapshot, name = self.take_snapshot(dest)
            report = BackupReport(name, layout.manifest_path(dest, name))
            with self.open_snapshot(snapshot) as snap:
                self.copy_objects(snap, target, report)
                manifest = self._manifest(snap, report, engine)
            final = layout.index_path(dest, name)
            os.rename(snapshot, final)
            fsync_dir(final.parent)
            manifest["index"] = {
                "file": str(final.relative_to(dest)),
                "size": final.stat().st_size,
                "sha256": file_sha256(final),
            }
            report.seconds = time.monotonic() - started
            manifest["seconds"] = round(report.seconds, 3)
            layout.write_json_durably(report.manifest, manifest)
        return report

    def take_snapshot(self, dest: Path) -> tuple[Path, str]:
        """The index as it is now, in ``dest/index/<name>.db.partial``; its name."""
        folder = dest / "index"
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.partial"):  # an interrupted backup's (we hold the lock)
            stale.unlink()
        name = layout.backup_name(datetime.now(UTC))
        while layout.manifest_path(dest, name).exists():  # names are to the second
            time.sleep(0.2)
            name = layout.backup_name(datetime.now(UTC))
        partial = folder / f"{name}.db.partial"
        self.index.snapshot(partial)
        return partial, name

    def copy_objects(self, snap: Index, target: BlobStore, report: BackupReport) -> None:
        """Copy every object ``snap`` refers to that ``target`` lacks; settle those gone meanwhile."""
        gone: list[InstanceLocation] = []
        with ThreadPoolExecutor(self.workers, thread_name_prefix="backup") as pool:
            for page in layout.pages(snap):
                outcomes = pool.map(lambda loc: self._copy(loc, target), page)
                for location, outcome in zip(page, outcomes, strict=True):
                    if outcome == "copied":
                        report.copied += 1
                        report.copied_bytes += location.size
                    elif outcome == "there":
                        report.already_there += 1
                    elif outcome == layout.GONE:
                        gone.append(location)
                    else:
                        report.problems.append(Problem(location.blob_key, location.sop_instance_uid, outcome))
        for problem in report.problems:
            _leave_out(snap, problem.sop_instance_uid)
        for location in gone:
            self._settle(snap, target, location, report)

    def _copy(self, location: InstanceLocation, target: BlobStore) -> str:
        """``"copied"``, ``"there"``, ``GONE``, or what is wrong with the archive's object."""
        if layout.has_object(target, location):
            return "there"
        return layout.copy_or_problem(self.blobs, target, location, "the archive") or "copied"

    def _settle(
        self, snap: Index, target: BlobStore, location: InstanceLocation, report: BackupReport
    ) -> None:
        """The object went after the snapshot: follow what became of its instance."""
        sop = location.sop_instance_uid
        for _ in range(_FOLLOW):
            now = self.index.find_instance(sop)
            if now is None:
                _leave_out(snap, sop)
                report.deleted.append(sop)
                return
            if now.blob_key == location.blob_key:
                break  # still indexed, yet not in storage: the archive lost it
            outcome = self._copy(now, target)
            if outcome in ("copied", "there"):
                if outcome == "copied":
                    report.copied += 1
                    report.copied_bytes += now.size
                if now.sha256 == location.sha256:  # the same object, moved to another storage tier
                    _point_at(snap, sop, location.blob_key, now.blob_key)
                    report.moved.append(sop)
                    return
                try:
                    _index_replacement(snap, target, now.blob_key)
                except LightboxError as exc:  # the archive took it, the snapshot's ingest does not
                    _leave_out(snap, sop)
                    report.problems.append(Problem(now.blob_key, sop, f"newer object not indexable: {exc}"))
                    return
                report.replaced.append(sop)
                return
            if outcome != layout.GONE:
                _leave_out(snap, sop)
                report.problems.append(Problem(now.blob_key, sop, outcome))
                return
            location = now  # replaced again meanwhile: follow on
        _leave_out(snap, sop)
        report.problems.append(Problem(location.blob_key, sop, "missing from the archive's storage"))

    def _manifest(self, snap: Index, report: BackupReport, engine: str) -> dict[str, Any]:
        digest = KeyDigest()
        for page in layout.pages(snap):
            for location in page:
                digest.add(location)
        stats = snap.statistics()
        report.instances, report.bytes = stats.instances, stats.size_bytes
        return {
            "format": layout.FORMAT,
            "name": report.name,
            "lightbox": __version__,
            "taken_at": datetime.strptime(report.name, layout.NAME_FORMAT).replace(tzinfo=UTC).isoformat(),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "index_engine": engine,
            "schema_revision": snap.schema_revision(),
            "content": {
                "patients": stats.patients,
                "studies": stats.studies,
                "series": stats.series,
                "instances": stats.instances,
                "bytes": stats.size_bytes,
            },
            "objects": {"count": digest.count, "bytes": digest.bytes, "keys_sha256": digest.hexdigest()},
            "copied": {"objects": report.copied, "bytes": report.copied_bytes},
            "already_there": report.already_there,
            "deleted_during_backup": report.deleted,
            "replaced_during_backup": report.replaced,
            "moved_during_backup": report.moved,
            "problems": [p.as_dict() for p in report.problems],
        }


def _leave_out(snap: Index, sop_instance_uid: str) -> None:
    """Take the instance out of the snapshot, as a delete would have (counters, emptied parents); its
    object is not in the backup, so nothing is left to delete."""
    deletion = snap.delete_content(Level.IMAGE, sop_instance_uid)
    snap.forget_blob_deletions(deletion.blob_keys)


def _point_at(snap: Index, sop_instance_uid: str, old_key: str, new_key: str) -> None:
    """Point the snapshot's instance at its object's copy in another tier, as the tier move did."""
    snap.note_pending_deletions(sop_instance_uid, [new_key], datetime.now(UTC))
    snap.move_object(sop_instance_uid, old_key, new_key, split_key(new_key)[0], timedelta(0))
    snap.forget_blob_deletions([old_key])  # not in the backup: nothing to delete


def _index_replacement(snap: Index, target: BlobStore, key: str) -> None:
    """Index the newer object (now in the backup) in the snapshot, as recovery indexes a stored object;
    the older one stays in the backup's store, where older backups may need it."""
    ingest = IngestService(snap, _KeepingStore(target), EventBus(), DuplicatePolicy.REPLACE)
    try:
        ingest.index_stored(key, "backup")
    finally:
        ingest.close()


class _KeepingStore(BlobStore):
    """The backup's store as the snapshot's ingest sees it: it never deletes (objects are shared)."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store

    def writer(self, key: str) -> BlobWriter:
        return self._store.writer(key)

    def open(self, key: str) -> BinaryIO:
        return self._store.open(key)

    def open_range(self, key: str, start: int, end: int | None = None) -> Iterator[bytes]:
        return self._store.open_range(key, start, end)

    def delete(self, key: str) -> None:
        log.debug("backup keeps %s", key)

    def exists(self, key: str) -> bool:
        return self._store.exists(key)

    def size(self, key: str) -> int:
        return self._store.size(key)

    def keys(self, prefix: str = "") -> Iterator[str]:
        return self._store.keys(prefix)
