"""Export: stored instances written out as Part 10 files in a folder, as they are or de-identified.

Files go to ``<destination>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``, one instance at
a time. A plain export copies the stored bytes in chunks without parsing them. A de-identified one reads one
instance with pydicom, applies PS3.15's Basic Profile (``lightbox.deidentify``) and writes the result under
its new UIDs. Each file is written under a temporary name, flushed to disk and renamed into place, so that a
stopped export leaves only whole files; a file already there is left alone when it has the same content,
and never overwritten when it has not.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.uid import UID

from lightbox import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from lightbox.deidentify import DeidentifyOptions, Pseudonyms, deidentify_dataset
from lightbox.domain.actor import Actor, as_actor
from lightbox.domain.errors import Conflict, InvalidObject, NotFound, NotWritable, OutOfResources
from lightbox.domain.levels import UNIQUE_KEY, Level
from lightbox.domain.uids import is_valid_uid
from lightbox.index.base import InstanceLocation
from lightbox.services.events import EventBus, InstancesExported
from lightbox.services.retrieve import RetrieveService
from lightbox.storage.base import BlobStoreError
from lightbox.storage.local_files import file_sha256

_CHUNK = 1 << 20
_NAMES = {Level.PATIENT: "patient", Level.STUDY: "study", Level.SERIES: "series", Level.IMAGE: "instance"}


@dataclass(frozen=True, slots=True)
class ExportResult:
    destination: Path
    instances: int  # the selection's instances, each now a file in the destination
    written: int  # of them, the files this export wrote; the others were there already, identical
    size: int  # bytes written
    study_instance_uids: tuple[str, ...]  # the stored studies exported (not their de-identified UIDs)
    burned_in: int = 0  # de-identified ones that declare burned-in annotation: pixels exported as stored


class ExportService:
    def __init__(self, retrieve: RetrieveService, events: EventBus) -> None:
        self.retrieve = retrieve
        self.events = events

    def check(self, level: Level, uids: Mapping[str, Sequence[str]]) -> None:
        """Raise ``NotFound`` (or ``InvalidQuery``) unless each value of the level's key names stored
        instances: a selection is checked whole before anything is written."""
        keyword = UNIQUE_KEY[level]
        for value in uids.get(keyword, ()):
            if next(iter(self.retrieve.resolve(level, {**uids, keyword: [value]})), None) is None:
                raise NotFound(f"no {_NAMES[level]} {value} in the archive")

    def export(
        self,
        level: Level,
        uids: Mapping[str, Sequence[str]],
        destination: Path,
        *,
        deidentify: bool,
        source: Actor | str,
        key: bytes | None = None,
    ) -> ExportResult:
        """Write every stored instance of the selection (as ``RetrieveService.resolve`` takes it) under
        ``destination``. With ``deidentify``, UIDs and pseudonyms come from ``key`` (random when None): the
        same key gives the same ones again, so that exports made at different times line up."""
        self.check(level, uids)
        _make_folder(destination)
        options = None
        if deidentify:
            options = DeidentifyOptions(Pseudonyms(key) if key is not None else Pseudonyms.random())
        written = _Tally()
        try:
            for location in self.retrieve.resolve(level, uids):
                if options is None:
                    self._copy(location, destination, written)
                else:
                    self._write_deidentified(location, destination, options, written)
        finally:
            if written.instances:  # what left the archive is reported, also when the export failed midway
                self.events.publish(
                    InstancesExported(
                        as_actor(source),
                        level.value,
                        "\\".join(uids.get(UNIQUE_KEY[level], ())),
                        tuple(sorted(written.studies)),
                        written.instances,
                        deidentify,
                        str(destination),
                        written.size,
                    )
                )
        return ExportResult(
            destination,
            written.instances,
            written.instances - written.unchanged,
            written.size,
            tuple(sorted(written.studies)),
            written.burned_in,
        )

    def _copy(self, location: InstanceLocation, destination: Path, tally: _Tally) -> None:
        target = _target(
            destination,
            location.study_instance_uid,
            location.series_instance_uid,
            location.sop_instance_uid,
        )
        if target.exists():
            # The index knows the stored object's checksum: an identical file is not copied again.
            if file_sha256(target) != location.sha256:
                raise _occupied(target)
            tally.add(location, 0, unchanged=True)
            return

        def write(out: BinaryIO) -> None:
            try:
                for chunk in self.retrieve.chunks(location):
                    out.write(chunk)
            except BlobStoreError as exc:  # an OSError too: not to be taken for the destination's
                raise OutOfResources(f"reading instance {location.sop_instance_uid} failed: {exc}") from exc

        tally.add(location, *_write_file(target, write))

    def _write_deidentified(
        self, location: InstanceLocation, destination: Path, options: DeidentifyOptions, tally: _Tally
    ) -> None:
        with self.retrieve.open(location) as f:
            try:
                ds = pydicom.dcmread(f)
            except Exception as exc:  # stored objects were checked at ingest: this is damage
                raise InvalidObject(f"instance {location.sop_instance_uid} cannot be read: {exc}") from exc
        deidentify_dataset(ds, options)
        # PS3.10 7.1: the Implementation Class UID names what wrote the file, which is now the archive.
        ds.file_meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
        ds.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        target = _target(destination, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        size, unchanged = _write_file(target, lambda out: pydicom.dcmwrite(out, ds, enforce_file_format=True))
        tally.add(location, size, unchanged, burned_in=ds.get("BurnedInAnnotation") == "YES")


class _Tally:
    """What an export has put in its destination so far."""

    def __init__(self) -> None:
        self.instances = self.unchanged = self.size = self.burned_in = 0
        self.studies: set[str] = set()

    def add(
        self, location: InstanceLocation, size: int, unchanged: bool = False, *, burned_in: bool = False
    ) -> None:
        self.instances += 1
        self.size += size
        self.unchanged += unchanged
        self.burned_in += burned_in
        self.studies.add(location.study_instance_uid)


def _target(destination: Path, study: str, series: str, sop: str) -> Path:
    # Path components from UIDs: only valid UIDs (digits and dots) ever become names.
    for uid in (study, series, sop):
        if not is_valid_uid(uid):
            raise InvalidObject(f"{uid!r} is not a valid UID; it cannot name a file")
    folder = destination / study / series
    _make_folder(folder)
    return folder / f"{sop}.dcm"


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotWritable(f"cannot export to {folder}: it is a file, not a folder") from None
    except OSError as exc:
        raise _not_writable(folder, exc) from exc


def _temporary(target: Path) -> Path:
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _not_writable(target.parent, exc) from exc
    os.close(fd)
    return Path(name)


def _write_file(target: Path, write: Callable[[BinaryIO], object]) -> tuple[int, bool]:
    """Write ``target`` through ``write`` into a temporary file beside it, flushed to disk, then renamed into
    place. Returns the bytes written, and whether an identical file was there already (then left as it was,
    and 0 bytes written)."""
    tmp = _temporary(target)
    try:
        with open(tmp, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if target.exists():
            if file_sha256(target) != file_sha256(tmp):
                raise _occupied(target)
            return 0, True
        os.replace(tmp, target)
        return size, False
    except OSError as exc:
        raise _not_writable(target, exc) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _occupied(target: Path) -> Conflict:
    return Conflict(f"{target} exists with other content; export to an empty folder, or move it away")


def _not_writable(path: Path, exc: OSError) -> NotWritable:
    return NotWritable(f"cannot write {path}: {exc.strerror or exc}")
