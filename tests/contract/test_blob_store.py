"""The BlobStore contract: every backend must pass this suite (parametrise ``store`` for new backends)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from lightbox.storage import keys
from lightbox.storage.base import BlobNotFound, BlobStore
from lightbox.storage.filesystem import FileSystemBlobStore
from lightbox.storage.replicated import ReplicatedBlobStore
from lightbox.storage.s3 import S3BlobStore, S3Options
from lightbox.storage.tiered import TieredBlobStore
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server


@pytest.fixture(params=["filesystem", "s3", "tiered", "replicated", "replicated-to-s3", "replicated-tiers"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "filesystem":
        yield FileSystemBlobStore(tmp_path / "objects")
    elif request.param == "tiered":  # new objects go to the first tier
        yield TieredBlobStore(
            FileSystemBlobStore(tmp_path / "objects"), {"cold": FileSystemBlobStore(tmp_path / "c")}
        )
    elif request.param == "s3":
        yield s3_store(request.getfixturevalue("s3"), tmp_path)
    elif request.param == "replicated":
        yield ReplicatedBlobStore(
            FileSystemBlobStore(tmp_path / "objects"), FileSystemBlobStore(tmp_path / "replica")
        )
    elif request.param == "replicated-to-s3":
        replica = s3_store(request.getfixturevalue("s3"), tmp_path / "replica")
        yield ReplicatedBlobStore(FileSystemBlobStore(tmp_path / "objects"), replica)
    else:  # the replica keeps the tiers in folders of its own, as the composition root builds it
        primary = TieredBlobStore(
            FileSystemBlobStore(tmp_path / "objects"), {"cold": FileSystemBlobStore(tmp_path / "c")}
        )
        replica = TieredBlobStore(
            FileSystemBlobStore(tmp_path / "replica"),
            {"cold": FileSystemBlobStore(tmp_path / "replica" / "@cold")},
        )
        yield ReplicatedBlobStore(primary, replica)


def _pending_dirs(store: BlobStore) -> list[Path]:
    """Where a store keeps the objects being written."""
    if isinstance(store, ReplicatedBlobStore):
        return _pending_dirs(store.primary) + _pending_dirs(store.replica)
    if isinstance(store, TieredBlobStore):
        return [d for s in [store.first, *store.others.values()] for d in _pending_dirs(s)]
    if isinstance(store, FileSystemBlobStore):
        return [store.root / ".tmp"]
    return [cast(S3BlobStore, store).spool]


def _key(hour: int = 10) -> str:
    return keys.new_key(datetime(2025, 3, 4, hour, 5, 6, tzinfo=UTC))


def test_put_then_read_back_identical(store: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    key = _key()
    info = store.put(key, [data[i : i + 65536] for i in range(0, len(data), 65536)])
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert store.exists(key)
    assert store.size(key) == len(data)
    with store.open(key) as f:
        assert f.read() == data


def test_open_range(store: BlobStore) -> None:
    data = bytes(range(256)) * 10_000
    key = _key()
    store.put(key, [data])
    assert b"".join(store.open_range(key, 100, 5000)) == data[100:5000]
    assert b"".join(store.open_range(key, len(data) - 10)) == data[-10:]
    assert b"".join(store.open_range(key, 0, 0)) == b""
    with pytest.raises(ValueError):
        list(store.open_range(key, 10, 5))


def test_nothing_visible_before_commit_and_nothing_left_after_abort(store: BlobStore) -> None:
    key = _key()
    writer = store.writer(key)
    writer.write(b"partial")
    assert not store.exists(key)
    assert list(store.keys()) == []
    writer.abort()
    assert not store.exists(key)
    for pending in _pending_dirs(store):
        assert list(pending.iterdir()) == []


def test_leaving_the_block_without_commit_aborts(store: BlobStore) -> None:
    key = _key()
    with pytest.raises(RuntimeError), store.writer(key) as writer:
        writer.write(b"x" * 100)
        raise RuntimeError("peer went away")
    assert not store.exists(key)


def test_read_back_before_commit(store: BlobStore) -> None:
    writer = store.writer(_key())
    writer.write(b"header")
    writer.write(b"-and-more")
    with writer.open_written() as f:
        assert f.read() == b"header-and-more"
    writer.abort()


def test_missing_objects(store: BlobStore) -> None:
    key = _key()
    with pytest.raises(BlobNotFound):
        store.open(key)
    with pytest.raises(BlobNotFound):
        list(store.open_range(key, 0))
    with pytest.raises(BlobNotFound):
        store.size(key)
    assert not store.exists(key)
    store.delete(key)  # deleting a missing object is not an error: deletes are retried after crashes


def test_delete(store: BlobStore) -> None:
    key = _key()
    store.put(key, [b"abc"])
    store.delete(key)
    assert not store.exists(key)


def test_keys_in_order_and_by_prefix(store: BlobStore) -> None:
    written = sorted([_key(9), _key(10), _key(10), _key(11)])
    for key in written:
        store.put(key, [b"x"])
    assert list(store.keys()) == written
    prefix = keys.partition_prefix(datetime(2025, 3, 4, 10, tzinfo=UTC))
    assert list(store.keys(prefix)) == [k for k in written if k.startswith(prefix)]
    assert list(store.keys("2030/")) == []


@pytest.mark.parametrize(
    "bad_key",
    ["../../etc/passwd", "/etc/passwd", "2025/03/04/10/../../../x.dcm", "1.2.3.dcm", "", "a/b/c/d/e.dcm"],
)
def test_keys_that_could_escape_are_refused(store: BlobStore, bad_key: str) -> None:
    with pytest.raises(ValueError):
        store.writer(bad_key)
    with pytest.raises(ValueError):
        store.open(bad_key)
    with pytest.raises(ValueError):
        store.delete(bad_key)


def test_recover_removes_pending_writes_of_dead_processes(tmp_path: Path) -> None:
    store = FileSystemBlobStore(tmp_path / "objects")
    host = os.uname().nodename
    dead = store.root / ".tmp" / f"{host}~999999999~x.part"
    dead.write_bytes(b"left by a crash")
    mine = store.writer(_key())
    mine.write(b"in progress")
    store.recover()
    assert not dead.exists()
    with mine.open_written() as f:  # a live writer's pending file stays
        assert f.read() == b"in progress"
    mine.abort()


def test_commit_is_durable_layout(tmp_path: Path) -> None:
    store = FileSystemBlobStore(tmp_path / "objects")
    key = _key()
    store.put(key, [b"data"])
    path = store.root / key
    assert path.read_bytes() == b"data"
    assert path.parent.parent.parent.parent.parent == store.root  # YYYY/MM/DD/HH/name


def test_prefetch_is_a_hint_that_never_fails(store: BlobStore) -> None:
    key = keys.new_key()
    with store.writer(key) as w:
        w.write(b"ahead")
        w.commit()
    store.prefetch(key)  # the object reads the same after it
    with store.open(key) as f:
        assert f.read() == b"ahead"
    store.prefetch(keys.new_key())  # no such object: nothing happens
    store.prefetch("../../etc/passwd")  # not a key: nothing happens either, no path is built


def s3_store(s3: S3Server, tmp_path: Path, part_size: int = 5 << 20) -> S3BlobStore:
    options = S3Options(
        bucket=s3.new_bucket(),
        prefix="archive",
        endpoint_url=s3.endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        part_size=part_size,
    )
    return S3BlobStore(options, spool=tmp_path / "pending")


def test_seeking_in_an_open_object(store: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024)
    key = _key()
    store.put(key, [data])
    with store.open(key) as f:
        assert f.read(10) == data[:10]
        f.seek(2 * 1024 * 1024)
        assert f.read(100) == data[2 * 1024 * 1024 : 2 * 1024 * 1024 + 100]
        f.seek(-5, os.SEEK_END)
        assert f.read() == data[-5:]
        f.seek(3)
        assert f.tell() == 3 and f.read(4) == data[3:7]


def test_ranges_at_and_past_the_end(store: BlobStore) -> None:
    key = _key()
    store.put(key, [b"0123456789"])
    assert b"".join(store.open_range(key, 10)) == b""
    assert b"".join(store.open_range(key, 20)) == b""
    assert b"".join(store.open_range(key, 5, 50)) == b"56789"
    assert b"".join(store.open_range(key, 4, 4)) == b""


def test_an_empty_object(store: BlobStore) -> None:
    key = _key()
    info = store.put(key, [])
    assert info.size == 0 and store.size(key) == 0
    with store.open(key) as f:
        assert f.read() == b""


def test_a_tier_keeps_its_objects_under_its_name(tmp_path: Path) -> None:
    hot, cold = FileSystemBlobStore(tmp_path / "hot"), FileSystemBlobStore(tmp_path / "cold")
    store = TieredBlobStore(hot, {"cold": cold})
    plain, moved = _key(9), "@cold/" + _key(10)
    assert store.put(plain, [b"hot"]).key == plain
    assert store.put(moved, [b"cold"]).key == moved
    assert cold.exists(moved.removeprefix("@cold/")) and not hot.exists(moved.removeprefix("@cold/"))
    assert list(store.keys()) == [plain, moved]  # in lexical order: the first tier's, then the others'
    assert list(store.keys("@cold/")) == [moved]
    assert list(store.keys(plain[:5])) == [plain]
    assert b"".join(store.open_range(moved, 1)) == b"old"
    store.delete(moved)
    assert not store.exists(moved)
