"""Replicating BlobStore: every object is written to a primary and a replica store, synchronously.

A writer tees each chunk into one pending write per store; ``commit`` makes the object durable in both (the
replica's commit runs alongside the primary's) and returns only once both hold it, so that nothing
acknowledged exists in one copy only. When either commit fails the store fails: the copy that did commit is
removed and the caller gets a BlobStoreError (the sender is told to try again). Deletes go to both.

Reads come from the primary; an object missing there, or that the primary cannot read, is read from the
replica instead (and logged). A whole object retrieved (``open_checked``: WADO-RS, C-GET, C-MOVE, export)
is checked against its checksum first, and read from the replica when the primary's copy fails it; ranges
(frames, bulk data) and objects over ``CHECKED_READ_LIMIT`` are not: ``lightbox verify`` scrubs both copies
and repairs one from the other (``services/verify.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import io
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from lightbox.storage.base import BlobInfo, BlobNotFound, BlobStore, BlobStoreError, BlobWriter

log = logging.getLogger(__name__)

# A read that fails on the primary with one of these is tried on the replica
_READ_FAILURES = (BlobNotFound, BlobStoreError)
# Whole objects up to this size are checked against their checksum before they are sent (a CT image is
# half a megabyte; SHA-256 reads about 1 GB/s here)
CHECKED_READ_LIMIT = 64 << 20


class ReplicatedWriter(BlobWriter):
    def __init__(self, store: ReplicatedBlobStore, key: str) -> None:
        self.key = key
        self._store = store
        self._primary = store.primary.writer(key)
        try:
            self._replica = store.replica.writer(key)
        except BaseException:
            self._primary.abort()
            raise

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        try:
            self._primary.write(chunk)
            self._replica.write(chunk)
        except BaseException:
            self.abort()
            raise

    @property
    def size(self) -> int:
        return self._primary.size

    @property
    def sha256(self) -> str:
        return self._primary.sha256

    def open_written(self) -> BinaryIO:
        return self._primary.open_written()

    def commit(self) -> BlobInfo:
        replica = self._store.committer.submit(self._replica.commit)
        try:
            info = self._primary.commit()
        except BaseException:
            self._discard_replica(replica.exception())
            raise
        failure = replica.exception()
        if failure is not None:
            # Not acknowledged: the object must not stay behind in the primary alone either
            with contextlib.suppress(BlobNotFound, BlobStoreError):
                self._store.primary.delete(self.key)
            raise BlobStoreError(0, f"replica store failed, {self.key} not stored: {failure}") from failure
        return info

    def _discard_replica(self, failure: BaseException | None) -> None:
        if failure is None:
            with contextlib.suppress(BlobNotFound, BlobStoreError):
                self._store.replica.delete(self.key)

    def abort(self) -> None:
        try:
            self._primary.abort()
        finally:
            self._replica.abort()


class ReplicatedBlobStore(BlobStore):
    def __init__(self, primary: BlobStore, replica: BlobStore, commit_threads: int = 16) -> None:
        self.primary = primary
        self.replica = replica
        # The replica's commits (an fsync, an upload) run here while the caller commits the primary
        self.committer = ThreadPoolExecutor(max_workers=commit_threads, thread_name_prefix="lightbox-replica")

    def writer(self, key: str) -> BlobWriter:
        return ReplicatedWriter(self, key)

    def prefetch(self, key: str) -> None:
        self.primary.prefetch(key)

    def open(self, key: str) -> BinaryIO:
        try:
            return self.primary.open(key)
        except _READ_FAILURES as exc:
            _falling_back(key, exc)
            try:
                return self.replica.open(key)
            except _READ_FAILURES as second:
                raise _both_failed(key, exc, second) from second

    def open_checked(self, key: str, sha256: str, size: int) -> BinaryIO:
        """The primary's copy once its checksum is right, else the replica's, else a BlobStoreError. An
        object larger than ``CHECKED_READ_LIMIT`` streams unchecked (it is not held in memory):
        ``lightbox verify`` finds such damage."""
        if size > CHECKED_READ_LIMIT:
            return self.open(key)
        errors: list[OSError] = []
        for store in (self.primary, self.replica):
            try:
                with store.open(key) as f:
                    data = f.read()
            except _READ_FAILURES as exc:
                errors.append(exc)
                continue
            if len(data) == size and hashlib.sha256(data).hexdigest() == sha256:
                if errors:
                    log.error("%s read from the replica: the primary's copy %s", key, _what(errors[0]))
                return io.BytesIO(data)
            errors.append(BlobStoreError(0, "fails its checksum"))
        if all(isinstance(error, BlobNotFound) for error in errors):
            raise BlobNotFound(key)
        raise BlobStoreError(
            0, f"no sound copy of {key}: primary {_what(errors[0])}, replica {_what(errors[1])}"
        )

    def open_range(self, key: str, start: int, end: int | None = None) -> Iterator[bytes]:
        position = start
        try:
            for chunk in self.primary.open_range(key, start, end):
                yield chunk
                position += len(chunk)
            return
        except _READ_FAILURES as exc:
            failure = exc
        # Mid-stream too: the replica holds the same bytes, so the stream goes on from where it stopped
        _falling_back(key, failure)
        try:
            yield from self.replica.open_range(key, position, end)
        except _READ_FAILURES as second:
            raise _both_failed(key, failure, second) from second

    def delete(self, key: str) -> None:
        self.primary.delete(key)
        self.replica.delete(key)

    def exists(self, key: str) -> bool:
        return self.primary.exists(key) or self.replica.exists(key)

    def size(self, key: str) -> int:
        try:
            return self.primary.size(key)
        except BlobNotFound:
            return self.replica.size(key)

    def keys(self, prefix: str = "") -> Iterator[str]:
        # Every key readable through this store, in order: an object lost from the primary is still there
        last = None
        for key in heapq.merge(self.primary.keys(prefix), self.replica.keys(prefix)):
            if key != last:
                yield key
                last = key

    def recover(self) -> None:
        self.primary.recover()
        self.replica.recover()

    def check(self) -> None:
        self.primary.check()
        try:
            self.replica.check()
        except BlobStoreError as exc:
            raise BlobStoreError(exc.errno or 0, f"replica: {exc.strerror or exc}") from exc


def _what(error: OSError) -> str:
    return "is missing" if isinstance(error, BlobNotFound) else str(error.strerror or error)


def _falling_back(key: str, failure: OSError) -> None:
    log.warning("reading %s from the replica: the primary store failed (%s)", key, failure)


def _both_failed(key: str, primary: OSError, replica: OSError) -> OSError:
    """The error of a read that failed on both stores: not found only when neither holds the object."""
    if isinstance(primary, BlobNotFound) and isinstance(replica, BlobNotFound):
        return primary
    return BlobStoreError(0, f"{key} is unreadable in both stores: {primary}; replica: {replica}")
