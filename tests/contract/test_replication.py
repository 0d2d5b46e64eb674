"""Replication on both index engines: every object stored (ingest, re-encodings) is in both stores before it
is acknowledged, reads go on when the primary copy is missing or unreadable, a failing store fails the
store instead of acknowledging one copy, and deletes reach both."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from lightbox.app import build_storage
from lightbox.config import LifecycleRule, load_settings
from lightbox.domain.compression import Codec
from lightbox.domain.errors import ConfigurationError, NotFound, OutOfResources
from lightbox.domain.levels import Level
from lightbox.index.base import ContentFilter, InstanceLocation
from lightbox.index.sql import SqlIndex
from lightbox.services.compression import CompressionService
from lightbox.services.events import EventBus
from lightbox.services.ingest import IngestService
from lightbox.services.lifecycle import LifecycleService
from lightbox.services.manage import ManageService
from lightbox.services.retrieve import RetrieveService
from lightbox.services.verify import VerifyService
from lightbox.storage import keys
from lightbox.storage.base import BlobInfo, BlobNotFound, BlobStoreError, BlobWriter
from lightbox.storage.filesystem import FileSystemBlobStore
from lightbox.storage.replicated import ReplicatedBlobStore
from tests.contract.test_compression import ct_image
from tests.support.dicom import part10


class FailingStore(FileSystemBlobStore):
    """A filesystem store whose commits, deletes or reads can be made to fail as a broken disk would."""

    fail_commit = False
    fail_delete = False
    fail_read_after: int | None = None  # bytes a read yields before the I/O error; None: reads work

    def writer(self, key: str) -> BlobWriter:
        writer = super().writer(key)
        if self.fail_commit:

            def commit() -> BlobInfo:
                writer.abort()
                raise BlobStoreError(5, "blob store I/O error: device gone")

            writer.commit = commit  # type: ignore[method-assign]
        return writer

    def delete(self, key: str) -> None:
        if self.fail_delete:
            raise BlobStoreError(5, "blob store I/O error: device gone")
        super().delete(key)

    def open_range(self, key: str, start: int, end: int | None = None) -> Iterator[bytes]:
        if self.fail_read_after is None:
            yield from super().open_range(key, start, end)
            return
        data = b"".join(super().open_range(key, start, end))
        yield data[: self.fail_read_after]
        raise BlobStoreError(5, "blob store I/O error: bad sector")


def _stores(tmp_path: Path) -> tuple[FailingStore, FailingStore, ReplicatedBlobStore]:
    primary, replica = FailingStore(tmp_path / "objects"), FailingStore(tmp_path / "replica")
    return primary, replica, ReplicatedBlobStore(primary, replica)


def _services(index: SqlIndex, blobs: ReplicatedBlobStore) -> tuple[IngestService, ManageService]:
    events = EventBus()
    ingest = IngestService(index, blobs, events)
    return ingest, ManageService(index, blobs, ingest, events)


def _one_stored(
    index: SqlIndex, tmp_path: Path
) -> tuple[FailingStore, FailingStore, ReplicatedBlobStore, bytes, InstanceLocation]:
    """A replicated archive holding one object: its stores, the object's bytes and where it is."""
    primary, replica, blobs = _stores(tmp_path)
    ingest, _ = _services(index, blobs)
    data = part10()
    stored = ingest.ingest([data], "t")
    location = index.find_instance(stored.sop_instance_uid)
    assert location is not None
    return primary, replica, blobs, data, location


def test_every_stored_object_is_in_both_stores(index: SqlIndex, tmp_path: Path) -> None:
    primary, replica, _, data, location = _one_stored(index, tmp_path)
    assert (primary.root / location.blob_key).read_bytes() == data
    assert (replica.root / location.blob_key).read_bytes() == data


