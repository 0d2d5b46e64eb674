"""The export service on every Index backend: what it writes, what it refuses, and what it reports."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from lightbox.domain.actor import Actor
from lightbox.domain.errors import Conflict, NotFound
from lightbox.domain.levels import Level
from lightbox.index.base import DuplicatePolicy
from lightbox.index.sql import SqlIndex
from lightbox.services.events import EventBus, InstancesExported
from lightbox.services.export import ExportService
from lightbox.services.ingest import IngestService
from lightbox.services.retrieve import RetrieveService
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.dicom import part10

KEY = b"a key of thirty-two bytes, fixed"


@pytest.fixture
def service(index: SqlIndex, blob_store: FileSystemBlobStore) -> tuple[ExportService, list[object], str, str]:
    events = EventBus()
    ingest = IngestService(index, blob_store, events, DuplicatePolicy.REPLACE)
    study, series = generate_uid(), generate_uid()
    for number in range(3):
        data = part10(
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            InstanceNumber=number,
            BurnedInAnnotation="YES" if number == 0 else "NO",
        )
        ingest.ingest([data], "test")
    ingest.ingest([part10()], "test")  # another study of the same patient
    published: list[object] = []
    events.subscribe(InstancesExported, published.append)
    return ExportService(RetrieveService(index, blob_store, events), events), published, study, series


def test_export_writes_files_and_reports_them(
    service: tuple[ExportService, list[object], str, str], tmp_path: Path
) -> None:
    export, published, study, series = service
    result = export.export(
        Level.SERIES, {"SeriesInstanceUID": [series]}, tmp_path / "out", deidentify=False, source="test"
    )
    files = sorted((tmp_path / "out").rglob("*"))
    assert [p.relative_to(tmp_path / "out").parts[:2] for p in files if p.is_file()] == [(study, series)] * 3
    assert (result.instances, result.written, result.study_instance_uids) == (3, 3, (study,))
    assert result.size == sum(p.stat().st_size for p in files if p.is_file())
    assert published == [
        InstancesExported(
            Actor("test"), "SERIES", series, (study,), 3, False, str(tmp_path / "out"), result.size
        )
    ]


def test_every_selected_value_is_checked_before_anything_is_written(
    service: tuple[ExportService, list[object], str, str], tmp_path: Path
) -> None:
    export, published, study, _ = service
    with pytest.raises(NotFound, match=r"no study 1\.2\.3 in the archive"):
        export.export(
            Level.STUDY,
            {"StudyInstanceUID": [study, "1.2.3"]},
            tmp_path / "out",
            deidentify=False,
            source="t",
        )
    assert not (tmp_path / "out").exists() and published == []


def test_deidentified_exports_with_one_key_agree(
    service: tuple[ExportService, list[object], str, str], tmp_path: Path
) -> None:
    export, published, _, _ = service
    results = [
        export.export(
            Level.PATIENT, {"PatientID": ["PID-1"]}, tmp_path / name, deidentify=True, source="t", key=KEY
        )
        for name in ("a", "b")
    ]
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*.dcm")}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*.dcm")}
    assert a == b and len(a) == 4
    assert all(r.burned_in == 1 and r.instances == 4 for r in results)
    assert {pydicom.dcmread(tmp_path / "a" / p).PatientIdentityRemoved for p in a} == {"YES"}
    assert [e.deidentified for e in published if isinstance(e, InstancesExported)] == [True, True]


def test_a_failed_export_reports_what_it_wrote_and_overwrites_nothing(
    service: tuple[ExportService, list[object], str, str], tmp_path: Path
) -> None:
    export, published, study, series = service
    dest = tmp_path / "out"
    selection = {"SeriesInstanceUID": [series]}
    last = list(export.retrieve.resolve(Level.SERIES, selection))[-1]
    occupied = dest / study / series / f"{last.sop_instance_uid}.dcm"
    occupied.parent.mkdir(parents=True)
    occupied.write_bytes(b"not ours")

    with pytest.raises(Conflict, match="exists with other content"):
        export.export(Level.SERIES, selection, dest, deidentify=False, source="t")
    assert occupied.read_bytes() == b"not ours"
    assert sorted(p.name for p in occupied.parent.iterdir()) == sorted(
        f"{loc.sop_instance_uid}.dcm" for loc in export.retrieve.resolve(Level.SERIES, selection)
    )  # the two before it written, no temporary file left
    (event,) = published
    assert isinstance(event, InstancesExported) and event.instances == 2
