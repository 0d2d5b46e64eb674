"""Writing an ingest session behind the caller: order kept, failures reported at finish, memory bounded."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

from lightbox.domain.errors import DataSetMismatch, InvalidObject, OutOfResources
from lightbox.index.base import StoreOutcome
from lightbox.index.sql import SqlIndex
from lightbox.services import write_behind
from lightbox.services.events import EventBus
from lightbox.services.ingest import (
    DatasetOnly,
    EarlyHeader,
    IngestService,
    IngestSession,
    read_early_header,
)
from lightbox.services.write_behind import WriteBehind
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.dicom import data_set_bytes, part10


@pytest.fixture
def service(index: SqlIndex, blob_store: FileSystemBlobStore) -> IngestService:
    return IngestService(index, blob_store, EventBus())


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


def _image(side: int) -> bytes:
    return part10(Rows=side, Columns=side, PixelData=bytes(range(256)) * (side * side * 2 // 256))


def _fragments(data: bytes, size: int) -> list[memoryview]:
    return [memoryview(data)[i : i + size] for i in range(0, len(data), size)]


def _nothing_left(blobs: FileSystemBlobStore) -> bool:
    return not any((blobs.root / ".tmp").iterdir()) and not list(blobs.keys())


def test_many_small_fragments_arrive_in_order(service: IngestService, executor: ThreadPoolExecutor) -> None:
    data = _image(256)  # about 130 kB: several batches
    writer = WriteBehind(lambda: service.begin("t"), executor)
    for fragment in _fragments(data, 1000):
        writer.write(fragment)
    result = executor.submit(writer.finish).result()
    assert result.outcome is StoreOutcome.STORED
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_abort_leaves_nothing(
    service: IngestService, blob_store: FileSystemBlobStore, executor: ThreadPoolExecutor
) -> None:
    data = _image(256)
    writer = WriteBehind(lambda: service.begin("t"), executor)
    for fragment in _fragments(data, 16384)[:3]:
        writer.write(fragment)
    writer.abort()
    executor.shutdown(wait=True)  # the drain task has stopped
    assert _nothing_left(blob_store)


def test_a_session_that_cannot_open_is_reported_at_finish(executor: ThreadPoolExecutor) -> None:
    def refuse() -> IngestSession:
        raise OutOfResources("cannot store now: no space left in the blob store")

    writer = WriteBehind(refuse, executor)
    writer.write(b"\x00" * 1000)
    with pytest.raises(OutOfResources):
        executor.submit(writer.finish).result()


@pytest.mark.parametrize("how", ["finish", "complete"])
def test_a_bad_object_is_refused_at_finish(
    service: IngestService, blob_store: FileSystemBlobStore, executor: ThreadPoolExecutor, how: str
) -> None:
    writer = WriteBehind(lambda: service.begin("t"), executor)
    writer.write(part10()[:500])  # cut short
    finished = executor.submit(writer.finish) if how == "finish" else writer.complete()
    with pytest.raises(InvalidObject):
        finished.result(timeout=30)
    assert _nothing_left(blob_store)


def test_memory_is_bounded_when_the_disk_is_slow(
    service: IngestService, executor: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the bound, ``write`` waits for the disk instead of queueing more."""
    monkeypatch.setattr(write_behind, "_BATCH", 1000)
    monkeypatch.setattr(write_behind, "_MAX_QUEUED", 4000)
    gate = threading.Event()
    most_queued = 0
    data = _image(128)

    def slow_session() -> IngestSession:
        session = service.begin("t")
        original = session.write

        def write(chunk: bytes | bytearray | memoryview) -> None:
            gate.wait()
            original(chunk)

        session.write = write  # type: ignore[method-assign]
        return session

    writer = WriteBehind(slow_session, executor)

    def feed() -> None:
        nonlocal most_queued
        for fragment in _fragments(data, 1000):
            writer.write(fragment)
            most_queued = max(most_queued, writer._queued)

    feeder = threading.Thread(target=feed)
    feeder.start()
    feeder.join(timeout=0.5)
    assert feeder.is_alive()  # blocked: the bound is reached and nothing drains
    gate.set()
    feeder.join(timeout=10)
    assert not feeder.is_alive()
    assert most_queued <= 4000 + 1000
    assert executor.submit(writer.finish).result().sha256 == hashlib.sha256(data).hexdigest()


