"""Filesystem BlobStore: temporary file, fsync, rename, fsync the directory.

After ``commit`` returns, the object survives a power cut: nothing acknowledged may be lost.
Keys are validated against ``keys.is_valid_key`` before they become paths, so nothing escapes ``root``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lightbox.storage import keys
from lightbox.storage.base import BlobInfo, BlobNotFound, BlobStore, BlobStoreError, BlobWriter
from lightbox.storage.local_files import fsync_dir
from lightbox.storage.pending import PendingFileWriter, remove_abandoned, storage_os_error

_CHUNK = 1 << 20
_TMP_DIR = ".tmp"


# Start writing pages to disk while the object is still arriving, so that the fsync at commit waits for
# the last pages only (on this kind of disk it halves the commit). Linux's sync_file_range(2) starts the
# write-out without waiting and without dropping the pages from the cache (posix_fadvise would drop them,
# and a viewer often reads a study right after it arrives). Python's os module does not offer it.
_WRITEBACK_EVERY = 128 * 1024
_SYNC_FILE_RANGE_WRITE = 2


def _load_sync_file_range() -> object | None:
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux: commit's fsync does all the work
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load_sync_file_range()


def _start_writeback(fd: int) -> None:
    """Ask the kernel to begin writing the file's dirty pages; a hint: failure changes nothing."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # type: ignore[operator]


class FileSystemWriter(PendingFileWriter):
    def __init__(self, store: FileSystemBlobStore, key: str) -> None:
        super().__init__(key, store.root / _TMP_DIR)
        self._store = store
        self._unsynced = 0

    def _wrote(self, count: int) -> None:
        self._unsynced += count
        if self._unsynced >= _WRITEBACK_EVERY:
            self._unsynced = 0
            self._file.flush()
            _start_writeback(self._file.fileno())

    def commit(self) -> BlobInfo:
        self._check_open()
        final = self._store.path_of(self.key)
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            created = self._store.ensure_parent(final)
            os.rename(self._pending, final)
            fsync_dir(final.parent)
            for directory in created:
                fsync_dir(directory.parent)
        except OSError as exc:
            self.abort()
            raise storage_os_error(exc) from exc
        self._closed()
        return BlobInfo(self.key, self._size, self.sha256)


class FileSystemBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        (self.root / _TMP_DIR).mkdir(parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        if not keys.is_valid_key(key):
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def ensure_parent(self, path: Path) -> list[Path]:
        """Create the parents of ``path``; return the directories created (their parents need an fsync)."""
        created: list[Path] = []
        parent = path.parent
        while not parent.exists():
            created.append(parent)
            parent = parent.parent
        for directory in reversed(created):
            with contextlib.suppress(FileExistsError):
                directory.mkdir()
        return created

    def writer(self, key: str) -> BlobWriter:
        self.path_of(key)  # validates the key before anything touches the disk
        return FileSystemWriter(self, key)

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.path_of(key), "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise storage_os_error(exc) from exc

    def open_range(self, key: str, start: int, end: int | None = None) -> Iterator[bytes]:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range {start}-{end}")
        with self.open(key) as f:
            f.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                chunk = f.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def delete(self, key: str) -> None:
        path = self.path_of(key)
        try:
            os.unlink(path)
            fsync_dir(path.parent)  # a deletion the caller goes on to record must survive a power cut
        except FileNotFoundError:
            return
        except OSError as exc:
            raise storage_os_error(exc) from exc

    def prefetch(self, key: str) -> None:
        # The kernel reads the file ahead while the previous object is still being sent.
        with contextlib.suppress(OSError, ValueError):
            fd = os.open(self.path_of(key), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            finally:
                os.close(fd)

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self.path_of(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def keys(self, prefix: str = "") -> Iterator[str]:
        # Walk in lexical order so that callers can resume and recovery sees old before new.
        def walk(directory: Path, rel: str) -> Iterator[str]:
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except FileNotFoundError:
                return
            for entry in entries:
                name = rel + entry.name
                if entry.is_dir(follow_symlinks=False):
                    if entry.name == _TMP_DIR:
                        continue
                    sub = name + "/"
                    if sub.startswith(prefix) or prefix.startswith(sub):
                        yield from walk(Path(entry.path), sub)
                elif name.startswith(prefix) and keys.is_valid_key(name):
                    yield name

        yield from walk(self.root, "")

    def recover(self) -> None:
        remove_abandoned(self.root / _TMP_DIR)

    def check(self) -> None:
        tmp = self.root / _TMP_DIR
        if not os.access(tmp, os.W_OK):
            raise BlobStoreError(errno.EACCES, f"blob store {self.root} is not writable")
