"""Metadata: the stored header of each instance of a study, series or instance, as DICOM JSON (PS3.18 F.2).

Protocol-free: WADO-RS metadata resources answer from here. Nothing is parsed per request: the index keeps
each instance's attributes split by level and the place of its bulk data elements, both made at ingest, so
a 600-instance series is one read of the series' parents and pages of instance rows. Bulk data values
(pixel data, large binary values) appear as BulkDataURI, built by the caller, who knows its URLs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pydicom

from lightbox.domain.errors import InvalidQuery, LightboxError, NotFound
from lightbox.domain.uids import is_valid_uid
from lightbox.formats import part10
from lightbox.formats.dicom_json import JsonDataset
from lightbox.formats.encoding import (
    EXPLICIT_VR_BIG_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    LONG_VRS,
    UNDEFINED_LENGTH,
)
from lightbox.index.base import Index, InstanceDocument, InstanceLocation, MetadataVersion
from lightbox.storage.base import BlobNotFound, BlobStore

BulkDataURI = Callable[[InstanceLocation, str], str]  # (instance, tag) -> the URL of that value
_CHUNK = 1 << 20


class EncapsulatedValue(LightboxError):
    """The value asked for is encapsulated (compressed) pixel data: it is served by frame."""

    http_status = 406


@dataclass(frozen=True, slots=True)
class BulkValue:
    """A bulk data value: its VR, length and bytes, read from storage in chunks."""

    vr: str
    length: int
    chunks: Iterator[bytes]


class MetadataService:
    def __init__(self, index: Index, blobs: BlobStore) -> None:
        self.index = index
        self.blobs = blobs

    def documents(
        self,
        bulk_uri: BulkDataURI,
        study_uid: str,
        series_uid: str | None = None,
        sop_instance_uid: str | None = None,
    ) -> Iterator[JsonDataset]:
        """Each instance's header, by series and instance number; raises NotFound (before yielding) when the
        selection holds nothing, InvalidQuery for a malformed UID. A document's attributes are in no
        particular order (sorting them is the serializer's job, done far faster while it writes)."""
        _check_uids(study_uid, series_uid, sop_instance_uid)
        found = self.index.documents(study_uid, series_uid, sop_instance_uid)
        first = next(found, None)
        if first is None:
            raise NotFound(f"no instance in {_describe(study_uid, series_uid, sop_instance_uid)}")
        yield self._document(first, bulk_uri)
        for doc in found:
            yield self._document(doc, bulk_uri)

    def version(
        self, study_uid: str, series_uid: str | None = None, sop_instance_uid: str | None = None
    ) -> MetadataVersion | None:
        """The version of what ``documents`` would give (None when the selection holds nothing): a client's
        copy whose tag was made from it can be revalidated without building the documents."""
        _check_uids(study_uid, series_uid, sop_instance_uid)
        return self.index.metadata_version(study_uid, series_uid, sop_instance_uid)

    def bulk_value(self, study_uid: str, series_uid: str, sop_instance_uid: str, tag: str) -> BulkValue:
        """One top-level bulk data value of an instance (PS3.18 10.4.1.1.5), streamed from storage."""
        tag = tag.upper()
        if len(tag) != 8 or any(c not in "0123456789ABCDEF" for c in tag):
            raise InvalidQuery(f"{tag!r} is not a tag (8 hexadecimal digits)")
        _check_uids(study_uid, series_uid, sop_instance_uid)
        instance = next(self.index.documents(study_uid, series_uid, sop_instance_uid), None)
        if instance is None:
            raise NotFound(f"no instance in {_describe(study_uid, series_uid, sop_instance_uid)}")
        bulk = instance.bulk if instance.bulk is not None else self._bulk_of(instance.location)
        entry = next((item for item in bulk if item[0] == tag), None)
        if entry is None:
            raise NotFound(f"instance {sop_instance_uid} has no bulk data value {tag}")
        location, offset = instance.location, int(entry[2])
        if offset < 0:
            return self._value_by_parse(location, tag)
        with self.blobs.open(location.blob_key) as f:
            f.seek(offset)
            head = f.read(12)
        vr, length, header = _element_header(head, location.transfer_syntax_uid, str(entry[1]))
        if length == UNDEFINED_LENGTH:
            raise EncapsulatedValue(
                f"{tag} of instance {sop_instance_uid} is compressed pixel data: ask for its frames"
            )
        start = offset + header
        return BulkValue(vr, length, self.blobs.open_range(location.blob_key, start, start + length))

    def _value_by_parse(self, location: InstanceLocation, tag: str) -> BulkValue:
        """A value whose place is not known (a deflated data set): read with pydicom, one object at most."""
        with self.blobs.open(location.blob_key) as f:
            ds = pydicom.dcmread(f)
        element = ds.get(int(tag, 16))
        if element is None:
            raise NotFound(f"instance {location.sop_instance_uid} has no bulk data value {tag}")
        if element.is_undefined_length:
            raise EncapsulatedValue(f"{tag} of instance {location.sop_instance_uid} is compressed pixel data")
        value = bytes(element.value)
        return BulkValue(str(element.VR), len(value), iter([value]))

    def _document(self, doc: InstanceDocument, bulk_uri: BulkDataURI) -> JsonDataset:
        out: dict[str, Any] = {**doc.parents, **doc.attrs}
        bulk = doc.bulk if doc.bulk is not None else self._bulk_of(doc.location)
        for tag, vr, *_ in bulk:
            out[tag] = {"vr": vr, "BulkDataURI": bulk_uri(doc.location, tag)}
        return out  # in no particular order: serializers write attributes in tag order (PS3.18 F.2.2)

    def _bulk_of(self, location: InstanceLocation) -> Sequence[Sequence[Any]]:
        """The bulk data elements of an instance indexed before they were kept: read from the object."""
        try:
            with self.blobs.open(location.blob_key) as f:
                return part10.parse(f).bulk
        except (BlobNotFound, part10.NotHandled, part10.Truncated):
            return ()  # the values are left out; the rest of the header still serves


def _check_uids(study: str, series: str | None, instance: str | None) -> None:
    for name, uid in (("study", study), ("series", series), ("instance", instance)):
        if uid is not None and not is_valid_uid(uid):
            raise InvalidQuery(f"{uid!r} is not a valid {name} UID")


def _element_header(head: bytes, transfer_syntax: str, vr: str) -> tuple[str, int, int]:
    """VR, value length and header size of the element starting ``head`` (PS3.5 7.1)."""
    order = ">" if transfer_syntax == EXPLICIT_VR_BIG_ENDIAN else "<"
    if transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        return vr, struct.unpack_from("<I", head, 4)[0], 8
    explicit_vr = head[4:6]
    if explicit_vr in LONG_VRS:
        return explicit_vr.decode(), struct.unpack_from(order + "I", head, 8)[0], 12
    return explicit_vr.decode(), struct.unpack_from(order + "H", head, 6)[0], 8


def _describe(study: str, series: str | None, instance: str | None) -> str:
    if instance is not None:
        return f"study {study}, series {series}, instance {instance}"
    return f"study {study}, series {series}" if series is not None else f"study {study}"
