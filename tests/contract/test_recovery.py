"""Start-up recovery and reindex: the stored objects are the source of truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lightbox.index.base import DuplicatePolicy
from lightbox.index.sql import SqlIndex
from lightbox.services.events import EventBus
from lightbox.services.ingest import IngestService
from lightbox.services.manage import ManageService
from lightbox.storage import keys
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.dicom import make_dataset, part10, to_part10


def _services(index: SqlIndex, blobs: FileSystemBlobStore) -> tuple[IngestService, ManageService]:
    ingest = IngestService(index, blobs, EventBus(), DuplicatePolicy.REPLACE)
    return ingest, ManageService(index, blobs, ingest)


def test_object_durable_but_unindexed_is_indexed_at_start(
    index: SqlIndex, blob_store: FileSystemBlobStore
) -> None:
    ingest, manage = _services(index, blob_store)
    ingest.ingest([part10()], "t")
    # A crash after the object became durable and before its index row committed:
    orphan = part10(PatientID="P-orphan")
    key = keys.new_key()
    blob_store.put(key, [orphan])
    report = manage.recover()
    assert report.indexed == 1 and not report.failed
    assert index.indexed_blob_keys([key]) == {key}
    assert index.statistics().instances == 2
    assert manage.recover().indexed == 0  # idempotent


def test_fresh_index_over_existing_objects_indexes_them_all(
    index: SqlIndex, blob_store: FileSystemBlobStore
) -> None:
    for hours_ago in (30, 10, 0):  # objects from several partitions, none indexed
        when = datetime.now(UTC) - timedelta(hours=hours_ago)
        blob_store.put(keys.new_key(when), [part10()])
    _, manage = _services(index, blob_store)
    assert manage.recover().indexed == 3


def test_older_orphan_version_is_dropped(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    """A crash between indexing a replacement and deleting the replaced object leaves the old one behind."""
    ingest, manage = _services(index, blob_store)
    ds = make_dataset()
    old = to_part10(ds)
    ds.StudyDescription = "corrected"
    new = to_part10(ds)
    ingest.ingest([new], "t")
    old_key = keys.new_key(datetime.now(UTC) - timedelta(minutes=5))
    blob_store.put(old_key, [old])
    manage.recover()
    location = index.find_instance(str(ds.SOPInstanceUID))
    assert location is not None
    with blob_store.open(location.blob_key) as f:
        assert f.read() == new
    assert not blob_store.exists(old_key)


def test_unreadable_object_is_reported_not_fatal(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    _, manage = _services(index, blob_store)
    bad_key = keys.new_key()
    blob_store.put(bad_key, [b"garbage" * 100])
    blob_store.put(keys.new_key(), [part10()])
    report = manage.recover()
    assert report.indexed == 1
    assert [k for k, _ in report.failed] == [bad_key]


def test_reindex_rebuilds_the_same_index(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    ingest, manage = _services(index, blob_store)
    study = make_dataset().StudyInstanceUID
    for i in range(6):
        ingest.ingest([part10(StudyInstanceUID=study, PatientID=f"P{i % 2}", InstanceNumber=i)], "t")
    manage.add_remote_ae("PEER", "127.0.0.1", 104)
    before = index.statistics()
    report = manage.reindex(workers=3)
    assert report.indexed == 6 and not report.failed
    assert index.statistics() == before
    assert [ae.ae_title for ae in manage.list_remote_aes()] == ["PEER"]