def _dimse_stream(side: int) -> tuple[bytes, DatasetOnly, bytes]:
    """A C-STORE's bare data set, what ``begin`` is told of it, and the Part 10 object it makes."""
    data = _image(side)
    ds = pydicom.dcmread(io.BytesIO(data))
    info = DatasetOnly(ExplicitVRLittleEndian, str(ds.SOPClassUID), str(ds.SOPInstanceUID), "MODALITY")
    return data_set_bytes(data), info, data


def test_header_read_early_from_the_first_bytes(service: IngestService, executor: ThreadPoolExecutor) -> None:
    """An object larger than the head: its header is read while the rest arrives, and that is what is
    indexed."""
    data_set, info, _ = _dimse_stream(400)  # about 320 kB
    seen: list[EarlyHeader | None] = []

    def early(head: bytes) -> EarlyHeader | None:
        seen.append(read_early_header(head, info))
        return seen[-1]

    writer = WriteBehind(lambda: service.begin("dimse:MODALITY", dataset_only=info), executor, early)
    for fragment in _fragments(data_set, 16384):
        writer.write(fragment)
    result = executor.submit(writer.finish).result()
    assert len(seen) == 1 and seen[0] is not None
    assert result.outcome is StoreOutcome.STORED and result.sop_instance_uid == info.sop_instance_uid
    location = service.index.find_instance(info.sop_instance_uid)
    assert location is not None and location.size == result.size


def test_early_header_does_not_excuse_a_cut_object(
    service: IngestService, blob_store: FileSystemBlobStore, executor: ThreadPoolExecutor
) -> None:
    data_set, info, _ = _dimse_stream(400)
    writer = WriteBehind(
        lambda: service.begin("t", dataset_only=info), executor, lambda head: read_early_header(head, info)
    )
    for fragment in _fragments(data_set[:-1000], 16384):  # the pixel data ends early
        writer.write(fragment)
    with pytest.raises(InvalidObject):
        executor.submit(writer.finish).result()
    assert _nothing_left(blob_store)


def test_early_header_still_checked_against_the_command(
    service: IngestService, blob_store: FileSystemBlobStore, executor: ThreadPoolExecutor
) -> None:
    data_set, info, _ = _dimse_stream(400)
    announced = DatasetOnly(info.transfer_syntax_uid, MRImageStorage, info.sop_instance_uid)
    writer = WriteBehind(
        lambda: service.begin("t", dataset_only=announced),
        executor,
        lambda head: read_early_header(head, announced),
    )
    for fragment in _fragments(data_set, 16384):
        writer.write(fragment)
    with pytest.raises(DataSetMismatch):
        executor.submit(writer.finish).result()
    assert _nothing_left(blob_store)


@pytest.mark.parametrize("size", [1000, 200_000])  # one batch, still being written; many batches
def test_complete_finishes_on_the_draining_thread(
    service: IngestService, executor: ThreadPoolExecutor, size: int
) -> None:
    data = _image(64 if size == 1000 else 320)
    writer = WriteBehind(lambda: service.begin("t"), executor)
    for fragment in _fragments(data, 16384):
        writer.write(fragment)
    result = writer.complete().result(timeout=30)
    assert result.outcome is StoreOutcome.STORED
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_complete_on_a_full_pool_does_not_deadlock(service: IngestService) -> None:
    """Every worker busy finishing: each object is finished by a thread already on it, none waits for
    a job queued behind it."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        writers = [WriteBehind(lambda: service.begin("t"), pool) for _ in range(3)]
        for i, writer in enumerate(writers):
            for fragment in _fragments(part10(InstanceNumber=i), 4096):
                writer.write(fragment)
        results = [writer.complete() for writer in writers]
        assert all(r.result(timeout=30).outcome is StoreOutcome.STORED for r in results)