def test_reencodings_are_replicated_too(index: SqlIndex, tmp_path: Path) -> None:
    primary, replica, blobs = _stores(tmp_path)
    ingest, _ = _services(index, blobs)
    stored = ingest.ingest([ct_image()], "t")
    report = CompressionService(index, blobs, ingest, Codec.JPEG_LS).compress_all()
    location = index.find_instance(stored.sop_instance_uid)
    assert report.compressed == 1 and location is not None and location.sha256 != stored.sha256
    copy = (replica.root / location.blob_key).read_bytes()
    assert copy == (primary.root / location.blob_key).read_bytes() and len(copy) == location.size


def test_reads_fall_back_to_the_replica_when_the_primary_object_is_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    primary, _, blobs = _stores(tmp_path)
    data = os.urandom(3 << 20)
    key = keys.new_key()
    blobs.put(key, [data])
    (primary.root / key).unlink()
    with caplog.at_level(logging.WARNING, "lightbox.storage.replicated"):
        with blobs.open(key) as f:
            assert f.read() == data
        assert b"".join(blobs.open_range(key, 100, 200_000)) == data[100:200_000]
    assert blobs.exists(key) and blobs.size(key) == len(data)
    assert list(blobs.keys()) == [key]  # what can be read can be listed (reindex, recovery)
    assert caplog.text.count(f"reading {key} from the replica") == 2


def test_a_read_failing_midway_goes_on_from_the_replica(tmp_path: Path) -> None:
    primary, _, blobs = _stores(tmp_path)
    data = os.urandom(2 << 20)
    key = keys.new_key()
    blobs.put(key, [data])
    primary.fail_read_after = 12345
    assert b"".join(blobs.open_range(key, 10)) == data[10:]  # no byte twice, none missing


def test_an_object_in_neither_store_is_not_found(tmp_path: Path) -> None:
    primary, replica, blobs = _stores(tmp_path)
    key = keys.new_key()
    with pytest.raises(BlobNotFound):
        blobs.open(key)
    with pytest.raises(BlobNotFound):
        list(blobs.open_range(key, 0))
    blobs.put(key, [b"data"])
    (primary.root / key).unlink()
    replica.fail_read_after = 0
    with pytest.raises(BlobStoreError, match="unreadable in both stores"):
        list(blobs.open_range(key, 0))  # a copy is there but cannot be read: not "not found"


def test_a_failing_replica_fails_the_store_and_leaves_nothing(index: SqlIndex, tmp_path: Path) -> None:
    primary, replica, blobs = _stores(tmp_path)
    ingest, _ = _services(index, blobs)
    replica.fail_commit = True
    with pytest.raises(OutOfResources, match="replica store failed"):
        ingest.ingest([part10()], "t")  # the sender hears a failure and sends again later
    assert index.statistics().instances == 0
    assert list(primary.keys()) == [] and list(replica.keys()) == []
    assert list((primary.root / ".tmp").iterdir()) == [] and list((replica.root / ".tmp").iterdir()) == []


def test_a_failing_primary_commit_leaves_no_replica_copy(tmp_path: Path) -> None:
    primary, replica, blobs = _stores(tmp_path)
    primary.fail_commit = True
    with pytest.raises(BlobStoreError):
        blobs.put(keys.new_key(), [b"data"])
    assert list(replica.keys()) == [] and list((replica.root / ".tmp").iterdir()) == []


def test_deletes_reach_both_stores_and_are_retried_when_the_replica_fails(
    index: SqlIndex, tmp_path: Path
) -> None:
    primary, replica, blobs = _stores(tmp_path)
    ingest, manage = _services(index, blobs)
    kept = ingest.ingest([part10()], "t")
    gone = ingest.ingest([part10()], "t")
    location = index.find_instance(gone.sop_instance_uid)
    assert location is not None
    replica.fail_delete = True
    manage.delete(Level.IMAGE, gone.sop_instance_uid, "t")
    assert [i.sop_instance_uid for i in index.list_instances(ContentFilter(), None, 10)] == [
        kept.sop_instance_uid
    ]
    assert index.pending_blob_deletions(10) == [location.blob_key]  # the replica still holds it
    replica.fail_delete = False
    assert manage.finish_deletions() == 1
    assert not primary.exists(location.blob_key) and not replica.exists(location.blob_key)
    assert index.pending_blob_deletions(10) == []


