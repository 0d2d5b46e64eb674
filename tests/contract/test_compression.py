"""Lossless compression on both index engines: the stored object is replaced by its re-encoding only when
that decodes to the very same pixels; both checksums are kept; the original goes once its readers are done;
crashes and races leave one whole instance and nothing half-done."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEGLSLossless, generate_uid

from lightbox.domain.compression import Codec
from lightbox.formats import lossless
from lightbox.index.base import StoreOutcome
from lightbox.index.sql import SqlIndex
from lightbox.services.compression import ACTOR, CompressionService, Compressor, IngestActivity
from lightbox.services.events import EventBus, InstanceReplaced
from lightbox.services.ingest import IngestService
from lightbox.services.manage import ManageService
from lightbox.storage import keys
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.dicom import make_dataset, to_part10


def ct_image(rows: int = 64, signed: bool = False, **attrs: object) -> bytes:
    """A CT image with smooth, compressible pixels."""
    y, x = np.mgrid[0:rows, 0:rows]
    pixels = ((x * 37 + y * 11) % 2048 - (1024 if signed else 0)).astype(np.int16 if signed else np.uint16)
    ds = make_dataset(
        Rows=rows,
        Columns=rows,
        PixelRepresentation=int(signed),
        PixelData=pixels.tobytes(),
        **attrs,
    )
    return to_part10(ds)


def _services(
    index: SqlIndex, blobs: FileSystemBlobStore, codec: Codec = Codec.JPEG_LS
) -> tuple[IngestService, CompressionService, EventBus]:
    events = EventBus()
    ingest = IngestService(index, blobs, events)
    return ingest, CompressionService(index, blobs, ingest, codec), events


def _pixels(data: bytes) -> np.ndarray:
    return pydicom.dcmread(io.BytesIO(data)).pixel_array


@pytest.mark.parametrize("codec", [Codec.JPEG_LS, Codec.J2K, Codec.HTJ2K])
def test_an_uncompressed_object_is_replaced_by_its_lossless_encoding(
    index: SqlIndex, blob_store: FileSystemBlobStore, codec: Codec
) -> None:
    ingest, compression, events = _services(index, blob_store, codec)
    replaced: list[InstanceReplaced] = []
    events.subscribe(InstanceReplaced, replaced.append)
    original = ct_image(signed=codec is Codec.J2K)
    stored = ingest.ingest([original], "test")
    report = compression.compress_all()
    assert (report.compressed, report.kept) == (1, 0)
    assert report.bytes_after < report.bytes_before == len(original)
    location = index.find_instance(stored.sop_instance_uid)
    assert location is not None
    assert location.transfer_syntax_uid == lossless.TRANSFER_SYNTAX[codec]
    assert location.sha256 != stored.sha256 and location.size == report.bytes_after
    with blob_store.open(location.blob_key) as f:
        compressed = f.read()
    assert np.array_equal(_pixels(compressed), _pixels(original))
    # both checksums are kept: the replacement record and its event name the original's and the new one's
    assert [(r.old_sha256, r.new_sha256) for r in replaced] == [(stored.sha256, location.sha256)]
    # the original stays for readers that located it a moment ago, as a pending deletion
    assert index.pending_blob_deletions(10) == []
    assert len(index.pending_blob_deletions(10, among=list(blob_store.keys()))) == 1
    assert compression.compress_all().compressed == 0  # nothing is compressed twice


def test_what_cannot_be_compressed_exactly_is_kept_with_the_reason(
    index: SqlIndex, blob_store: FileSystemBlobStore
) -> None:
    ingest, compression, _ = _services(index, blob_store)
    no_pixels = ingest.ingest([to_part10(make_dataset(PixelData=None, Rows=None, Columns=None))], "t")
    # a 12-bit image whose unused high bits hold something (an old-style overlay): decoding gives the 12
    # bits only, so the re-encoding is not the same pixel data and the original stays
    pixels = np.full((64, 64), 0xF123, dtype=np.uint16)
    overlay = ingest.ingest([to_part10(make_dataset(Rows=64, Columns=64, PixelData=pixels.tobytes()))], "t")
    report = compression.compress_all()
    assert (report.compressed, report.kept) == (0, 2)
    for result in (no_pixels, overlay):
        location = index.find_instance(result.sop_instance_uid)
        assert location is not None and location.sha256 == result.sha256  # untouched
    assert compression.compress_all().kept == 0  # the reasons are recorded: not tried again


def test_an_instance_replaced_meanwhile_keeps_the_newer_object(
    index: SqlIndex, blob_store: FileSystemBlobStore
) -> None:
    ingest, _, _ = _services(index, blob_store)
    sop = generate_uid()
    first = ingest.ingest([ct_image(SOPInstanceUID=sop, InstanceNumber=1)], "t")
    candidate = index.compression_candidates(lossless.UNCOMPRESSED, 0, 10)[0]
    compressed = lossless.compress(ct_image(SOPInstanceUID=sop, InstanceNumber=1), Codec.JPEG_LS)
    second = ingest.ingest([ct_image(SOPInstanceUID=sop, InstanceNumber=2)], "t")  # a newer version arrives
    assert second.sha256 != first.sha256
    outcome = ingest.store_reencoding(compressed, candidate, ACTOR, timedelta(hours=1))
    assert outcome is StoreOutcome.KEPT_EXISTING
    location = index.find_instance(sop)
    assert location is not None and location.sha256 == second.sha256
    assert blob_store.exists(location.blob_key)
    assert sorted(blob_store.keys()) == [location.blob_key]  # the late re-encoding is gone
    assert index.pending_blob_deletions(10, among=[]) == []


def test_a_crash_before_the_index_takes_the_reencoding_leaves_the_original(
    index: SqlIndex, blob_store: FileSystemBlobStore
) -> None:
    ingest, _, events = _services(index, blob_store)
    original = ct_image()
    stored = ingest.ingest([original], "t")
    # What the compressor does before its index transaction, then a crash: the re-encoding is written
    key = keys.new_key()
    written_at = datetime.now(UTC) - timedelta(hours=2)  # long enough ago: its writer is gone
    index.note_pending_deletions(stored.sop_instance_uid, [key], not_before=written_at + timedelta(hours=1))
    blob_store.put(key, [lossless.compress(original, Codec.JPEG_LS)])
    ManageService(index, blob_store, ingest, events).recover()
    assert not blob_store.exists(key)  # removed, and never indexed as a newer version of the instance
    location = index.find_instance(stored.sop_instance_uid)
    assert location is not None and location.sha256 == stored.sha256 and blob_store.exists(location.blob_key)
    assert index.compression_candidates(lossless.UNCOMPRESSED, 0, 10)[0].sha256 == stored.sha256  # again


def test_a_reencoding_being_written_is_neither_indexed_nor_removed_by_recovery(
    index: SqlIndex, blob_store: FileSystemBlobStore
) -> None:
    ingest, _, events = _services(index, blob_store)
    original = ct_image()
    stored = ingest.ingest([original], "t")
    key = keys.new_key()  # another node is writing it right now
    index.note_pending_deletions(
        stored.sop_instance_uid, [key], not_before=datetime.now(UTC) + timedelta(hours=1)
    )
    blob_store.put(key, [lossless.compress(original, Codec.JPEG_LS)])
    ManageService(index, blob_store, ingest, events).recover()
    assert blob_store.exists(key)
    assert index.indexed_blob_keys([key]) == set()


def test_codecs_named_in_the_settings_have_transfer_syntaxes() -> None:
    assert lossless.TRANSFER_SYNTAX[Codec.JPEG_LS] == JPEGLSLossless
    assert set(lossless.TRANSFER_SYNTAX) == set(Codec) - {Codec.NONE}


def test_the_compressor_gives_way_to_ingest_without_starving(
    index: SqlIndex, blob_store: FileSystemBlobStore
) -> None:
    ingest, compression, events = _services(index, blob_store)
    activity = IngestActivity(events, quiet_seconds=0.2)
    assert not activity.busy()
    ingest.ingest([ct_image()], "t")  # an object arrives: the compressor waits a while
    assert activity.busy()
    time.sleep(0.25)
    assert not activity.busy()
    always_busy = IngestActivity(events, quiet_seconds=3600)
    ingest.ingest([ct_image()], "t")
    compressor = Compressor(compression, idle_seconds=0.05, activity=always_busy, max_yield_seconds=0.1)
    compressor.start()
    try:
        deadline = time.monotonic() + 30
        while compressor.total.compressed < 2:  # a steady stream still gets compressed
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        compressor.close()
