"""The one ingest path: import, C-STORE and STOW-RS all end here.

An ``IngestSession`` takes the object as a stream of chunks and writes them straight to a pending blob (never
holding the object in memory; it keeps a copy of the first bytes, where the header is). ``finish`` then
parses the header (no pixel data), validates it, and indexes it in one transaction that commits only once
the blob is durable: the blob's fsync runs beside the index statements rather than before them, which
halves the time a sender waits for its acknowledgement. Whatever fails, nothing half-written stays behind:
the pending blob is discarded, or a committed blob is deleted when indexing refuses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import struct
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, cast

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from lightbox.domain.actor import Actor, as_actor
from lightbox.domain.errors import DataSetMismatch, InvalidObject, LightboxError, OutOfResources
from lightbox.domain.uids import is_valid_uid
from lightbox.formats import part10
from lightbox.formats.dicom_json import JsonDataset, dataset_to_json
from lightbox.formats.encoding import BULK_VRS
from lightbox.formats.file_meta import encode_file_meta
from lightbox.formats.part10_check import check_complete
from lightbox.index.attributes import BULK_THRESHOLD, InstanceRows, extract_rows, json_text
from lightbox.index.base import CompressionCandidate, DuplicatePolicy, Index, NewInstance, StoreOutcome
from lightbox.services.events import EventBus, InstanceRejected, InstanceReplaced, InstanceStored
from lightbox.storage import keys
from lightbox.storage.base import BlobInfo, BlobStore, BlobStoreError, BlobWriter

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20
# Elements larger than this (outside pixel data) are not read into memory while parsing the header.
_DEFER_SIZE = 1 << 20
# The first bytes of an object stay in memory as they stream past: the header is nearly always in them,
# so parsing it needs no read back from the pending blob.
_HEAD_BYTES = 128 * 1024


@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: StoreOutcome
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    transfer_syntax_uid: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class DatasetOnly:
    """The stream is a bare data set (as DIMSE carries it); the session writes the File Meta Information.

    PS3.10 7.1: the stored object is always a Part 10 file.
    """

    transfer_syntax_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    source_ae_title: str = ""


class IngestSession:
    """One object on its way in. Use ``write`` for each chunk, then ``finish``; or ``abort``."""

    def __init__(
        self,
        service: IngestService,
        writer: BlobWriter,
        source: Actor,
        expected_sop_class_uid: str | None,
        expected_sop_instance_uid: str | None,
    ) -> None:
        self._service = service
        self._writer = writer
        self._source = source
        self._expected_class = expected_sop_class_uid
        self._expected_instance = expected_sop_instance_uid
        self._closed = False
        self._head = bytearray()

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if len(self._head) < _HEAD_BYTES:
            self._head += chunk[: _HEAD_BYTES - len(self._head)]
        self._writer.write(chunk)

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.abort()

    def finish(self, header: EarlyHeader | None = None) -> IngestResult:
        """Make the object durable and indexed. ``header`` is the header already read from the object's
        first bytes (``read_early_header``) while the rest was arriving; then only the rest is checked."""
        if self._closed:
            raise RuntimeError("ingest session already finished")
        self._closed = True
        try:
            return self._service._complete(
                self._writer,
                bytes(self._head),
                self._source,
                self._expected_class,
                self._expected_instance,
                header,
            )
        except LightboxError as exc:
            self._service._rejected(self._source, exc)
            raise
        finally:
            self._writer.abort()  # no-op after a commit; discards the pending blob otherwise

    def __enter__(self) -> IngestSession:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.abort()


class IngestService:
    def __init__(
        self,
        index: Index,
        blobs: BlobStore,
        events: EventBus,
        policy: DuplicatePolicy = DuplicatePolicy.REPLACE,
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.events = events
        self.policy = policy
        # Blob commits (fsync) run here while the ingest thread runs the index statements; a pool of its
        # own, since the ingest thread waits for them.
        self._durability = ThreadPoolExecutor(thread_name_prefix="lightbox-durable")

    def close(self) -> None:
        self._durability.shutdown(wait=True)

    # --- entry points ----------------------------------------------------------------------------------
    def begin(
        self,
        source: Actor | str,
        *,
        dataset_only: DatasetOnly | None = None,
        expected_sop_class_uid: str | None = None,
        expected_sop_instance_uid: str | None = None,
    ) -> IngestSession:
        """Start receiving one object from ``source`` (who sends it, for the index, the logs and audit)."""
        try:
            writer = self.blobs.writer(keys.new_key())
        except BlobStoreError as exc:
            raise OutOfResources(f"cannot store now: {exc.strerror or exc}") from exc
        session = IngestSession(
            self, writer, as_actor(source), expected_sop_class_uid, expected_sop_instance_uid
        )
        if dataset_only is not None:
            session.write(_file_meta(dataset_only))
            session._expected_class = session._expected_class or dataset_only.sop_class_uid
            session._expected_instance = session._expected_instance or dataset_only.sop_instance_uid
        return session

    def ingest(self, chunks: Iterable[bytes], source: Actor | str) -> IngestResult:
        """Ingest a Part 10 object given as chunks."""
        session = self.begin(source)
        try:
            for chunk in chunks:
                session.write(chunk)
        except BaseException:
            session.abort()
            raise
        return session.finish()

    def ingest_file(self, path: Path, source: Actor | str | None = None) -> IngestResult:
        with open(path, "rb") as f:
            return self.ingest(
                iter(lambda: f.read(_READ_CHUNK), b""), source or Actor("import", origin=str(path))
            )

    def store_reencoding(
        self, data: bytes, original: CompressionCandidate, source: Actor, grace: timedelta
    ) -> StoreOutcome:
        """Put ``data``, a re-encoding of the instance ``original`` (same attributes, other bytes), in its
        place: REPLACED, or KEPT_EXISTING when the instance changed or went meanwhile (``data`` is dropped).

        The new object is a pending deletion from before it is written until the index takes it, and the
        object it replaces becomes one in that transaction (removed some minutes later, by the pending
        deletions' housekeeping, so that readers that had located it finish): a crash anywhere leaves one of
        the two as the instance, and the other is removed (``grace`` after the write at the earliest, when no
        writer can still be at work on it).
        """
        sop_uid = original.sop_instance_uid
        key = keys.new_key()
        self.index.note_pending_deletions(sop_uid, [key], not_before=datetime.now(UTC) + grace)
        try:
            with self.blobs.writer(key) as writer:
                for start in range(0, len(data), _READ_CHUNK):
                    writer.write(data[start : start + _READ_CHUNK])
                info = writer.commit()
            parsed = _parse(cast(BinaryIO, io.BytesIO(data)))
            uids = _validate(parsed.dataset, parsed.media_instance_uid, None, sop_uid)
            new = NewInstance(
                extract_rows(parsed.dataset),
                key,
                info.size,
                info.sha256,
                parsed.transfer_syntax_uid,
                original.ingested_at,
                original.source,
                parsed.bulk,
                original.stored_by,
                replaces_sha256=original.sha256,
            )
            stored = self.index.store_instance(new, self.policy)
        except BaseException:
            self._drop_objects([key])
            raise
        if stored.obsolete_blob_key:  # the re-encoding came too late (the replaced object goes later)
            self._drop_objects([stored.obsolete_blob_key])
        if stored.outcome is StoreOutcome.REPLACED:
            patient_id = new.rows.patient.columns.get("patient_id") or ""
            self.events.publish(
                InstanceReplaced(
                    source, sop_uid, original.sha256, info.sha256, uids.study_instance_uid, patient_id
                )
            )
        return stored.outcome

    def _drop_objects(self, blob_keys: list[str]) -> None:
        """Remove objects recorded as pending deletions, then their records; a failure leaves both for
        recovery."""
        try:
            for key in blob_keys:
                self.blobs.delete(key)
        except BlobStoreError as exc:
            log.error("could not remove %s now (recovery will): %s", blob_keys, exc)
            return
        self.index.forget_blob_deletions(blob_keys)

    def index_stored(self, key: str, source: Actor | str = "recovery") -> IngestResult:
        """Index an object already durable in the blob store (start-up recovery, reindex)."""
        with self.blobs.open(key) as f:
            parsed = _parse(f)
        uids = _validate(parsed.dataset, parsed.media_instance_uid, None, None)
        size = self.blobs.size(key)
        digest = hashlib.sha256()
        for chunk in self.blobs.open_range(key, 0):
            digest.update(chunk)
        ingested_at = datetime.fromtimestamp(keys.key_time_us(key) / 1e6, UTC)
        new = NewInstance(
            extract_rows(parsed.dataset),
            key,
            size,
            digest.hexdigest(),
            parsed.transfer_syntax_uid,
            ingested_at,
            str(source),
            parsed.bulk,
            as_actor(source).user,
        )
        return self._index(new, uids, as_actor(source), committed_key=key)

    # --- the work --------------------------------------------------------------------------------------
    def _complete(
        self,
        writer: BlobWriter,
        head: bytes,
        source: Actor,
        expected_class: str | None,
        expected_instance: str | None,
        early: EarlyHeader | None = None,
    ) -> IngestResult:
        if writer.size == 0:
            raise InvalidObject("empty object")
        with _HeadFirst(head, writer.size, writer.open_written) as f:
            if early is not None and not _rest_complete(cast(BinaryIO, f), early):
                early = None  # the full parse says what is wrong, in its words
            if early is None:
                parsed = _parse(cast(BinaryIO, f))  # it has what the parsers use
                rows = None
            else:
                header = early.header
                parsed = _Parsed(
                    header.dataset, header.transfer_syntax_uid, early.media_instance_uid, header.bulk
                )
                rows = early.rows
        uids = _validate(parsed.dataset, parsed.media_instance_uid, expected_class, expected_instance)
        rows = rows or extract_rows(parsed.dataset)
        # No separate look-up for an identical object stored already: the index transaction reads that
        # row anyway, and a look-up of its own cost a fifth of the ingest CPU. A re-sent object is made
        # durable, found identical, and deleted.
        commit = self._durability.submit(writer.commit)
        new = NewInstance(
            rows,
            writer.key,
            writer.size,
            writer.sha256,
            parsed.transfer_syntax_uid,
            datetime.now(UTC),
            str(source),
            parsed.bulk,
            source.user,
        )
        return self._index(new, uids, source, committed_key=writer.key, durable=lambda: _committed(commit))

    def _index(
        self,
        new: NewInstance,
        uids: _Uids,
        source: Actor,
        *,
        committed_key: str,
        durable: Callable[[], object] | None = None,
    ) -> IngestResult:
        """Index ``new``; ``durable`` (when the blob is still being committed) returns once it is durable,
        and the index transaction commits only after that."""
        try:
            stored = self.index.store_instance(new, self.policy, before_commit=durable)
        except BaseException:
            # The index refused it (or failed): the object was never acknowledged, so it must not remain.
            if durable is not None:
                with contextlib.suppress(OutOfResources):
                    durable()  # wait for the commit in flight, whatever came of it, before deleting
            try:
                self.blobs.delete(committed_key)
            except BlobStoreError as exc:  # the refusal is what the sender must hear, not this
                log.error("could not remove refused object %s: %s", committed_key, exc)
            raise
        if stored.obsolete_blob_key:
            self.blobs.delete(stored.obsolete_blob_key)
        result = self._result(stored.outcome, uids, new.transfer_syntax_uid, new.size, new.sha256)
        patient_id = new.rows.patient.columns.get("patient_id") or ""
        if stored.outcome is StoreOutcome.REPLACED:
            log.warning("replaced SOP Instance %s (from %s)", uids.sop_instance_uid, new.source)
            replaced = InstanceReplaced(
                source,
                uids.sop_instance_uid,
                stored.replaced_sha256 or "",
                new.sha256,
                uids.study_instance_uid,
                patient_id,
            )
            self.events.publish(replaced)
        self.events.publish(
            InstanceStored(
                source,
                stored.outcome.value,
                uids.sop_class_uid,
                uids.sop_instance_uid,
                uids.series_instance_uid,
                uids.study_instance_uid,
                new.size,
                patient_id,
            )
        )
        return result

    @staticmethod
    def _result(outcome: StoreOutcome, uids: _Uids, ts: str, size: int, sha: str) -> IngestResult:
        return IngestResult(
            outcome,
            uids.sop_class_uid,
            uids.sop_instance_uid,
            uids.series_instance_uid,
            uids.study_instance_uid,
            ts,
            size,
            sha,
        )

    def _rejected(self, source: Actor, exc: LightboxError) -> None:
        log.warning("rejected object from %s: %s (status 0x%04X)", source, exc.message, exc.dicom_status)
        self.events.publish(InstanceRejected(source, exc.message, exc.dicom_status))


@dataclass(frozen=True, slots=True)
class EarlyHeader:
    """An object's header, read from its first bytes while the rest is still arriving."""

    header: part10.Header
    media_instance_uid: str
    rows: InstanceRows

    @property
    def dataset(self) -> JsonDataset:
        return self.header.dataset

    @property
    def transfer_syntax_uid(self) -> str:
        return self.header.transfer_syntax_uid


def read_early_header(head: bytes, dataset_only: DatasetOnly | None = None) -> EarlyHeader | None:
    """The header of an object from its first bytes (up to its pixel data), with its index rows; None when
    the header is not all in ``head`` or needs the general path (``finish`` then parses the whole object).
    The CPU this takes can then overlap the reception of the pixel data. ``dataset_only``: ``head`` is the
    start of a bare data set, as ``begin`` was told."""
    if dataset_only is not None:
        head = _file_meta(dataset_only) + head
    try:
        header = part10.parse(io.BytesIO(head), BULK_THRESHOLD, stop_at_pixel_data=True)
        if header.pixel_data_offset is None:
            return None  # no pixel data within these bytes: only the whole object tells where it ends
        return EarlyHeader(
            header, json_text(header.meta, "MediaStorageSOPInstanceUID"), extract_rows(header.dataset)
        )
    except Exception:  # whatever it is, the whole-object path meets it again and reports it properly
        return None


def _rest_complete(f: BinaryIO, early: EarlyHeader) -> bool:
    try:
        part10.check_rest(f, early.header)
    except (part10.NotHandled, part10.Truncated, struct.error):
        return False
    return True


def _file_meta(info: DatasetOnly) -> bytes:
    return encode_file_meta(
        info.sop_class_uid, info.sop_instance_uid, info.transfer_syntax_uid, info.source_ae_title
    )


def _committed(commit: Future[BlobInfo]) -> BlobInfo:
    try:
        return commit.result()
    except BlobStoreError as exc:
        raise OutOfResources(f"cannot store now: {exc.strerror or exc}") from exc


class _HeadFirst:
    """The object on its way in, read from the copy of its first bytes, and from the pending blob beyond."""

    def __init__(self, head: bytes, size: int, open_rest: Callable[[], BinaryIO]) -> None:
        self._head = head
        self._size = size
        self._open_rest = open_rest
        self._rest: BinaryIO | None = None
        self._pos = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, self._size)[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = self._size if n < 0 else min(self._pos + n, self._size)
        if end <= len(self._head):
            data = self._head[self._pos : end]
        else:
            if self._rest is None:
                self._rest = self._open_rest()
            self._rest.seek(self._pos)
            data = self._rest.read(max(0, end - self._pos))
        self._pos += len(data)
        return data

    def __enter__(self) -> _HeadFirst:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rest is not None:
            self._rest.close()


@dataclass(frozen=True, slots=True)
class _Uids:
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str


@dataclass(frozen=True, slots=True)
class _Parsed:
    dataset: JsonDataset
    transfer_syntax_uid: str
    media_instance_uid: str
    bulk: tuple[tuple[str, str, int], ...]


def _parse(f: BinaryIO) -> _Parsed:
    """Header as DICOM JSON, transfer syntax, Media Storage SOP Instance UID and bulk data elements of a
    complete object.

    The single-pass parser serves nearly every object; pydicom serves the rest (deflated data sets,
    sequences sent as UN) and has the last word on anything the fast path calls malformed or cut short.
    """
    has_pixels: bool | None  # None: a deflated data set, whose completeness check is its inflation
    try:
        header = part10.parse(f, BULK_THRESHOLD)
        doc, ts, has_pixels = header.dataset, header.transfer_syntax_uid, header.has_pixel_data
        media_instance_uid = json_text(header.meta, "MediaStorageSOPInstanceUID")
        bulk = header.bulk
    except (part10.NotHandled, part10.Truncated, struct.error, UnicodeError, LookupError):
        f.seek(0)
        doc, meta, ts, bulk = _read_header(f)
        has_pixels = check_complete(f, ts)
        media_instance_uid = str(meta.get("MediaStorageSOPInstanceUID") or "")
        if has_pixels is not False:  # where the pixel data is, pydicom does not say: -1, found when asked
            bulk += (("7FE00010", "OB" if UID(ts).is_compressed else "OW", -1),)
    if has_pixels is False and "00280010" in doc:
        raise InvalidObject("truncated object: an image (it has Rows) without its pixel data")
    return _Parsed(doc, ts, media_instance_uid, bulk)


def _read_header(f: BinaryIO) -> tuple[JsonDataset, Dataset, str, tuple[tuple[str, str, int], ...]]:
    """Parse a Part 10 header up to the pixel data; large values are neither read nor kept, only listed
    (offset -1: unknown)."""
    try:
        ds = pydicom.dcmread(f, stop_before_pixels=True, defer_size=_DEFER_SIZE)
        doc = dataset_to_json(ds, BULK_THRESHOLD)
        bulk = _bulk_elements(ds)
    except (InvalidDicomError, EOFError) as exc:
        raise InvalidObject(f"not a DICOM Part 10 object: {exc}") from exc
    except Exception as exc:  # pydicom raises many kinds on malformed input
        raise InvalidObject(f"malformed DICOM object: {exc}") from exc
    meta: Dataset | None = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if meta is None or not ts:
        raise InvalidObject(
            "not a DICOM Part 10 object: the File Meta Information has no Transfer Syntax UID"
        )
    return doc, meta, ts, bulk


def _bulk_elements(ds: Dataset) -> tuple[tuple[str, str, int], ...]:
    """The top-level values ``dataset_to_json`` leaves out, as (tag, VR, -1): where they are is not known."""
    found = []
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        vr = raw.VR or ds[tag].VR  # implicit VR: the dictionary's
        length = raw.length if hasattr(raw, "length") else len(raw.value or b"")
        if vr in BULK_VRS and length > BULK_THRESHOLD:
            found.append((f"{tag:08X}", str(vr), -1))
    return tuple(found)


def _validate(
    doc: JsonDataset, media_instance_uid: str, expected_class: str | None, expected_instance: str | None
) -> _Uids:
    values = {}
    for keyword in ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
        value = json_text(doc, keyword)
        if not value:
            raise InvalidObject(f"{keyword} is missing")
        if not is_valid_uid(value):
            raise InvalidObject(f"{keyword} {value!r} is not a valid UID")
        values[keyword] = value
    if media_instance_uid and media_instance_uid != values["SOPInstanceUID"]:
        raise DataSetMismatch(
            f"Media Storage SOP Instance UID {media_instance_uid} differs from SOP Instance UID "
            f"{values['SOPInstanceUID']}"
        )
    if expected_class and expected_class != values["SOPClassUID"]:
        raise DataSetMismatch(
            f"SOP Class UID {values['SOPClassUID']} differs from the announced {expected_class}"
        )
    if expected_instance and expected_instance != values["SOPInstanceUID"]:
        raise DataSetMismatch(
            f"SOP Instance UID {values['SOPInstanceUID']} differs from the announced {expected_instance}"
        )
    return _Uids(
        values["SOPClassUID"],
        values["SOPInstanceUID"],
        values["SeriesInstanceUID"],
        values["StudyInstanceUID"],
    )