def test_check_names_the_failing_replica(tmp_path: Path) -> None:
    _, replica, blobs = _stores(tmp_path)
    blobs.check()
    (replica.root / ".tmp").rmdir()  # the replica's disk is gone
    with pytest.raises(BlobStoreError, match="replica"):
        blobs.check()


def test_the_replica_setting_builds_a_replicating_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    assert build_storage(load_settings(data_dir=data)).replica is None
    monkeypatch.setenv("LIGHTBOX_STORAGE_REPLICA_URL", f"file://{tmp_path / 'replica'}")
    storage = build_storage(load_settings(data_dir=data))
    assert isinstance(storage.blobs, ReplicatedBlobStore)
    assert (storage.blobs.primary, storage.blobs.replica) == (storage.primary, storage.replica)
    assert isinstance(storage.replica, FileSystemBlobStore) and storage.replica.root == tmp_path / "replica"
    monkeypatch.setenv("LIGHTBOX_STORAGE_REPLICA_URL", f"file://{data / 'objects'}/")
    with pytest.raises(ConfigurationError, match=r"names a store of storage\.url"):
        build_storage(load_settings(data_dir=data))
    monkeypatch.setenv("LIGHTBOX_STORAGE_REPLICA_URL", "ftp://backup/objects")
    with pytest.raises(ConfigurationError, match=r"storage\.replica_url"):
        load_settings(data_dir=data)


def test_objects_moved_between_tiers_are_replicated_under_their_tier(
    index: SqlIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, replica = tmp_path / "data", tmp_path / "replica"
    monkeypatch.setenv("LIGHTBOX_STORAGE_REPLICA_URL", f"file://{replica}")
    monkeypatch.setenv("LIGHTBOX_STORAGE_TIERS", json.dumps({"cold": f"file://{tmp_path / 'cold'}"}))
    settings = load_settings(data_dir=data)
    settings.storage.lifecycle = [LifecycleRule(to="cold", older_than_days=0)]
    storage = build_storage(settings)
    ingest, manage = _services(index, cast(ReplicatedBlobStore, storage.blobs))
    stored = ingest.ingest([part10()], "t")
    moved = LifecycleService(index, storage.blobs, manage, settings.storage).apply()
    location = index.find_instance(stored.sop_instance_uid)
    assert moved.moved == {"cold": 1} and location is not None and location.blob_key.startswith("@cold/")
    # The replica keeps the tier's objects in a folder of its own, under the key the archive knows
    copy = replica / location.blob_key
    assert copy.read_bytes() == (tmp_path / "cold" / location.blob_key.removeprefix("@cold/")).read_bytes()
    (tmp_path / "cold" / location.blob_key.removeprefix("@cold/")).unlink()
    with storage.blobs.open(location.blob_key) as f:  # read from the replica's cold folder
        assert len(f.read()) == location.size
    report = VerifyService(index, storage.primary, storage.replica).verify(repair=True)
    assert [(p.store, p.blob_key, p.repaired) for p in report.problems] == [
        ("primary", location.blob_key, True)
    ]


def test_a_retrieved_object_failing_its_checksum_is_read_from_the_replica(
    index: SqlIndex, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    primary, replica, blobs, data, location = _one_stored(index, tmp_path)
    damaged = bytearray(data)
    damaged[-1] ^= 0xFF  # bit rot in the primary's copy: same size, other bytes
    (primary.root / location.blob_key).write_bytes(bytes(damaged))
    retrieve = RetrieveService(index, blobs, EventBus())
    with caplog.at_level(logging.ERROR, "lightbox.storage.replicated"), retrieve.open(location) as f:
        assert f.read() == data
    assert "read from the replica" in caplog.text
    (replica.root / location.blob_key).write_bytes(bytes(damaged))  # and in the replica too: no sound copy
    with pytest.raises(BlobStoreError, match="no sound copy"):
        retrieve.open(location)
    (primary.root / location.blob_key).unlink()
    (replica.root / location.blob_key).unlink()
    with pytest.raises(NotFound):  # in neither store: the retrieval's own "not found"
        retrieve.open(location)
