"""``lightbox import`` then ``lightbox export`` as real processes: plain copies are byte-identical, and
de-identified ones keep no trace of who the patient was, yet read back with the same pixels."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, generate_uid

from tests.support.dicom import make_dataset, to_part10
from tests.support.server import lightbox_command

PATIENT_NAME, PATIENT_ID, BIRTH_DATE = "Smith^John", "MRN-4711-SMITH", "19610704"
INSTITUTION = "Springfield General Hospital"
_SUMMARY = re.compile(r"^exported (\d+) instances, ([\d.]+ (?:bytes|kB|MB)), to (.+?)(, de-identified)?$")


@dataclass
class Study:
    data: Path
    uid: str
    series: list[str]
    uids: list[str]  # every UID of the study: study, series, instances, frame of reference
    files: dict[str, bytes]  # SOP Instance UID -> the Part 10 bytes imported
    pixels: dict[int, bytes]  # Instance Number -> Pixel Data


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lightbox_command(*map(str, args)),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LIGHTBOX_LOG_LEVEL": "ERROR"},
    )


def _export(study: Study, dest: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return _run("export", "--data-dir", study.data, dest, *args)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """One CT study of two series (three slices, one localizer), imported with ``lightbox import``."""
    root = tmp_path_factory.mktemp("export")
    source, data = root / "in", root / "data"
    source.mkdir()
    study_uid, frame = generate_uid(), generate_uid()
    series = [generate_uid(), generate_uid()]
    files: dict[str, bytes] = {}
    pixels: dict[int, bytes] = {}
    localizer = generate_uid()
    for number, (series_uid, sop) in enumerate(
        [(series[0], localizer), (series[1], generate_uid()), (series[1], generate_uid()), (series[1], None)],
        start=1,
    ):
        ds = make_dataset(
            StudyInstanceUID=study_uid,
            SeriesInstanceUID=series_uid,
            SOPInstanceUID=sop or generate_uid(),
            FrameOfReferenceUID=frame,
            InstanceNumber=number,
            PatientName=PATIENT_NAME,
            PatientID=PATIENT_ID,
            PatientBirthDate=BIRTH_DATE,
            InstitutionName=INSTITUTION,
            PixelData=bytes([number]) * 32,
        )
        if series_uid == series[1]:  # slices point to their localizer (PS3.3 C.7.6.1.1.3)
            ref = Dataset()
            ref.ReferencedSOPClassUID = CTImageStorage
            ref.ReferencedSOPInstanceUID = localizer
            ds.ReferencedImageSequence = Sequence([ref])
        ds.add_new(0x00090010, "LO", "ACME")
        ds.add_new(0x00091001, "LO", f"{PATIENT_ID} {PATIENT_NAME}")
        files[ds.SOPInstanceUID] = to_part10(ds)
        pixels[number] = ds.PixelData
        (source / f"{number}.dcm").write_bytes(files[ds.SOPInstanceUID])
    imported = _run("import", "--data-dir", data, source, "--quiet")
    assert imported.returncode == 0, imported.stderr
    return Study(data, study_uid, series, [study_uid, frame, *series, *files], files, pixels)


def _exported(dest: Path) -> dict[Path, bytes]:
    return {p.relative_to(dest): p.read_bytes() for p in sorted(dest.rglob("*")) if p.is_file()}


def _summary(result: subprocess.CompletedProcess[str]) -> re.Match[str]:
    assert result.returncode == 0, result.stderr
    match = _SUMMARY.match(result.stdout.strip().splitlines()[0])
    assert match is not None, result.stdout
    return match


def test_plain_export_is_byte_identical(study: Study, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    summary = _summary(_export(study, dest, "--study", study.uid))
    assert summary.group(1) == "4" and summary.group(3) == str(dest) and summary.group(4) is None

    exported = _exported(dest)
    assert len(exported) == 4
    for sop, data in study.files.items():
        (path,) = [p for p in exported if p.stem == sop]
        series = pydicom.dcmread(io.BytesIO(data)).SeriesInstanceUID
        assert path == Path(study.uid, series, f"{sop}.dcm") and exported[path] == data
    assert not list(dest.rglob("*.tmp"))

    again = _export(study, dest, "--study", study.uid)
    assert _summary(again).group(1) == "0" and "; 4 were there already" in again.stdout


def test_a_different_file_in_the_way_is_not_overwritten(study: Study, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    assert _export(study, dest, "--study", study.uid).returncode == 0
    victim = next(dest.rglob("*.dcm"))
    victim.write_bytes(b"someone else's file")
    result = _export(study, dest, "--study", study.uid)
    assert result.returncode == 1
    assert f"error: {victim} exists with other content" in result.stderr
    assert "Traceback" not in result.stderr
    assert victim.read_bytes() == b"someone else's file"


def test_deidentified_export_leaves_no_trace_of_the_patient(study: Study, tmp_path: Path) -> None:
    dest = tmp_path / "anon"
    summary = _summary(_export(study, dest, "--study", study.uid, "--deidentify"))
    assert summary.group(1) == "4" and summary.group(4) == ", de-identified"

    exported = _exported(dest)
    assert len(exported) == 4
    secrets = [PATIENT_ID, BIRTH_DATE, INSTITUTION, *PATIENT_NAME.split("^"), *study.uids]
    by_number: dict[int, Dataset] = {}
    for path, data in exported.items():
        for secret in secrets:
            assert secret.encode() not in data, (path, secret)
        ds = pydicom.dcmread(dest / path)  # a valid Part 10 file, read without force
        assert path == Path(ds.StudyInstanceUID, ds.SeriesInstanceUID, f"{ds.SOPInstanceUID}.dcm")
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.PatientID.startswith("ANON-") and ds.PatientName == ds.PatientID
        assert not any(element.tag.is_private for element in ds.iterall())
        by_number[int(ds.InstanceNumber)] = ds
    for number, ds in by_number.items():
        assert ds.PixelData == study.pixels[number]
    # one study, its two series, one frame of reference, one patient, and references that still resolve
    assert len({ds.StudyInstanceUID for ds in by_number.values()}) == 1
    assert len({ds.SeriesInstanceUID for ds in by_number.values()}) == 2
    assert len({ds.FrameOfReferenceUID for ds in by_number.values()}) == 1
    assert len({ds.PatientID for ds in by_number.values()}) == 1
    for number in (2, 3, 4):
        assert by_number[number].ReferencedImageSequence[0].ReferencedSOPInstanceUID == (
            by_number[1].SOPInstanceUID
        )
    # the audit trail says what left the archive, under the stored UIDs
    listed = _run("audit", "list", "--data-dir", study.data, "--action", "export", "--json")
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    ours = [r for r in records if str(dest) in r["detail"]]
    assert len(ours) == 1 and ours[0]["study_instance_uid"] == study.uid and ours[0]["instances"] == 4
    assert ours[0]["patient_id"] == PATIENT_ID and "de-identified" in ours[0]["detail"]


def test_a_key_file_gives_the_same_pseudonyms_each_time(study: Study, tmp_path: Path) -> None:
    key = tmp_path / "export.key"
    key.write_text(os.urandom(32).hex() + "\n")
    first, second, keyless = tmp_path / "first", tmp_path / "second", tmp_path / "keyless"
    assert _export(study, first, "--patient", PATIENT_ID, "--deidentify", "--key-file", key).returncode == 0
    assert _export(study, second, "--study", study.uid, "--deidentify", "--key-file", key).returncode == 0
    assert _export(study, keyless, "--study", study.uid, "--deidentify").returncode == 0

    assert _exported(first) == _exported(second)  # same names, same bytes
    assert set(_exported(keyless)).isdisjoint(_exported(first))  # a random key: other UIDs
    patient_ids = {pydicom.dcmread(p).PatientID for d in (first, second) for p in d.rglob("*.dcm")}
    assert len(patient_ids) == 1


def test_series_selection_and_overlapping_selections(study: Study, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    result = _export(study, dest, "--series", study.series[1], "--study", study.uid)
    summary = _summary(result)
    assert summary.group(1) == "4" and "; 3 were there already" in result.stdout  # the series came twice
    assert len(_exported(dest)) == 4


def test_errors_end_in_one_line_and_a_non_zero_exit(study: Study, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    unknown = _export(study, dest, "--study", study.uid, "--study", "1.2.3.4")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: no study 1.2.3.4 in the archive"
    assert not dest.exists()  # checked before anything was written

    bad = _export(study, dest, "--series", "1.2..3")
    assert (
        bad.returncode == 1 and bad.stderr.strip() == "error: SeriesInstanceUID '1.2..3' is not a valid UID"
    )

    nobody = _export(study, dest, "--patient", "NOBODY")
    assert nobody.returncode == 1 and nobody.stderr.strip() == "error: no patient NOBODY in the archive"

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    not_writable = _export(study, blocked / "out", "--study", study.uid)
    assert not_writable.returncode == 1 and not_writable.stderr.startswith(f"error: cannot write {blocked}")

    nothing = _export(study, dest)
    assert nothing.returncode == 2 and "name what to export" in nothing.stderr
    key_alone = _export(study, dest, "--study", study.uid, "--key-file", __file__)
    assert key_alone.returncode == 2 and "--key-file goes with --deidentify" in key_alone.stderr
    short = tmp_path / "short.key"
    short.write_text("abc\n")
    weak = _export(study, dest, "--study", study.uid, "--deidentify", "--key-file", short)
    assert weak.returncode == 2 and "a key needs at least 16" in weak.stderr
    for result in (unknown, bad, nobody, not_writable, nothing, key_alone, weak):
        assert "Traceback" not in result.stderr
