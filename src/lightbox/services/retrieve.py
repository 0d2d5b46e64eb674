"""Retrieve: resolve a patient / study / series / instance selection to stored objects and open them.

Protocol-free: C-MOVE, C-GET, WADO-RS and WADO-URI all resolve and open through here, and get an object
converted to another transfer syntax here when their peer does not accept it as stored.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import BinaryIO

import pydicom

from lightbox.deidentify import DeidentifyOptions, deidentify_dataset
from lightbox.domain.actor import Actor, as_actor
from lightbox.domain.errors import InvalidQuery, NotFound
from lightbox.domain.levels import UNIQUE_KEY, Level
from lightbox.domain.uids import is_valid_uid
from lightbox.formats.file_meta import encode_file_meta
from lightbox.index.base import Index, InstanceLocation
from lightbox.services import transcode
from lightbox.services.events import EventBus, InstancesRetrieved
from lightbox.storage.base import BlobNotFound, BlobStore

_CHUNK = 1 << 20


READ_AHEAD = 4  # objects of a series asked of storage ahead of the one being sent


class RetrieveService:
    def __init__(self, index: Index, blobs: BlobStore, events: EventBus) -> None:
        self.index = index
        self.blobs = blobs
        self.events = events

    def resolve(self, level: Level, uids: Mapping[str, Sequence[str]]) -> Iterator[InstanceLocation]:
        """Every stored instance in the selection, in storage order.

        ``uids`` maps unique keys (PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID) to lists
        of values; the key of ``level`` itself is required (PS3.4 C.4.2.2.1: a retrieve names what it wants).
        """
        required = UNIQUE_KEY[level]
        if not uids.get(required):
            raise InvalidQuery(f"a {level.value} level retrieve needs {required}")
        for keyword, values in uids.items():
            if keyword != "PatientID":
                for value in values:
                    if not is_valid_uid(value):
                        raise InvalidQuery(f"{keyword} {value!r} is not a valid UID")
        return self.index.locate(level, uids)

    def instance(self, sop_instance_uid: str) -> InstanceLocation:
        if not is_valid_uid(sop_instance_uid):
            raise InvalidQuery(f"SOP Instance UID {sop_instance_uid!r} is not a valid UID")
        found = self.index.find_instance(sop_instance_uid)
        if found is None:
            raise NotFound(f"no instance {sop_instance_uid}")
        return found

    def open(self, location: InstanceLocation) -> BinaryIO:
        """The stored Part 10 object as a stream (checked against its checksum where a replica stands by)."""
        try:
            return self.blobs.open_checked(location.blob_key, location.sha256, location.size)
        except BlobNotFound:
            raise _missing(location) from None

    def prefetch(self, location: InstanceLocation) -> None:
        """Hint that this object is read next (a series sent object after object): storage may read ahead."""
        self.blobs.prefetch(location.blob_key)

    def prefetch_ahead(self, locations: Sequence[InstanceLocation], i: int) -> None:
        """While object ``i`` of ``locations`` is being sent, keep the next ``READ_AHEAD`` ones asked for:
        several reads in flight keep a disk busier than one (and cost nothing from the page cache)."""
        first = i + 1 if i == 0 else i + READ_AHEAD
        for location in locations[first : i + READ_AHEAD + 1]:
            self.prefetch(location)

    def converted(self, location: InstanceLocation, transfer_syntax: str) -> bytes:
        """The stored object's data set (without File Meta Information) in ``transfer_syntax``, one of
        ``transcode.TARGETS``, decompressed as needed. Blocking and memory-bound (the decoded object): run it
        in the executor, one object at a time. Raises ``transcode.CannotConvert`` when it cannot be done."""
        with self.open(location) as f:
            return transcode.convert(f, transfer_syntax)

    def deidentified(
        self, location: InstanceLocation, transfer_syntax: str, options: DeidentifyOptions
    ) -> bytes:
        """The object de-identified (``lightbox.deidentify``), as a whole Part 10 file in ``transfer_syntax``
        (converted first when it is not the stored one). Blocking and memory-bound, as ``converted`` is."""
        if transfer_syntax == location.transfer_syntax_uid:
            with self.open(location) as f:
                ds = pydicom.dcmread(f)
        else:
            meta = encode_file_meta(location.sop_class_uid, location.sop_instance_uid, transfer_syntax)
            ds = pydicom.dcmread(io.BytesIO(meta + self.converted(location, transfer_syntax)))
        deidentify_dataset(ds, options)
        out = io.BytesIO()
        pydicom.dcmwrite(out, ds, enforce_file_format=True)
        return out.getvalue()

    def chunks(self, location: InstanceLocation, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The stored object (or a byte range of it) in chunks, for streaming responses."""
        try:
            yield from self.blobs.open_range(location.blob_key, start, end)
        except BlobNotFound:
            raise _missing(location) from None

    def retrieved(
        self,
        source: Actor | str,
        locations: Sequence[InstanceLocation],
        *,
        purpose: str = "retrieve",
        destination: str | None = None,
    ) -> None:
        """Adapters report what they sent, once per retrieve, for audit and metrics: ``purpose`` "view" for
        what people look at (metadata, rendered images), ``destination`` a C-MOVE's destination AE."""
        per_study = Counter(loc.study_instance_uid for loc in locations)
        studies = tuple(sorted(per_study))
        size = sum(loc.size for loc in locations)
        counts = tuple(per_study[study] for study in studies)
        actor = as_actor(source)
        event = InstancesRetrieved(actor, studies, len(locations), size, purpose, destination, counts)
        self.events.publish(event)

    def viewed(self, source: Actor | str, study_instance_uid: str, instances: int) -> None:
        """Adapters report headers shown to a person (a viewer loading a study's metadata)."""
        event = InstancesRetrieved(as_actor(source), (study_instance_uid,), instances, purpose="view")
        self.events.publish(event)


def _missing(location: InstanceLocation) -> NotFound:
    return NotFound(f"the object of instance {location.sop_instance_uid} is missing from storage")
