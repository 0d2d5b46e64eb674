"""The ingest service on every Index backend: outcomes, policies, rejections, counters, concurrency."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from lightbox.domain import status
from lightbox.domain.errors import DataSetMismatch, DuplicateRejected, InvalidObject, OutOfResources
from lightbox.domain.levels import Level
from lightbox.formats import part10 as parser
from lightbox.index.attributes import extract_rows
from lightbox.index.base import DuplicatePolicy, NewInstance, StoreOutcome
from lightbox.index.sql import SqlIndex
from lightbox.services.events import EventBus, InstanceRejected, InstanceStored
from lightbox.services.ingest import DatasetOnly, IngestService
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.dicom import make_dataset, part10, to_part10


def _service(
    index: SqlIndex,
    blobs: FileSystemBlobStore,
    policy: DuplicatePolicy = DuplicatePolicy.REPLACE,
    events: EventBus | None = None,
) -> IngestService:
    return IngestService(index, blobs, events or EventBus(), policy)


def _nothing_pending(blobs: FileSystemBlobStore) -> bool:
    return not any((blobs.root / ".tmp").iterdir())


def test_store_and_read_back(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    data = part10()
    result = _service(index, blob_store).ingest([data[:100], data[100:]], "test")
    assert result.outcome is StoreOutcome.STORED
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.transfer_syntax_uid == ExplicitVRLittleEndian
    location = index.find_instance(result.sop_instance_uid)
    assert location is not None and location.sha256 == result.sha256
    with blob_store.open(location.blob_key) as f:
        assert f.read() == data
    assert _nothing_pending(blob_store)


def test_identical_object_twice_is_one_object(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    data = part10()
    service = _service(index, blob_store)
    service.ingest([data], "a")
    assert service.ingest([data], "b").outcome is StoreOutcome.ALREADY_PRESENT
    assert len(list(blob_store.keys())) == 1
    assert index.statistics().instances == 1


def _two_versions() -> tuple[bytes, bytes, str]:
    ds = make_dataset()
    first = to_part10(ds)
    ds.StudyDescription = "CT HEAD corrected"
    return first, to_part10(ds), str(ds.SOPInstanceUID)


def test_replace_policy_keeps_newest_and_records_it(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    first, second, uid = _two_versions()
    service = _service(index, blob_store, DuplicatePolicy.REPLACE)
    service.ingest([first], "a")
    assert service.ingest([second], "b").outcome is StoreOutcome.REPLACED
    stored = list(blob_store.keys())
    assert len(stored) == 1
    with blob_store.open(stored[0]) as f:
        assert f.read() == second
    stats = index.statistics()
    assert (stats.studies, stats.series, stats.instances, stats.size_bytes) == (1, 1, 1, len(second))
    from sqlalchemy import select

    from lightbox.index.models import instance_replacements

    rows = index.read(lambda conn: list(conn.execute(select(instance_replacements))))
    assert [(r.sop_instance_uid, r.new_sha256, r.source) for r in rows] == [
        (uid, hashlib.sha256(second).hexdigest(), "b")
    ]


def test_keep_policy_keeps_the_stored_object(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    first, second, uid = _two_versions()
    service = _service(index, blob_store, DuplicatePolicy.KEEP)
    service.ingest([first], "a")
    assert service.ingest([second], "b").outcome is StoreOutcome.KEPT_EXISTING
    location = index.find_instance(uid)
    assert location is not None and location.sha256 == hashlib.sha256(first).hexdigest()
    assert len(list(blob_store.keys())) == 1


def test_reject_policy_refuses_with_a_status(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    first, second, _ = _two_versions()
    service = _service(index, blob_store, DuplicatePolicy.REJECT)
    service.ingest([first], "a")
    with pytest.raises(DuplicateRejected) as info:
        service.ingest([second], "b")
    assert info.value.dicom_status == status.DUPLICATE_SOP_INSTANCE and info.value.http_status == 409
    assert len(list(blob_store.keys())) == 1
    assert _nothing_pending(blob_store)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty object"),
        (b"this is not DICOM at all" * 10, "not a DICOM Part 10 object"),
        (part10(SOPInstanceUID=None), "SOPInstanceUID is missing"),
        (part10(StudyInstanceUID=None), "StudyInstanceUID is missing"),
        (part10(SeriesInstanceUID="1.2.03.4"), "is not a valid UID"),
        (part10(SOPClassUID="1.2.840.abc"), "is not a valid UID"),
        (part10(StudyInstanceUID="1." + "2" * 70), "is not a valid UID"),
        (part10(SOPInstanceUID="../../../etc/passwd"), "is not a valid UID"),
        (part10()[:200], "DICOM"),
        (part10()[:-5], "truncated object"),
        (part10()[: -32 - 12], "truncated object: an image"),  # cut just before Pixel Data
    ],
    ids=[
        "empty",
        "garbage",
        "no-sop-uid",
        "no-study-uid",
        "leading-zero",
        "letters",
        "too-long",
        "traversal",
        "truncated",
        "cut-in-pixels",
        "cut-before-pixels",
    ],
)
def test_bad_objects_are_rejected_and_leave_nothing(
    index: SqlIndex, blob_store: FileSystemBlobStore, data: bytes, message: str
) -> None:
    events = EventBus()
    rejected: list[InstanceRejected] = []
    events.subscribe(InstanceRejected, rejected.append)
    with pytest.raises(InvalidObject) as info:
        _service(index, blob_store, events=events).ingest([data], "test")
    assert message in info.value.message
    assert info.value.dicom_status == status.CANNOT_UNDERSTAND and info.value.http_status == 400
    assert list(blob_store.keys()) == [] and _nothing_pending(blob_store)
    assert index.statistics().instances == 0
    assert len(rejected) == 1 and rejected[0].dicom_status == status.CANNOT_UNDERSTAND


def test_dataset_only_stream_gets_file_meta(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    """DIMSE carries a bare data set; the stored object must be a Part 10 file."""
    from pydicom import dcmread
    from pydicom.filewriter import dcmwrite

    ds = make_dataset()
    buf = io.BytesIO()
    dcmwrite(buf, ds, implicit_vr=False, little_endian=True)  # data set only, no preamble or meta
    info = DatasetOnly(ExplicitVRLittleEndian, CTImageStorage, str(ds.SOPInstanceUID), "MODALITY1")
    session = _service(index, blob_store).begin("dimse:MODALITY1", dataset_only=info)
    session.write(buf.getvalue())
    result = session.finish()
    location = index.find_instance(result.sop_instance_uid)
    assert location is not None
    with blob_store.open(location.blob_key) as f:
        stored = dcmread(f)
    assert stored.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert stored.file_meta.SourceApplicationEntityTitle == "MODALITY1"
    assert stored.SOPInstanceUID == ds.SOPInstanceUID


def test_announced_uids_must_match(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    data = part10()
    session = _service(index, blob_store).begin("dimse:X", expected_sop_class_uid=MRImageStorage)
    session.write(data)
    with pytest.raises(DataSetMismatch) as info:
        session.finish()
    assert info.value.dicom_status == status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    session = _service(index, blob_store).begin("dimse:X", expected_sop_instance_uid=generate_uid())
    session.write(data)
    with pytest.raises(DataSetMismatch):
        session.finish()
    assert list(blob_store.keys()) == [] and _nothing_pending(blob_store)


def test_counters_and_modalities(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    service = _service(index, blob_store)
    study = generate_uid()
    ct, mr = generate_uid(), generate_uid()
    sizes = 0
    for series_uid, modality, n in ((ct, "CT", 3), (mr, "MR", 2)):
        for _ in range(n):
            sizes += service.ingest(
                [part10(StudyInstanceUID=study, SeriesInstanceUID=series_uid, Modality=modality)], "t"
            ).size
    from sqlalchemy import select

    from lightbox.index.models import patients, series, studies

    def read(conn):  # type: ignore[no-untyped-def]
        s = conn.execute(select(studies)).one()
        p = conn.execute(select(patients)).one()
        ser = {r.series_instance_uid: r.num_instances for r in conn.execute(select(series))}
        return s, p, ser

    s, p, ser = index.read(read)
    assert (s.num_series, s.num_instances, s.size_bytes, s.modalities_in_study) == (2, 5, sizes, "CT\\MR")
    assert (p.num_studies, p.num_series, p.num_instances) == (1, 2, 5)
    assert ser == {ct: 3, mr: 2}


def test_concurrent_stores_into_one_study(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    service = _service(index, blob_store)
    study = generate_uid()
    series_uids = [generate_uid() for _ in range(4)]
    objects = [
        part10(StudyInstanceUID=study, SeriesInstanceUID=series_uids[i % 4], PatientID="P-conc")
        for i in range(40)
    ]
    duplicate = objects[0]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda d: service.ingest([d], "t"), [*objects, duplicate, duplicate]))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(StoreOutcome.STORED) == 40
    assert outcomes.count(StoreOutcome.ALREADY_PRESENT) == 2
    stats = index.statistics()
    assert (stats.patients, stats.studies, stats.series, stats.instances) == (1, 1, 4, 40)
    assert len(list(blob_store.keys())) == 40 and _nothing_pending(blob_store)
    located = list(index.locate(Level.STUDY, {"StudyInstanceUID": [study]}))
    assert len(located) == 40


def test_stored_event_published(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    events = EventBus()
    seen: list[InstanceStored] = []
    events.subscribe(InstanceStored, seen.append)
    result = _service(index, blob_store, events=events).ingest([part10()], "import:x")
    assert [(e.sop_instance_uid, str(e.source), e.outcome) for e in seen] == [
        (result.sop_instance_uid, "import:x", "stored")
    ]


def test_failing_index_leaves_no_object(tmp_path: Path, blob_store: FileSystemBlobStore) -> None:
    """An index that cannot commit must not leave an unacknowledged object behind."""
    index = SqlIndex(f"sqlite:///{tmp_path / 'never-migrated.db'}")  # no tables: every write fails
    with pytest.raises(OutOfResources) as info:
        _service(index, blob_store).ingest([part10()], "t")
    assert info.value.dicom_status == status.OUT_OF_RESOURCES
    assert list(blob_store.keys()) == [] and _nothing_pending(blob_store)
    index.close()


def test_header_beyond_the_bytes_kept_in_memory(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    """A header longer than the copy kept in memory is read on from the pending blob."""
    ds = make_dataset()
    ds.ImageComments = "x" * 10_000
    ds.add_new(0x00091010, "LO", "private")
    ds.add_new(0x00091011, "OB", b"\x01" * 300_000)  # a large value before the pixel data
    data = to_part10(ds)
    result = _service(index, blob_store).ingest(
        [data[i : i + 65536] for i in range(0, len(data), 65536)], "t"
    )
    assert result.outcome is StoreOutcome.STORED
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_failing_blob_commit_rolls_the_index_back(
    index: SqlIndex, blob_store: FileSystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blob's fsync runs beside the index statements: when it fails, the index commits nothing."""
    from lightbox.storage import filesystem
    from lightbox.storage.base import BlobStoreError

    calls: list[Path] = []
    original = filesystem.fsync_dir

    def failing_fsync_dir(path: Path) -> None:
        calls.append(path)
        if len(calls) == 1:  # the commit's; the clean-up that follows may sync
            raise BlobStoreError(5, "I/O error")
        original(path)

    monkeypatch.setattr(filesystem, "fsync_dir", failing_fsync_dir)
    with pytest.raises(OutOfResources):
        _service(index, blob_store).ingest([part10()], "t")
    assert index.statistics().instances == 0
    assert list(blob_store.keys()) == [] and _nothing_pending(blob_store)


def test_before_commit_runs_inside_the_transaction(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    """The index calls ``before_commit`` after its statements; raising there leaves no row."""
    service = _service(index, blob_store)
    first = service.ingest([part10()], "t")
    calls: list[int] = []

    class Refused(Exception):
        pass

    def refuse() -> None:
        calls.append(index.statistics().instances)  # another connection: the new row is not visible yet
        raise Refused

    header = parser.parse(io.BytesIO(part10()))
    new = NewInstance(
        extract_rows(header.dataset),
        "2026/01/01/00/00000000000000000001-0000000000000001.dcm",
        1,
        "0" * 64,
        header.transfer_syntax_uid,
        datetime.now(UTC),
        "t",
    )
    with pytest.raises(Refused):
        index.store_instance(new, DuplicatePolicy.REPLACE, before_commit=refuse)
    assert calls == [1]
    assert index.statistics().instances == 1
    assert index.find_instance(first.sop_instance_uid) is not None
