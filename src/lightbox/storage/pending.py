"""Pending files: an object being written lives in a local file named after its writer (host and process)
until it is committed, so that recovery at start removes only what a dead process left behind."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import socket
import time
from pathlib import Path
from typing import BinaryIO

from lightbox.storage.base import BlobStoreError, BlobWriter

# A pending write older than this at start-up belongs to a process that died; newer ones may be another
# node's on a shared filesystem.
STALE_PENDING_SECONDS = 3600.0
_HOST = socket.gethostname()


def pending_path(directory: Path, key: str) -> Path:
    """Where this process writes ``key`` before its commit (the key's last part keeps names unique)."""
    return directory / f"{_HOST}~{os.getpid()}~{key.rsplit('/', 1)[1]}.part"


def remove_abandoned(directory: Path) -> None:
    """Remove the pending files of dead local processes, and any older than ``STALE_PENDING_SECONDS``."""
    cutoff = time.time() - STALE_PENDING_SECONDS
    for entry in os.scandir(directory):
        host, _, rest = entry.name.partition("~")
        pid = rest.partition("~")[0]
        if host == _HOST and pid == str(os.getpid()):
            continue
        with contextlib.suppress(FileNotFoundError):
            dead = host == _HOST and not _pid_alive(pid)
            if dead or entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)


def _pid_alive(pid: str) -> bool:
    """Whether a local process with this id runs (a pending write of a live process must stay)."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def storage_os_error(exc: OSError) -> BlobStoreError:
    if exc.errno == errno.ENOSPC:
        return BlobStoreError(exc.errno, "no space left in the blob store")
    return BlobStoreError(exc.errno or 0, f"blob store I/O error: {exc}")


class PendingFileWriter(BlobWriter):
    """Writes into a local pending file, hashing as it goes; a backend's ``commit`` makes the file durable
    under its key (a rename, an upload) and must end with ``abort`` or ``_closed`` on every path."""

    def __init__(self, key: str, directory: Path) -> None:
        self.key = key
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False
        self._pending = pending_path(directory, key)
        try:
            self._file: BinaryIO = open(self._pending, "xb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            raise storage_os_error(exc) from exc

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self._hash.update(chunk)
        self._size += len(chunk)
        try:
            self._file.write(chunk)
            self._wrote(len(chunk))
        except OSError as exc:
            self.abort()
            raise storage_os_error(exc) from exc

    def _wrote(self, count: int) -> None:
        """Called after each write (a backend may start writing pages out early)."""

    @property
    def size(self) -> int:
        return self._size

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def open_written(self) -> BinaryIO:
        self._file.flush()
        return open(self._pending, "rb")

    def _check_open(self) -> None:
        if self._done:
            raise BlobStoreError(0, f"writer for {self.key} is already closed")

    def _closed(self) -> None:
        """The pending file has become the object: nothing is left to remove."""
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._pending)
