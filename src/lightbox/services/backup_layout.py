"""What a backup folder holds and how its parts are written, read and checked.

::

    DEST/manifest-<name>.json   one per backup, written last: a backup exists once its manifest does
    DEST/index/<name>.db        the index snapshot (an SQLite database, whatever the archive's engine)
    DEST/objects/<key>          the objects, shared by every backup: each is copied once (they never change)

``<name>`` is the snapshot's UTC time, ``20261123T031500Z``: names sort as times do.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lightbox.domain.errors import Conflict, InvalidQuery, NotFound
from lightbox.index.base import Index, InstanceLocation
from lightbox.storage.base import BlobNotFound, BlobStore
from lightbox.storage.local_files import fsync_dir

FORMAT = 1
NAME_FORMAT = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"\d{8}T\d{6}Z")
_MANIFEST = re.compile(r"manifest-(\d{8}T\d{6}Z)\.json")
_CHUNK = 1 << 20


class ChecksumMismatch(Exception):
    """An object's bytes do not have the SHA-256 the index records."""


def backup_name(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(NAME_FORMAT)


def manifest_path(dest: Path, name: str) -> Path:
    return dest / f"manifest-{name}.json"


def index_path(dest: Path, name: str) -> Path:
    return dest / "index" / f"{name}.db"


def objects_path(dest: Path) -> Path:
    return dest / "objects"


def list_backups(dest: Path) -> list[str]:
    """The names of the complete backups in ``dest``, oldest first."""
    if not dest.is_dir():
        return []
    found = (_MANIFEST.fullmatch(p.name) for p in dest.iterdir())
    return sorted(m.group(1) for m in found if m)


def choose_backup(dest: Path, at: str | None) -> str:
    """The newest backup, or the one named ``at``, or the newest taken at or before the time ``at``."""
    names = list_backups(dest)
    if not names:
        raise NotFound(f"{dest} holds no backup (no manifest-*.json)")
    if at is None:
        return names[-1]
    if _NAME.fullmatch(at):
        if at not in names:
            raise NotFound(f"{dest} holds no backup {at}; it holds {', '.join(names)}")
        return at
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise InvalidQuery(
            f"--at {at!r} is neither a backup name ({names[-1]}) nor an ISO 8601 time"
        ) from None
    wanted = backup_name(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    earlier = [n for n in names if n <= wanted]
    if not earlier:
        raise NotFound(f"{dest} holds no backup taken at or before {at}; the first is {names[0]}")
    return earlier[-1]


def write_json_durably(path: Path, document: dict[str, Any]) -> None:
    """Write, fsync, rename, fsync the folder: the file is there whole or not at all."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        f.write(json.dumps(document, indent=2).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(partial, path)
    fsync_dir(path.parent)


def read_manifest(dest: Path, name: str) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(manifest_path(dest, name).read_bytes())
    except (OSError, ValueError) as exc:
        raise Conflict(f"cannot read the manifest of backup {name}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise Conflict(f"backup {name} has format {manifest.get('format')!r}; this Lightbox reads {FORMAT}")
    return manifest


@contextlib.contextmanager
def locked(dest: Path) -> Iterator[None]:
    """One backup at a time into ``dest`` (an advisory lock that dies with its process)."""
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / ".lock", "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"another backup is writing to {dest}; try again when it is done") from None
        yield


def copy_object(
    source: BlobStore, target: BlobStore, location: InstanceLocation, target_key: str | None = None
) -> None:
    """Copy one object, streaming, to ``target_key`` (by default its own); it becomes visible in ``target``
    only with the SHA-256 the index records. Raises ``BlobNotFound`` (gone from ``source``) or
    ``ChecksumMismatch``."""
    with source.open(location.blob_key) as f, target.writer(target_key or location.blob_key) as w:
        while chunk := f.read(_CHUNK):
            w.write(chunk)
        if w.sha256 != location.sha256 or w.size != location.size:
            raise ChecksumMismatch(
                f"{w.size} bytes with SHA-256 {w.sha256}; the index records {location.size} bytes "
                f"with {location.sha256}"
            )
        w.commit()


GONE = "gone"


def copy_or_problem(
    source: BlobStore,
    target: BlobStore,
    location: InstanceLocation,
    place: str,
    target_key: str | None = None,
) -> str | None:
    """``copy_object``: None once copied, ``GONE`` when ``source`` lacks it, else what is wrong with it."""
    try:
        copy_object(source, target, location, target_key)
    except BlobNotFound:
        return GONE
    except ChecksumMismatch as exc:
        return f"damaged in {place}: {exc}"
    return None


def has_object(store: BlobStore, location: InstanceLocation) -> bool:
    """Objects never change once stored: a key there with the right size is the same object."""
    try:
        return store.exists(location.blob_key) and store.size(location.blob_key) == location.size
    except FileNotFoundError:
        return False


def pages(index: Index, size: int = 1000) -> Iterator[list[InstanceLocation]]:
    """Every object ``index`` refers to, in key order, a page at a time."""
    after: str | None = None
    while page := index.stored_objects(after, size):
        yield page
        after = page[-1].blob_key


class KeyDigest:
    """A SHA-256 over every (key, size, checksum) of a snapshot, taken in key order: what the manifest
    records of the object list, so that a restore knows the index file is the one backed up."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.count = 0
        self.bytes = 0

    def add(self, location: InstanceLocation) -> None:
        self._digest.update(f"{location.blob_key} {location.size} {location.sha256}\n".encode())
        self.count += 1
        self.bytes += location.size

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Problem:
    """An object a backup or a restore could not carry over; its instance is left out."""

    key: str
    sop_instance_uid: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "sop_instance_uid": self.sop_instance_uid, "problem": self.problem}
