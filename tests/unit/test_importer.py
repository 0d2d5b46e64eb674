"""``lightbox.importer`` on real files into a real archive, on every Index backend.

The samples are pydicom's bundled test files and the pydicom-data package (244 files: every common transfer
syntax, plus files that are not storable on purpose). What must be stored is computed here from the files
themselves, independently of the archive.
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import data_store
import pydicom
import pydicom.data
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.encaps import generate_frames
from pydicom.uid import UID, generate_uid
from rich.console import Console

from lightbox.importer import ImportSummary, run_bounded, run_import, scan
from lightbox.index.base import DuplicatePolicy
from lightbox.index.sql import SqlIndex
from lightbox.services.events import EventBus, InstanceStored
from lightbox.services.ingest import IngestService
from lightbox.services.retrieve import RetrieveService
from lightbox.storage.filesystem import FileSystemBlobStore

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"  # not get_testdata_files(): it downloads
DATA_STORE_FILES = Path(data_store.__file__).parent / "data"
DICOMDIR_TESTS = PYDICOM_FILES / "dicomdirtests"
TINY_ALPHA = DICOMDIR_TESTS / "TINY_ALPHA"

# Transfer syntaxes the samples must cover; JPEG lossless is either process 14 (.57) or its SV1 form (.70).
REQUIRED_SYNTAXES = {
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE lossless
}
JPEG_LOSSLESS = {"1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"}
FOUR_UIDS = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")


# --- the samples, described from the files themselves ------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    path: Path
    size: int
    sha256: str
    transfer_syntax: str | None  # None: no File Meta Information with a Transfer Syntax UID
    sop_instance_uid: str | None  # set only when the sample is storable
    truncated: bool  # an element's value is shorter than its length says

    @property
    def storable(self) -> bool:
        return self.sop_instance_uid is not None and not self.truncated


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _describe(path: Path) -> Sample:
    size, sha = path.stat().st_size, _sha256(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            return Sample(path, size, sha, None, None, False)
        truncated = _truncated(path, len(ds))
    ts = ds.file_meta.get("TransferSyntaxUID") if getattr(ds, "file_meta", None) is not None else None
    values = [str(ds.get(keyword) or "") for keyword in FOUR_UIDS]
    meta_uid = ds.file_meta.get("MediaStorageSOPInstanceUID") if ts else None
    storable = (
        bool(ts)
        and all(UID(v).is_valid for v in values)  # PS3.5 9.1, as pydicom checks it
        and (not meta_uid or str(meta_uid) == values[1])  # PS3.10 7.1: the meta names this instance
    )
    return Sample(path, size, sha, str(ts) if ts else None, values[1] if storable else None, truncated)


def _truncated(path: Path, header_elements: int) -> bool:
    """The file ends before its data set does: pydicom then drops elements or reads short values."""
    try:
        ds = pydicom.dcmread(path)
    except Exception:
        return True
    return len(ds) < header_elements or any(
        isinstance(raw, RawDataElement)
        and raw.length != 0xFFFFFFFF
        and raw.value is not None
        and len(raw.value) != raw.length
        for raw in ds._dict.values()
    )


@cache
def samples() -> tuple[Sample, ...]:
    files = sorted(p for root in (PYDICOM_FILES, DATA_STORE_FILES) for p in root.rglob("*") if p.is_file())
    return tuple(_describe(p) for p in files)


def _by_path() -> dict[Path, Sample]:
    return {s.path: s for s in samples()}


def _is_dicomdir(path: Path) -> bool:
    return path.name == "DICOMDIR"


# --- helpers -----------------------------------------------------------------------------------------------
@dataclass
class Archive:
    index: SqlIndex
    blobs: FileSystemBlobStore
    events: EventBus
    ingest: IngestService
    retrieve: RetrieveService

    def read_back_sha256(self, sop_instance_uid: str) -> str:
        location = self.retrieve.instance(sop_instance_uid)
        digest = hashlib.sha256()
        with self.retrieve.open(location) as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                digest.update(chunk)
        streamed = hashlib.sha256(b"".join(self.retrieve.chunks(location))).hexdigest()
        assert streamed == digest.hexdigest()
        return digest.hexdigest()

    def blob_count(self) -> int:
        return len(list(self.blobs.keys()))


def _archive(
    index: SqlIndex, blobs: FileSystemBlobStore, policy: DuplicatePolicy = DuplicatePolicy.REPLACE
) -> Archive:
    events = EventBus()
    return Archive(
        index,
        blobs,
        events,
        IngestService(index, blobs, events, policy),
        RetrieveService(index, blobs, events),
    )


@pytest.fixture
def archive(index: SqlIndex, blob_store: FileSystemBlobStore) -> Archive:
    return _archive(index, blob_store)


def _console() -> Console:
    return Console(file=io.StringIO(), width=100)


def _import(
    archive: Archive, paths: list[Path], *, workers: int = 4, console: Console | None = None
) -> ImportSummary:
    return run_import(
        archive.ingest, paths, workers=workers, show_progress=False, console=console or _console()
    )


def _output(console: Console) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def _rejected(summary: ImportSummary) -> dict[Path, str]:
    reasons = dict(summary.rejected)
    assert len(reasons) == len(summary.rejected), "a file was reported twice"
    return reasons


# --- the sample trees --------------------------------------------------------------------------------------
def _near_lossless_with_series(folder: Path) -> Sample:
    """The JPEG-LS near-lossless samples lack Study and Series Instance UIDs; given them, one is storable."""
    ds = pydicom.dcmread(PYDICOM_FILES / "JPEGLSNearLossless_08.dcm")
    assert "SeriesInstanceUID" not in ds and "StudyInstanceUID" not in ds
    ds.SeriesInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
    path = folder / "JPEGLSNearLossless_08_with_series.dcm"
    ds.save_as(path, enforce_file_format=True)
    return _describe(path)


def test_every_storable_sample_is_stored_and_reads_back_byte_identical(
    archive: Archive, tmp_path: Path
) -> None:
    storable = [s for s in samples() if s.storable and not _is_dicomdir(s.path)]
    storable.append(_near_lossless_with_series(tmp_path))
    # Samples share SOP Instance UIDs (one image in several syntaxes); import them in layers of unique UIDs
    # so that each one is the stored object once and can be read back.
    groups: dict[str, list[Sample]] = collections.defaultdict(list)
    for sample in storable:
        groups[str(sample.sop_instance_uid)].append(sample)
    layers = [[g[k] for g in groups.values() if len(g) > k] for k in range(max(map(len, groups.values())))]
    stored_syntaxes: set[str] = set()
    for number, layer in enumerate(layers):
        summary = _import(archive, [s.path for s in layer])
        assert summary.rejected == []
        assert summary.files == len(layer) and summary.not_imported == 0
        if number == 0:
            assert summary.stored == len(layer)
        else:  # each replaces its predecessor, unless the bytes are the same
            assert summary.replaced + summary.already_present == len(layer)
        for sample in layer:
            assert sample.sop_instance_uid is not None
            assert archive.read_back_sha256(sample.sop_instance_uid) == sample.sha256, sample.path
            location = archive.retrieve.instance(sample.sop_instance_uid)
            assert (location.size, location.transfer_syntax_uid) == (sample.size, sample.transfer_syntax)
            stored_syntaxes.add(location.transfer_syntax_uid)
    assert stored_syntaxes == {s.transfer_syntax for s in storable}
    assert stored_syntaxes >= REQUIRED_SYNTAXES, REQUIRED_SYNTAXES - stored_syntaxes
    assert stored_syntaxes & JPEG_LOSSLESS
    assert archive.index.statistics().instances == len(groups)


def test_import_both_trees(archive: Archive) -> None:
    console = _console()
    summary = _import(archive, [PYDICOM_FILES, DATA_STORE_FILES], console=console)

    everything = samples()
    dicomdirs = [s for s in everything if _is_dicomdir(s.path)]
    given = [s for s in everything if not _is_dicomdir(s.path)]
    rejected = _rejected(summary)
    by_path = _by_path()
    assert len(dicomdirs) == summary.dicomdirs == 2
    assert summary.files == len(given) and summary.not_imported == 0
    assert summary.bytes_read == sum(s.size for s in given)
    assert not any(_is_dicomdir(p) for p in rejected)
    # Truncated samples are judged in their own test (test_truncated_objects_are_rejected).
    assert {p for p in rejected if not by_path[p].truncated} == {
        s.path for s in given if not s.storable and not s.truncated
    }
    assert all(reason.strip() for reason in rejected.values())
    accepted = [s for s in given if s.path not in rejected]
    assert summary.accepted == len(accepted) == len(given) - summary.ingest_rejected

    # The reasons come from the ingest service and say what is wrong.
    assert "not a DICOM Part 10 object" in rejected[PYDICOM_FILES / "README.txt"]
    assert "not a DICOM Part 10 object" in rejected[PYDICOM_FILES / "no_meta.dcm"]
    assert "Transfer Syntax UID" in rejected[PYDICOM_FILES / "meta_missing_tsyntax.dcm"]
    assert "SeriesInstanceUID is missing" in rejected[PYDICOM_FILES / "JPEGLSNearLossless_08.dcm"]
    assert "SOPClassUID is missing" in rejected[DICOMDIR_TESTS / "DICOMDIR-bigEnd"]
    assert "Media Storage SOP Instance UID" in rejected[PYDICOM_FILES / "rtdose.dcm"]
    assert "not a valid UID" in rejected[DATA_STORE_FILES / "bad_sequence.dcm"]

    # One object per SOP Instance UID; each is byte for byte one of the files that carry that UID.
    by_uid: dict[str, dict[str, Sample]] = collections.defaultdict(dict)
    for sample in accepted:
        uid = sample.sop_instance_uid or str(pydicom.dcmread(sample.path).SOPInstanceUID)
        by_uid[uid][sample.sha256] = sample
    assert archive.index.statistics().instances == len(by_uid) == archive.blob_count()
    survivors = []
    for uid, versions in by_uid.items():
        sha = archive.read_back_sha256(uid)
        assert sha in versions, uid
        survivors.append(versions[sha])
    assert {archive.retrieve.instance(str(s.sop_instance_uid)).transfer_syntax_uid for s in survivors} == {
        s.transfer_syntax for s in survivors
    }

    text = _output(console)
    assert f"rejected         {len(rejected):>8}" in text
    assert "2 DICOMDIR read" in text
    for path, reason in rejected.items():
        assert f"  {path}: {' '.join(reason.split())}\n" in text


def test_importing_the_same_tree_again_stores_nothing_new(archive: Archive, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    uids: set[str] = set()
    for number, sample in enumerate(samples()):
        if _is_dicomdir(sample.path) or sample.truncated:
            continue
        if sample.sop_instance_uid is not None:
            if sample.sop_instance_uid in uids:
                continue  # one file per UID: otherwise each run replaces the other versions again
            uids.add(sample.sop_instance_uid)
        os.symlink(sample.path, tree / f"{number:03d}_{sample.path.name}")

    first = _import(archive, [tree])
    assert first.stored == len(uids) and first.replaced == first.already_present == 0
    blobs, stats = archive.blob_count(), archive.index.statistics()

    second = _import(archive, [tree])
    assert second.already_present == len(uids)
    assert second.stored == second.replaced == second.kept_existing == 0
    assert _rejected(second).keys() == _rejected(first).keys() != set()
    assert archive.blob_count() == blobs == len(uids)
    assert archive.index.statistics() == stats


# --- DICOMDIR media ----------------------------------------------------------------------------------------
def _records(dicomdir: Path) -> list[tuple[list[str], str]]:
    """(File ID components, Referenced SOP Instance UID) of each record that references a file."""
    found = []
    for record in pydicom.dcmread(dicomdir).DirectoryRecordSequence:
        if "ReferencedFileID" in record:
            file_id = record.ReferencedFileID
            components = [file_id] if isinstance(file_id, str) else list(file_id)
            found.append((components, str(record.ReferencedSOPInstanceUIDInFile)))
    return found


def test_a_dicomdir_imports_the_files_its_records_reference(archive: Archive) -> None:
    records = _records(TINY_ALPHA / "DICOMDIR")
    assert len(records) == 50
    summary = _import(archive, [TINY_ALPHA / "DICOMDIR"])
    assert (summary.stored, summary.rejected, summary.dicomdirs) == (50, [], 1)
    assert summary.files == 50  # not the DICOMDIR, not the README beside it
    for components, uid in records:
        assert archive.read_back_sha256(uid) == _sha256(TINY_ALPHA.joinpath(*components))
    assert archive.index.statistics().instances == 50


def test_a_folder_with_dicomdirs_imports_records_and_the_rest_each_once(archive: Archive) -> None:
    summary = _import(archive, [DICOMDIR_TESTS, TINY_ALPHA])  # the second path overlaps the first
    on_disk = [p for p in DICOMDIR_TESTS.rglob("*") if p.is_file()]
    referenced = _records(DICOMDIR_TESTS / "DICOMDIR") + _records(TINY_ALPHA / "DICOMDIR")
    assert summary.dicomdirs == 2
    assert summary.files == len(on_disk) - 2  # every file once, except the two DICOMDIRs
    assert summary.stored == len(referenced) == 81
    assert set(_rejected(summary)) == {
        *(DICOMDIR_TESTS / name for name in ("DICOMDIR-bigEnd", "DICOMDIR-empty.dcm", "DICOMDIR-implicit")),
        *(
            DICOMDIR_TESTS / name
            for name in ("DICOMDIR-nooffset", "DICOMDIR-nopatient", "DICOMDIR-reordered")
        ),
        DICOMDIR_TESTS / "README.txt",
        TINY_ALPHA / "README",
    }
    for components, uid in referenced:
        folder = TINY_ALPHA if components[0].startswith("PT") else DICOMDIR_TESTS
        assert archive.read_back_sha256(uid) == _sha256(folder.joinpath(*components))
    assert archive.index.statistics().instances == 81


def _lower_case_copy(source: Path, target: Path) -> None:
    """The media as some CD drivers show it: every name in lower case, some with an ISO 9660 version."""
    for path in sorted(source.rglob("*")):
        rel = Path(*(part.lower() for part in path.relative_to(source).parts))
        if path.is_dir():
            (target / rel).mkdir(parents=True)
        else:
            name = rel.name + (";1" if rel.name.endswith("0") else "")
            shutil.copyfile(path, target / rel.parent / name)


def test_dicomdir_file_ids_match_case_insensitively_and_missing_files_are_reported(
    archive: Archive, tmp_path: Path
) -> None:
    media = tmp_path / "cdrom"
    media.mkdir()
    _lower_case_copy(TINY_ALPHA, media)
    assert (media / "dicomdir").is_file() and not (media / "DICOMDIR").exists()
    missing = media / "pt000000" / "st000000" / "se000000" / "im00000a"
    missing.unlink()

    summary = _import(archive, [media])
    rejected = _rejected(summary)
    assert summary.dicomdirs == 1
    assert summary.stored == 49
    expected_missing = media / "PT000000" / "ST000000" / "SE000000" / "IM00000A"
    assert set(rejected) == {expected_missing, media / "readme"}
    assert rejected[expected_missing] == f"referenced by {media / 'dicomdir'} but missing"
    for components, uid in _records(TINY_ALPHA / "DICOMDIR"):
        if components[-1] != "IM00000A":
            assert archive.read_back_sha256(uid) == _sha256(TINY_ALPHA.joinpath(*components))


def test_dicomdir_file_ids_cannot_leave_the_media(archive: Archive, tmp_path: Path) -> None:
    media = tmp_path / "media"
    shutil.copytree(TINY_ALPHA, media)
    (tmp_path / "outside.dcm").write_bytes((PYDICOM_FILES / "CT_small.dcm").read_bytes())
    ds = pydicom.dcmread(media / "DICOMDIR")
    images = [r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r]
    images[0].ReferencedFileID = ["..", "outside.dcm"]
    images[1].ReferencedFileID = ["PT000000", "ST000000/../../../outside.dcm"]
    ds.save_as(media / "DICOMDIR")

    summary = _import(archive, [media / "DICOMDIR"])
    assert summary.stored == 48
    reasons = [reason for path, reason in summary.rejected if path == media / "DICOMDIR"]
    assert reasons == [
        "a directory record names an invalid file ID '..\\\\outside.dcm'",
        "a directory record names an invalid file ID 'PT000000\\\\ST000000/../../../outside.dcm'",
    ]
    assert archive.index.find_instance(str(pydicom.dcmread(tmp_path / "outside.dcm").SOPInstanceUID)) is None


def test_an_unreadable_dicomdir_is_reported_and_the_folder_still_imported(
    archive: Archive, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "DICOMDIR").write_text("not a DICOMDIR\n")
    shutil.copyfile(PYDICOM_FILES / "CT_small.dcm", media / "CT_small.dcm")
    summary = _import(archive, [media])
    assert summary.stored == 1 and summary.dicomdirs == 0
    assert _rejected(summary)[media / "DICOMDIR"].startswith("cannot read the DICOMDIR: ")


# --- duplicates --------------------------------------------------------------------------------------------
SAME_UID = (PYDICOM_FILES / "MR_small.dcm", PYDICOM_FILES / "MR_small_bigendian.dcm")


def test_a_duplicate_uid_with_other_bytes_replaces(archive: Archive) -> None:
    first, second = SAME_UID
    uid = str(pydicom.dcmread(first).SOPInstanceUID)
    assert uid == str(pydicom.dcmread(second).SOPInstanceUID) and _sha256(first) != _sha256(second)

    summary = _import(archive, [first, second], workers=1)  # one thread: first, then second
    assert (summary.stored, summary.replaced, summary.rejected) == (1, 1, [])
    assert archive.read_back_sha256(uid) == _sha256(second)
    assert archive.blob_count() == 1

    again = _import(archive, [first])
    assert (again.stored, again.replaced) == (0, 1)
    assert archive.read_back_sha256(uid) == _sha256(first)


def test_duplicate_policies_keep_and_reject(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    first, second = SAME_UID
    uid = str(pydicom.dcmread(first).SOPInstanceUID)
    keep = _archive(index, blob_store, DuplicatePolicy.KEEP)
    _import(keep, [first])
    assert _import(keep, [second]).kept_existing == 1
    assert keep.read_back_sha256(uid) == _sha256(first)

    reject = _archive(index, blob_store, DuplicatePolicy.REJECT)
    summary = _import(reject, [second])
    assert summary.stored == summary.replaced == 0
    assert "duplicate policy: reject" in _rejected(summary)[second]
    assert reject.read_back_sha256(uid) == _sha256(first)
    assert reject.blob_count() == 1


# --- files that are not DICOM, unreadable, or odd ----------------------------------------------------------
def test_files_that_are_not_dicom_are_rejected_with_the_reason(archive: Archive, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "README.TXT").write_text("Patient CD. Insert into a DICOM viewer.\n")
    jpeg = next(generate_frames(pydicom.dcmread(PYDICOM_FILES / "SC_rgb_jpeg_gdcm.dcm").PixelData))
    assert jpeg[:2] == b"\xff\xd8"  # a real JPEG, taken out of a DICOM object
    (folder / "photo.jpg").write_bytes(jpeg)
    (folder / "cut.dcm").write_bytes((PYDICOM_FILES / "CT_small.dcm").read_bytes()[:300])
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "[not] markup.dcm").write_bytes(b"DICM")
    shutil.copyfile(PYDICOM_FILES / "CT_small.dcm", folder / "good.dcm")

    console = _console()
    summary = _import(archive, [folder], console=console)
    rejected = _rejected(summary)
    assert summary.stored == 1
    assert set(rejected) == {folder / n for n in ("README.TXT", "photo.jpg", "cut.dcm", "empty.dcm")} | {
        folder / "[not] markup.dcm"
    }
    assert rejected[folder / "README.TXT"].startswith("not a DICOM Part 10 object")
    assert rejected[folder / "photo.jpg"].startswith("not a DICOM Part 10 object")
    assert re.fullmatch(r"SOPClassUID is missing|truncated object: .+", rejected[folder / "cut.dcm"])
    assert rejected[folder / "empty.dcm"] == "empty object"
    text = _output(console)
    assert f"  {folder / '[not] markup.dcm'}: not a DICOM Part 10 object" in text
    assert "Traceback" not in text
    assert archive.blob_count() == 1 and not any((archive.blobs.root / ".tmp").iterdir())


def test_truncated_objects_are_rejected(archive: Archive, tmp_path: Path) -> None:
    complete = PYDICOM_FILES / "CT_small.dcm"
    data = complete.read_bytes()
    uid = str(pydicom.dcmread(complete).SOPInstanceUID)
    _import(archive, [complete])
    cuts = tmp_path / "cuts"  # apart from the archive's own data directory
    cuts.mkdir()
    for cut in (3000, 20000, len(data) - 1):  # in the header after the UIDs; in the pixel data; one byte
        (cuts / f"cut{cut}.dcm").write_bytes(data[:cut])
    shutil.copyfile(PYDICOM_FILES / "MR_truncated.dcm", cuts / "MR_truncated.dcm")  # short Pixel Data
    too_short = DATA_STORE_FILES / "emri_small_jpeg_2k_lossless_too_short.dcm"  # no Sequence Delimiter
    shutil.copyfile(too_short, cuts / too_short.name)
    summary = _import(archive, [cuts])
    assert summary.accepted == 0 and len(summary.rejected) == 5
    assert archive.read_back_sha256(uid) == hashlib.sha256(data).hexdigest()


def test_unreadable_files_special_files_and_broken_links_are_reported(
    archive: Archive, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(PYDICOM_FILES / "CT_small.dcm", folder / "good.dcm")
    os.symlink(folder / "gone.dcm", folder / "broken.dcm")
    os.mkfifo(folder / "pipe.dcm")  # reading it would block forever
    io_error = Path("/proc/self/mem")  # a regular file that every read fails on (EIO at offset 0)
    summary = _import(archive, [folder, io_error, tmp_path / "does-not-exist"])
    rejected = _rejected(summary)
    assert summary.stored == 1
    assert rejected[folder / "broken.dcm"] == "broken symbolic link"
    assert rejected[folder / "pipe.dcm"] == "not a regular file"
    assert rejected[io_error] == "cannot read the file: Input/output error"
    assert rejected[tmp_path / "does-not-exist"] == "cannot read: No such file or directory"


def _as_unprivileged_user(fn: Callable[[], str]) -> str:
    """Run ``fn`` in a forked child without root's privileges (root reads files whatever their mode)."""
    if os.geteuid() != 0:
        return fn()
    import pwd

    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, run, report, and leave without running the parent's cleanup
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.write(write_end, fn().encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        output = reader.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged import failed"
    return output


def test_a_file_without_read_permission_is_rejected(archive: Archive) -> None:
    # A folder of its own in /tmp that the unprivileged user may enter (pytest's folders are root's only).
    folder = Path(tempfile.mkdtemp(prefix="lightbox-locked-"))
    try:
        folder.chmod(0o755)
        locked = folder / "locked.dcm"
        shutil.copyfile(PYDICOM_FILES / "CT_small.dcm", locked)
        locked.chmod(0)

        def run() -> str:
            return repr(_rejected(_import(archive, [folder])))

        assert _as_unprivileged_user(run) == repr({locked: "cannot read the file: Permission denied"})
    finally:
        shutil.rmtree(folder)


def test_the_import_stops_when_the_archive_cannot_store(archive: Archive, tmp_path: Path) -> None:
    pending = archive.blobs.root / ".tmp"
    shutil.rmtree(pending)
    pending.write_text("a file where the pending folder belongs: every write fails")
    summary = _import(archive, [PYDICOM_FILES], workers=2)
    assert summary.stopped_reason is not None and summary.stopped_reason.startswith("cannot store now")
    assert 1 <= summary.files <= 4  # what was in flight (2 per worker) when the first failure came back
    assert summary.not_imported == len(scan([PYDICOM_FILES]).files) - summary.files > 100
    assert summary.accepted == 0 and archive.index.statistics().instances == 0


# --- the walk ----------------------------------------------------------------------------------------------
def test_the_walk_is_ordered_follows_links_once_and_escapes_loops(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for rel in ("b/2.dcm", "b/1.dcm", "a/c/3.dcm", "0.dcm"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(b"x")
    os.symlink(tree, tree / "a" / "loop")  # back to the top
    os.symlink(tree / "b", tree / "z")  # the same folder under another name
    os.symlink(tree / "0.dcm", tree / "b" / "link.dcm")  # the same file under another name
    result = scan([tree, tree / "b", tree / "0.dcm"])
    assert [Path(p).relative_to(tree).as_posix() for p, _ in result.files] == [
        "0.dcm",
        "a/c/3.dcm",
        "b/1.dcm",
        "b/2.dcm",
    ]
    assert result.rejected == []


# --- bounded parallelism and Ctrl-C -----------------------------------------------------------------------
def test_run_bounded_pulls_items_lazily_and_bounds_the_work_in_flight() -> None:
    lock = threading.Lock()
    pulled = completed = worst_in_flight = running = peak_running = 0

    def items() -> Iterator[int]:
        nonlocal pulled, worst_in_flight
        for i in range(2000):
            pulled += 1
            worst_in_flight = max(worst_in_flight, pulled - completed)
            yield i

    def work(i: int) -> int:
        nonlocal running, peak_running
        with lock:
            running += 1
            peak_running = max(peak_running, running)
        time.sleep(0.0002)
        with lock:
            running -= 1
        return i * i

    results: dict[int, int] = {}

    def done(i: int, r: int) -> bool:
        nonlocal completed
        completed += 1
        results[i] = r
        return True

    assert run_bounded(work, items(), done, workers=3, max_in_flight=6) is False
    assert results == {i: i * i for i in range(2000)}
    assert worst_in_flight == 6 and peak_running <= 3

    finished: list[int] = []

    def stop_after_10(i: int, r: int) -> bool:
        finished.append(i)
        return len(finished) < 10

    run_bounded(work, iter(range(2000)), stop_after_10, workers=2, max_in_flight=4)
    assert 10 <= len(finished) <= 10 + 3  # what was in flight still finishes; nothing new starts


def test_ctrl_c_stops_cleanly_with_a_summary(archive: Archive) -> None:
    main = threading.get_ident()
    seen = 0

    def interrupt_after_20(event: InstanceStored) -> None:
        nonlocal seen
        seen += 1
        if seen == 20:
            signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C, delivered to the thread that runs the import

    archive.events.subscribe(InstanceStored, interrupt_after_20)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    console = _console()
    try:
        summary = _import(archive, [DATA_STORE_FILES, PYDICOM_FILES], workers=2, console=console)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert summary.interrupted
    assert summary.accepted >= 20
    assert summary.not_imported > 100  # 242 files found; about 20 done
    assert summary.files + summary.not_imported == len(scan([DATA_STORE_FILES, PYDICOM_FILES]).files)
    assert archive.index.statistics().instances == archive.blob_count() > 0  # nothing half-written
    assert not any((archive.blobs.root / ".tmp").iterdir())
    assert f"interrupted: {summary.not_imported} files not imported" in _output(console)


# --- output ------------------------------------------------------------------------------------------------
def test_progress_is_drawn_on_a_terminal_and_the_summary_always_printed(archive: Archive) -> None:
    progress = Console(file=io.StringIO(), force_terminal=True, width=120)
    console = _console()
    summary = run_import(
        archive.ingest,
        [TINY_ALPHA],
        workers=2,
        show_progress=True,
        console=console,
        progress_console=progress,
    )
    drawn = _output(progress)
    assert "importing" in drawn and f"{summary.files}/{summary.files}" in drawn
    text = _output(console)
    assert text.splitlines()[:5] == [
        "stored                 50",
        "already present         0",
        "replaced                0",
        "kept existing           0",
        "rejected                1",
    ]
    assert "51 files, " in text and "; 1 DICOMDIR read" in text

    quiet = Console(file=io.StringIO(), force_terminal=True)
    run_import(
        archive.ingest,
        [TINY_ALPHA],
        workers=2,
        show_progress=False,
        console=_console(),
        progress_console=quiet,
    )
    assert _output(quiet) == ""
    not_a_terminal = Console(file=io.StringIO(), force_terminal=False)
    run_import(
        archive.ingest,
        [TINY_ALPHA],
        workers=2,
        show_progress=True,
        console=_console(),
        progress_console=not_a_terminal,
    )
    assert _output(not_a_terminal) == ""
