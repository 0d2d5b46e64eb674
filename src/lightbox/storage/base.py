"""The BlobStore port: a small interface every storage backend implements and the contract suite checks.

Objects are addressed by keys the archive makes (see ``keys.py``), never by values from the wire. Writes go
through a ``BlobWriter`` so that an adapter can stream bytes from the socket straight to storage; nothing is
visible under its key until ``commit`` returns, and ``commit`` returns only once the object is durable.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO


class BlobNotFound(FileNotFoundError):
    """No object is stored under this key."""


class BlobStoreError(OSError):
    """The store failed (disk full, permission, I/O error). Raised instead of backend-specific errors."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int
    sha256: str


class BlobWriter(abc.ABC):
    """A pending object. Write chunks, then ``commit`` (durable, visible) or ``abort`` (nothing left)."""

    key: str

    @abc.abstractmethod
    def write(self, chunk: bytes | bytearray | memoryview) -> None: ...

    @property
    @abc.abstractmethod
    def size(self) -> int: ...

    @property
    @abc.abstractmethod
    def sha256(self) -> str:
        """Hex SHA-256 of everything written so far."""

    @abc.abstractmethod
    def open_written(self) -> BinaryIO:
        """Read back what was written before commit (to parse the header without holding it in memory)."""

    @abc.abstractmethod
    def commit(self) -> BlobInfo:
        """Make the object durable and visible under ``key``; after it returns, a power cut loses nothing."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Discard the pending object; idempotent."""

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # Leaving the block without commit (an exception, an early return) leaves nothing behind.
        self.abort()


class BlobStore(abc.ABC):
    """Create, read, read a range, delete, test and list objects. Streams only; never whole objects."""

    def prefetch(self, key: str) -> None:  # noqa: B027 - a hint: a store may ignore it
        """Hint that ``key`` will be read soon, from its start (a series streaming object after object);
        the store may start reading it ahead. Never fails."""

    @abc.abstractmethod
    def writer(self, key: str) -> BlobWriter: ...

    def put(self, key: str, chunks: Iterable[bytes]) -> BlobInfo:
        """Store ``chunks`` under ``key`` durably."""
        with self.writer(key) as w:
            for chunk in chunks:
                w.write(chunk)
            return w.commit()

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the whole object. Raises BlobNotFound."""

    def open_checked(self, key: str, sha256: str, size: int) -> BinaryIO:
        """The whole object, for a caller that knows its checksum and size: a store holding a second copy
        reads that one when the first fails the checksum. A single store has no other: ``open``."""
        return self.open(key)

    @abc.abstractmethod
    def open_range(self, key: str, start: int, end: int | None = None) -> Iterator[bytes]:
        """Chunks of bytes ``start`` (inclusive) to ``end`` (exclusive; None: to the end)."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error (deletes are retried after crashes)."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    @abc.abstractmethod
    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every committed key starting with ``prefix``, in lexical order."""

    def recover(self) -> None:  # noqa: B027 - optional hook, a no-op for stores with nothing to clean
        """Clean up what an interrupted process left behind (pending writes). Called at start."""

    def check(self) -> None:  # noqa: B027
        """Raise BlobStoreError when the store is not usable (for the health check)."""
