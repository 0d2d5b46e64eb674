"""STOW-RS of metadata and bulk data (PS3.18 10.5.1.2): application/dicom+json parts and their bulk data.

Each application/dicom+json part holds an array of instances in DICOM JSON (PS3.18 F.2); their bulk data
values are BulkDataURIs naming other parts by Content-Location (or ``cid:`` by Content-ID, RFC 2392), which
may come before or after the metadata. Uncompressed bulk data is application/octet-stream (little
endian); compressed Pixel Data is one frame, or one video stream, in its own media type (PS3.18 Table
8.7.3-5), and the instance is stored in the matching transfer syntax. An instance can only be assembled
once all its parts are in, so these parts are held in memory until the body ends, up to ``MAX_HELD``
bytes; then each instance is written as a data set into an ingest session, like any other object.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import orjson
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian

from lightbox.dicomweb.multipart_related import (
    Event,
    PartData,
    PartEnd,
    PartHeaders,
    parse_media_type,
)
from lightbox.dicomweb.stow_media import DICOM_JSON
from lightbox.dicomweb.stow_parts import Failed, PartOutcome, Stored
from lightbox.domain import status
from lightbox.domain.actor import Actor
from lightbox.domain.errors import DataSetMismatch, InvalidObject, LightboxError
from lightbox.domain.uids import is_valid_uid
from lightbox.services.ingest import DatasetOnly, IngestResult, IngestService

log = logging.getLogger(__name__)

# Metadata and bulk data of one request held in memory at most (beyond it: 413).
MAX_HELD = 128 * 1024 * 1024
# Counted for each part on top of its bytes, so that countless empty parts cannot fill memory either.
_PART_OVERHEAD = 1024
OCTET_STREAM = "application/octet-stream"
_PIXEL_DATA = "7FE00010"

# PS3.18 Table 8.7.3-5: compressed bulk data media types and their default transfer syntax; a
# transfer-syntax parameter names another. The x- names are those of earlier editions.
_COMPRESSED = {
    "image/jpeg": "1.2.840.10008.1.2.4.70",
    "image/dicom-rle": "1.2.840.10008.1.2.5",
    "image/x-dicom-rle": "1.2.840.10008.1.2.5",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/x-jls": "1.2.840.10008.1.2.4.80",
    "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/jpx": "1.2.840.10008.1.2.4.92",
    "image/jphc": "1.2.840.10008.1.2.4.201",
    "video/mpeg": "1.2.840.10008.1.2.4.100",
    "video/mp4": "1.2.840.10008.1.2.4.102",
    "video/h265": "1.2.840.10008.1.2.4.107",
}
# PS3.5 A.4: the MPEG-2, MPEG-4 and HEVC transfer syntaxes, whose one fragment stream holds every frame.
_VIDEO = {f"1.2.840.10008.1.2.4.{n}" for n in range(100, 109)}


class HeldTooLarge(Exception):
    """The metadata and bulk data of the request exceed ``MAX_HELD``."""


@dataclass(frozen=True, slots=True)
class _Bulk:
    data: bytes
    transfer_syntax: str | None  # None: uncompressed (application/octet-stream)


@dataclass
class _Part:
    kind: str  # "metadata", "bulk" or "refused"
    headers: PartHeaders
    data: bytearray
    failure: Failed | None = None


class StowJsonParts:
    """The parts of a multipart/related; type="application/dicom+json" request (the same interface as
    ``StowParts``): held as they arrive, assembled and stored once the body is complete."""

    def __init__(
        self, ingest: IngestService, executor: Executor, source: Actor, study: str | None = None
    ) -> None:
        self._ingest = ingest
        self._executor = executor
        self._source = source
        self._study = study
        self._current: _Part | None = None
        self._held = 0
        self._items: list[bytes | Failed] = []  # metadata parts and refused parts, in request order
        self._bulk: dict[str, _Bulk] = {}
        self._outcomes: list[PartOutcome] | None = None

    async def handle(self, event: Event) -> None:
        if isinstance(event, PartData):
            if self._current is not None and self._current.kind != "refused":
                self._hold(len(event.data))
                self._current.data += event.data
        elif isinstance(event, PartHeaders):
            self._hold(_PART_OVERHEAD)
            self._current = _classify(event)
        elif isinstance(event, PartEnd):
            self._end()

    def _hold(self, size: int) -> None:
        self._held += size
        if self._held > MAX_HELD:
            raise HeldTooLarge(
                f"{DICOM_JSON} uploads are assembled in memory, up to {MAX_HELD} bytes of metadata and "
                "bulk data a request; send fewer instances a request, or send them as application/dicom "
                "(PS3.10) parts, which have no size limit"
            )

    def discard(self) -> None:
        self._current = None

    async def abort(self) -> None:
        """Nothing is stored: instances are assembled and stored only from a complete request."""
        self.discard()
        self._items, self._bulk, self._outcomes = [], {}, []

    async def outcomes(self) -> list[PartOutcome]:
        if self._outcomes is None:
            self._outcomes = []
            loop = asyncio.get_running_loop()
            for item in self._items:
                if isinstance(item, Failed):
                    self._outcomes.append(item)
                    continue
                docs = await loop.run_in_executor(self._executor, _instances, item)
                for doc in docs:
                    outcome = await loop.run_in_executor(self._executor, self._store, doc)
                    self._outcomes.append(outcome)
            self._items, self._bulk = [], {}  # memory back before the response is written
        return self._outcomes

    def _end(self) -> None:
        part, self._current = self._current, None
        if part is None:
            return
        if part.failure is not None:
            self._items.append(part.failure)
        elif part.kind == "metadata":
            self._items.append(bytes(part.data))
        else:
            media = parse_media_type(part.headers.get("content-type"))
            ts = (
                None
                if media.type == OCTET_STREAM
                else media.params.get("transfer-syntax", _COMPRESSED[media.type])
            )
            bulk = _Bulk(bytes(part.data), ts)
            for key in _locations(part.headers):
                self._bulk[key] = bulk

    def _store(self, doc: dict[str, Any] | Failed) -> PartOutcome:
        """Assemble one instance and ingest it (on the executor)."""
        if isinstance(doc, Failed):
            return doc
        try:
            self._check_study(doc)
            data_set, meta = _assemble(doc, self._bulk)
        except LightboxError as exc:
            log.warning("STOW-RS instance %s refused: %s", _text(doc, "00080018") or "(unknown)", exc.message)
            return _failed(exc.dicom_status, exc.message, doc)
        try:
            return Stored(self._ingest_data_set(data_set, meta))
        except LightboxError as exc:  # the ingest service has logged it
            return _failed(exc.dicom_status, exc.message, doc)
        except Exception as exc:
            log.exception("STOW-RS instance failed")
            return _failed(status.PROCESSING_FAILURE, f"internal error while storing: {exc}", doc)

    def _check_study(self, doc: Mapping[str, Any]) -> None:
        """PS3.18 10.5: a store to /studies/{study} stores instances of that study only."""
        study = _text(doc, "0020000D")
        if self._study is None or study == self._study:
            return
        if not study:
            raise InvalidObject("StudyInstanceUID is missing")
        raise DataSetMismatch(f"Study Instance UID {study} is not the study {self._study} of the request")

    def _ingest_data_set(self, data_set: bytes, meta: DatasetOnly) -> IngestResult:
        # PS3.10 7.1: the session writes the File Meta Information before the data set.
        with self._ingest.begin(self._source, dataset_only=meta) as session:
            session.write(data_set)
            return session.finish()


def _classify(headers: PartHeaders) -> _Part:
    declared = headers.get("content-type")
    media = parse_media_type(declared)
    if media.type == DICOM_JSON:
        return _Part("metadata", headers, bytearray())
    if media.type == OCTET_STREAM or media.type in _COMPRESSED:
        if not _locations(headers):
            return _refused(headers, f"a bulk data part ({media.type}) without Content-Location")
        ts = media.params.get("transfer-syntax") if media.type in _COMPRESSED else None
        if ts is not None and not (is_valid_uid(ts) and UID(ts).is_encapsulated):
            return _refused(headers, f"transfer-syntax={ts} is not a compressed transfer syntax")
        return _Part("bulk", headers, bytearray())
    return _refused(headers, f"a part of type {declared!r} in a {DICOM_JSON} request")


def _refused(headers: PartHeaders, message: str) -> _Part:
    log.warning("STOW-RS part refused: %s", message)
    return _Part("refused", headers, bytearray(), Failed(status.CANNOT_UNDERSTAND, message))


def _locations(headers: PartHeaders) -> list[str]:
    """The URIs that name a bulk data part: its Content-Location, and cid: its Content-ID (RFC 2392)."""
    found = [headers.get("content-location")]
    content_id = headers.get("content-id").strip("<>")
    if content_id:
        found.append(f"cid:{content_id}")
    return [uri for uri in found if uri]


def _instances(metadata: bytes) -> list[dict[str, Any] | Failed]:
    """The instances of a metadata part: a JSON array of DICOM JSON objects (one object is taken too)."""
    try:
        doc = orjson.loads(metadata)
    except orjson.JSONDecodeError as exc:
        return [Failed(status.CANNOT_UNDERSTAND, f"the {DICOM_JSON} part is not JSON: {exc}")]
    docs = doc if isinstance(doc, list) else [doc]
    return [
        d
        if isinstance(d, dict)
        else Failed(status.CANNOT_UNDERSTAND, "an instance that is not a JSON object")
        for d in docs
    ]


def _failed(reason: int, message: str, doc: Mapping[str, Any]) -> Failed:
    return Failed(reason, message, _text(doc, "00080016"), _text(doc, "00080018"))


def _text(doc: Mapping[str, Any], tag: str) -> str:
    element = doc.get(tag)
    value = element.get("Value") if isinstance(element, dict) else None
    return str(value[0]) if isinstance(value, list) and value and isinstance(value[0], str) else ""


def _assemble(doc: dict[str, Any], bulk: Mapping[str, _Bulk]) -> tuple[bytes, DatasetOnly]:
    """The instance's data set in its transfer syntax, and what its File Meta Information needs."""
    syntaxes: list[str] = []

    def bulk_data(tag: str, vr: str, uri: str) -> bytes:
        found = bulk.get(uri)
        if found is None:
            raise InvalidObject(
                f"no part has Content-Location {uri}, the BulkDataURI of ({tag[:4]},{tag[4:]})"
            )
        if found.transfer_syntax is None:
            return found.data
        if tag.upper() != _PIXEL_DATA:
            raise InvalidObject(f"compressed bulk data for ({tag[:4]},{tag[4:]}), which is not Pixel Data")
        syntaxes.append(found.transfer_syntax)
        # PS3.5 A.4: one frame (or a video stream) as one fragment, after an empty Basic Offset Table.
        return encapsulate([found.data])

    # The File Meta Information (group 0002) is the archive's to write (PS3.10 7.1).
    doc = {tag: value for tag, value in doc.items() if not tag.startswith("0002")}
    try:
        ds = Dataset.from_json(doc, bulk_data)
    except LightboxError:
        raise
    except Exception as exc:  # pydicom raises many kinds on malformed JSON values
        raise InvalidObject(f"not a valid DICOM JSON instance (PS3.18 F.2): {exc}") from exc
    ts = syntaxes[0] if syntaxes else ExplicitVRLittleEndian
    if syntaxes:
        frames = int(ds.get("NumberOfFrames") or 1)
        if frames > 1 and ts not in _VIDEO:
            raise InvalidObject(
                f"{frames} frames of compressed Pixel Data in one part; send such an instance as "
                "application/dicom"
            )
        pixel_data = ds["PixelData"]
        pixel_data.VR = "OB"
        pixel_data.is_undefined_length = True  # encapsulated (PS3.5 A.4)
    buf = io.BytesIO()
    try:
        pydicom.dcmwrite(buf, ds, implicit_vr=False, little_endian=True)
    except Exception as exc:
        raise InvalidObject(f"the instance cannot be encoded: {exc}") from exc
    for keyword in ("SOPClassUID", "SOPInstanceUID"):
        if not ds.get(keyword):
            raise InvalidObject(f"{keyword} is missing")
    return buf.getvalue(), DatasetOnly(ts, str(ds.SOPClassUID), str(ds.SOPInstanceUID))
