"""Metadata: the stored header of each instance of a study, series or instance, as DICOM JSON (PS3.18 F.2).

Protocol-free: WADO-RS metadata resources answer from here. Nothing is parsed per request: the index keeps
each instance's attributes split by level and the place of its bulk data elements, both made at ingest, so
a 600-instance series is one read of the series' parents and pages of instance rows. Bulk data values
(pixel data, large binary values) appear as BulkDataURI, built by the caller, who knows its URLs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from lightbox.domain.errors import InvalidQuery, NotFound
from lightbox.domain.uids import is_valid_uid
from lightbox.formats import part10
from lightbox.formats.dicom_json import JsonDataset
from lightbox.index.base import Index, InstanceDocument, InstanceLocation
from lightbox.storage.base import BlobNotFound, BlobStore

BulkDataURI = Callable[[InstanceLocation, str], str]  # (instance, tag) -> the URL of that value


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
        selection holds nothing, InvalidQuery for a malformed UID."""
        for name, uid in (("study", study_uid), ("series", series_uid), ("instance", sop_instance_uid)):
            if uid is not None and not is_valid_uid(uid):
                raise InvalidQuery(f"{uid!r} is not a valid {name} UID")
        found = self.index.documents(study_uid, series_uid, sop_instance_uid)
        first = next(found, None)
        if first is None:
            raise NotFound(f"no instance in {_describe(study_uid, series_uid, sop_instance_uid)}")
        yield self._document(first, bulk_uri)
        for doc in found:
            yield self._document(doc, bulk_uri)

    def _document(self, doc: InstanceDocument, bulk_uri: BulkDataURI) -> JsonDataset:
        out: dict[str, Any] = {**doc.parents, **doc.attrs}
        bulk = doc.bulk if doc.bulk is not None else self._bulk_of(doc.location)
        for tag, vr, *_ in bulk:
            out[tag] = {"vr": vr, "BulkDataURI": bulk_uri(doc.location, tag)}
        return dict(sorted(out.items()))  # in tag order, as the object itself

    def _bulk_of(self, location: InstanceLocation) -> Sequence[Sequence[Any]]:
        """The bulk data elements of an instance indexed before they were kept: read from the object."""
        try:
            with self.blobs.open(location.blob_key) as f:
                return part10.parse(f).bulk
        except (BlobNotFound, part10.NotHandled, part10.Truncated):
            return ()  # the values are left out; the rest of the header still serves


def _describe(study: str, series: str | None, instance: str | None) -> str:
    if instance is not None:
        return f"study {study}, series {series}, instance {instance}"
    return f"study {study}, series {series}" if series is not None else f"study {study}"
