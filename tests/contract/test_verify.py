"""The scrub on both index engines: every copy of every indexed object is read back and checked against the
size and SHA-256 recorded at ingest; missing, damaged and orphaned objects are named; repair restores a bad
copy from a good one in either direction, and says what it cannot repair."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from lightbox.index.sql import SqlIndex
from lightbox.services.events import EventBus
from lightbox.services.ingest import IngestService
from lightbox.services.verify import Fault, VerifyService
from lightbox.storage import keys
from lightbox.storage.base import BlobStore
from lightbox.storage.filesystem import FileSystemBlobStore
from lightbox.storage.replicated import ReplicatedBlobStore
from tests.contract.test_blob_store import s3_store
from tests.support.dicom import part10
from tests.support.s3 import S3Server


def _store_three(index: SqlIndex, blobs: BlobStore) -> list[tuple[str, str]]:
    """(SOP Instance UID, blob key) of three stored instances."""
    ingest = IngestService(index, blobs, EventBus())
    stored = []
    for n in range(3):
        uid = ingest.ingest([part10(InstanceNumber=n)], "t").sop_instance_uid
        location = index.find_instance(uid)
        assert location is not None
        stored.append((uid, location.blob_key))
    ingest.close()
    return stored


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one bit flip's worth: the size stays, the checksum does not
    path.write_bytes(bytes(data))


def _replicated(tmp_path: Path) -> tuple[FileSystemBlobStore, FileSystemBlobStore, ReplicatedBlobStore]:
    primary, replica = FileSystemBlobStore(tmp_path / "objects"), FileSystemBlobStore(tmp_path / "replica")
    return primary, replica, ReplicatedBlobStore(primary, replica)


def test_a_sound_archive_has_no_problems(index: SqlIndex, tmp_path: Path) -> None:
    primary, replica, blobs = _replicated(tmp_path)
    _store_three(index, blobs)
    report = VerifyService(index, primary, replica).verify()
    assert report.problems == [] and report.objects == 3
    assert report.bytes_read == 2 * index.statistics().size_bytes  # both copies read through
    assert report.mb_per_second > 0


def test_missing_and_damaged_objects_are_named(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    (damaged_uid, damaged), (missing_uid, missing), _ = _store_three(index, blob_store)
    _damage(blob_store.root / damaged)
    (blob_store.root / missing).unlink()
    truncated = blob_store.root / _store_three(index, blob_store)[0][1]
    truncated.write_bytes(truncated.read_bytes()[:100])
    report = VerifyService(index, blob_store).verify()
    found = {(p.blob_key, p.sop_instance_uid, p.fault) for p in report.problems}
    assert (damaged, damaged_uid, Fault.DAMAGED) in found and (missing, missing_uid, Fault.MISSING) in found
    assert any(p.fault is Fault.DAMAGED and "100 bytes where" in p.detail for p in report.problems)
    assert len(report.problems) == 3 and report.unresolved == report.problems
    assert report.objects == 6


def test_repair_restores_the_primary_from_the_replica_and_the_replica_from_the_primary(
    index: SqlIndex, tmp_path: Path
) -> None:
    primary, replica, blobs = _replicated(tmp_path)
    (_, damaged), (_, missing), (_, bad_replica) = _store_three(index, blobs)
    originals = {k: (primary.root / k).read_bytes() for k in (damaged, missing, bad_replica)}
    _damage(primary.root / damaged)
    (primary.root / missing).unlink()
    _damage(replica.root / bad_replica)
    service = VerifyService(index, primary, replica)
    report = service.verify(repair=True)
    assert {(p.store, p.blob_key) for p in report.repaired} == {
        ("primary", damaged),
        ("primary", missing),
        ("replica", bad_replica),
    }
    assert report.unresolved == [] and all(p.repair and "restored from" in p.repair for p in report.problems)
    for key, data in originals.items():
        assert (primary.root / key).read_bytes() == data and (replica.root / key).read_bytes() == data
    assert service.verify().problems == []


def test_without_a_replica_nothing_can_be_repaired(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    (_, damaged), _, _ = _store_three(index, blob_store)
    _damage(blob_store.root / damaged)
    report = VerifyService(index, blob_store).verify(repair=True)
    [problem] = report.unresolved
    assert (
        problem.blob_key == damaged and problem.repair == "not repairable: no replica (storage.replica_url)"
    )


def test_an_object_bad_in_both_stores_is_not_repaired(index: SqlIndex, tmp_path: Path) -> None:
    primary, replica, blobs = _replicated(tmp_path)
    (_, key), _, _ = _store_three(index, blobs)
    _damage(primary.root / key)
    (replica.root / key).unlink()
    report = VerifyService(index, primary, replica).verify(repair=True)
    assert {(p.store, p.fault) for p in report.unresolved} == {
        ("primary", Fault.DAMAGED),
        ("replica", Fault.MISSING),
    }
    assert all(p.repair == "not repairable: no good copy left" for p in report.problems)


def test_orphans_are_objects_no_instance_and_no_pending_deletion_accounts_for(
    index: SqlIndex, tmp_path: Path
) -> None:
    primary, replica, blobs = _replicated(tmp_path)
    [(uid, _), *_] = _store_three(index, blobs)
    old = datetime.now(UTC) - timedelta(days=2)
    orphan, deleting, recent = keys.new_key(old), keys.new_key(old), keys.new_key()
    for key in (orphan, deleting, recent):
        blobs.put(key, [b"not indexed"])
    index.note_pending_deletions(uid, [deleting], not_before=old)
    report = VerifyService(index, primary, replica).verify()
    # ``recent`` may be an object whose index row is about to commit
    assert {(p.store, p.blob_key, p.fault) for p in report.problems} == {
        ("primary", orphan, Fault.ORPHAN),
        ("replica", orphan, Fault.ORPHAN),
    }
    assert all(p.sop_instance_uid is None for p in report.problems)


def test_the_scan_pages_through_the_index_by_blob_key(
    index: SqlIndex, blob_store: FileSystemBlobStore
) -> None:
    stored = _store_three(index, blob_store)
    first = index.stored_objects(None, 2)
    rest = index.stored_objects(first[-1].blob_key, 2)
    assert [(o.sop_instance_uid, o.blob_key) for o in first + rest] == sorted(stored, key=lambda s: s[1])
    assert index.stored_objects(rest[-1].blob_key, 2) == []
    assert all(len(o.sha256) == 64 and o.size > 0 for o in first + rest)


def test_repair_from_a_replica_in_s3(index: SqlIndex, tmp_path: Path, s3: S3Server) -> None:
    primary, replica = FileSystemBlobStore(tmp_path / "objects"), s3_store(s3, tmp_path / "replica")
    (_, damaged), (_, missing), _ = _store_three(index, ReplicatedBlobStore(primary, replica))
    originals = {k: (primary.root / k).read_bytes() for k in (damaged, missing)}
    _damage(primary.root / damaged)
    (primary.root / missing).unlink()
    service = VerifyService(index, primary, replica)
    report = service.verify(repair=True)
    assert {(p.store, p.blob_key, p.repaired) for p in report.problems} == {
        ("primary", damaged, True),
        ("primary", missing, True),
    }
    assert all((primary.root / k).read_bytes() == data for k, data in originals.items())
    assert service.verify().problems == []
