"""Several named stores as one: new objects go to the first tier; an object moved to another tier lives
under that tier's name, ``@<tier>/YYYY/MM/DD/HH/<name>.dcm``, so that a key alone says where to read it
and the read paths need no index look-up of their own."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import BinaryIO

from lightbox.storage.base import BlobInfo, BlobStore, BlobWriter

TIER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_MARK = "@"


def tier_key(tier: str | None, key: str) -> str:
    """``key`` (a plain key) as it is named in ``tier`` (None or the first tier: unchanged)."""
    return key if tier is None else f"{_MARK}{tier}/{key}"


def split_key(key: str) -> tuple[str | None, str]:
    """The tier a key names (None: the first) and the plain key."""
    if key.startswith(_MARK):
        tier, _, rest = key[1:].partition("/")
        return tier, rest
    return None, key


class _TierWriter(BlobWriter):
    """A writer of another tier's store, answering with the key as the archive names it."""

    def __init__(self, key: str, inner: BlobWriter) -> None:
        self.key = key
        self._inner = inner

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self._inner.write(chunk)

    @property
    def size(self) -> int:
        return self._inner.size

    @property
    def sha256(self) -> str:
        return self._inner.sha256

    def open_written(self) -> BinaryIO:
        return self._inner.open_written()

    def commit(self) -> BlobInfo:
        info = self._inner.commit()
        return BlobInfo(self.key, info.size, info.sha256)

    def abort(self) -> None:
        self._inner.abort()


class TieredBlobStore(BlobStore):
    def __init__(self, first: BlobStore, others: Mapping[str, BlobStore]) -> None:
        for name in others:
            if not TIER_NAME.fullmatch(name):
                raise ValueError(f"tier name {name!r}: 1-32 of a-z, 0-9 and -, a letter or digit first")
        self.first = first
        self.others = dict(others)

    def tier_of(self, key: str) -> tuple[BlobStore, str]:
        tier, plain = split_key(key)
        if tier is None:
            return self.first, plain
        store = self.others.get(tier)
        if store is None:
            raise ValueError(f"blob key {key!r} names no configured tier")
        return store, plain

    def writer(self, key: str) -> BlobWriter:
        store, plain = self.tier_of(key)
        writer = store.writer(plain)
        return writer if plain == key else _TierWriter(key, writer)

    def open(self, key: str) -> BinaryIO:
        store, plain = self.tier_of(key)
        return store.open(plain)

    def open_checked(self, key: str, sha256: str, size: int) -> BinaryIO:
        store, plain = self.tier_of(key)
        return store.open_checked(plain, sha256, size)

    def open_range(self, key: str, start: int, end: int | None = None) -> Iterator[bytes]:
        store, plain = self.tier_of(key)
        return store.open_range(plain, start, end)

    def delete(self, key: str) -> None:
        store, plain = self.tier_of(key)
        store.delete(plain)

    def exists(self, key: str) -> bool:
        store, plain = self.tier_of(key)
        return store.exists(plain)

    def size(self, key: str) -> int:
        store, plain = self.tier_of(key)
        return store.size(plain)

    def prefetch(self, key: str) -> None:
        try:
            store, plain = self.tier_of(key)
        except ValueError:
            return
        store.prefetch(plain)

    def keys(self, prefix: str = "") -> Iterator[str]:
        """The first tier's keys, then each other tier's (named with their tier), for ``prefix``."""
        tier, plain = split_key(prefix)
        if tier is None and not prefix.startswith(_MARK):
            yield from self.first.keys(prefix)
        for name, store in sorted(self.others.items()):
            mark = f"{_MARK}{name}/"
            if prefix == "" or (tier == name) or (prefix.startswith(_MARK) and mark.startswith(prefix)):
                inner = plain if tier == name else ""
                yield from (mark + key for key in store.keys(inner))

    def recover(self) -> None:
        self.first.recover()
        for store in self.others.values():
            store.recover()

    def check(self) -> None:
        self.first.check()
        for store in self.others.values():
            store.check()
