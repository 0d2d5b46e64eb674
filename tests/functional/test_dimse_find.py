"""``lightbox serve`` as a C-FIND SCP (PS3.4 C.4.1), against pynetdicom and dcmtk's findscu."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dcmtk import ENV, require
from tests.support.dicom import part10
from tests.support.server import RunningServer, running_server

STUDY_A, STUDY_B, SERIES_B = generate_uid(), generate_uid(), generate_uid()
MANY = 600  # instances in study B, so that a C-CANCEL lands mid-result


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("find") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.ingest.ingest(
        [part10(StudyInstanceUID=STUDY_A, PatientID="PID-A", PatientName="Doe^Anna", StudyDate="20240105")],
        "t",
    )
    for i in range(MANY):
        archive.ingest.ingest(
            [
                part10(
                    StudyInstanceUID=STUDY_B,
                    SeriesInstanceUID=SERIES_B,
                    PatientID="PID-B",
                    PatientName="Doe^Björn",
                    StudyDate="20240210",
                    InstanceNumber=i,
                )
            ],
            "t",
        )
    archive.close()
    with running_server(data, aes=["PYNETDICOM", "FINDSCU"]) as running:
        yield running


def _find(server: RunningServer, model: str, identifier: Dataset) -> tuple[list[Dataset], int]:
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(model)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
    assert assoc.is_established
    matches, final = [], -1
    for status, found in assoc.send_c_find(identifier, model):
        if status.Status in (0xFF00, 0xFF01):
            matches.append(found)
        else:
            final = status.Status
    assoc.release()
    return matches, final


def _study_query(**keys: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    ds.PatientName = ""
    ds.NumberOfStudyRelatedInstances = ""
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_study_level_matching(server: RunningServer) -> None:
    matches, final = _find(
        server, StudyRootQueryRetrieveInformationModelFind, _study_query(PatientID="PID-B")
    )
    assert final == 0
    assert [
        (m.StudyInstanceUID, str(m.PatientName), int(m.NumberOfStudyRelatedInstances)) for m in matches
    ] == [(STUDY_B, "Doe^Björn", MANY)]
    assert matches[0].SpecificCharacterSet == "ISO_IR 192" and matches[0].QueryRetrieveLevel == "STUDY"
    matches, _ = _find(server, StudyRootQueryRetrieveInformationModelFind, _study_query(PatientName="Doe*"))
    assert {m.StudyInstanceUID for m in matches} == {STUDY_A, STUDY_B}
    matches, _ = _find(
        server, StudyRootQueryRetrieveInformationModelFind, _study_query(StudyDate="20240101-20240131")
    )
    assert [m.StudyInstanceUID for m in matches] == [STUDY_A]


def test_patient_root_patient_level(server: RunningServer) -> None:
    ds = Dataset()
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientID = "PID-A"
    ds.PatientName = ""
    matches, final = _find(server, PatientRootQueryRetrieveInformationModelFind, ds)
    assert final == 0 and [str(m.PatientName) for m in matches] == ["Doe^Anna"]


def test_bad_identifier_is_a_failure_status(server: RunningServer) -> None:
    ds = Dataset()
    ds.QueryRetrieveLevel = "PATIENT"  # not in the Study Root model
    matches, final = _find(server, StudyRootQueryRetrieveInformationModelFind, ds)
    assert matches == [] and final == 0xA900


def test_cancel_stops_the_matches(server: RunningServer) -> None:
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.StudyInstanceUID = STUDY_B
    ds.SeriesInstanceUID = SERIES_B
    ds.SOPInstanceUID = ""
    responses = assoc.send_c_find(ds, StudyRootQueryRetrieveInformationModelFind, msg_id=7)
    pending, final = 0, -1
    for status, _ in responses:
        if status.Status == 0xFF00:
            pending += 1
            if pending == 1:
                assoc.send_c_cancel(7, 1)
        else:
            final = status.Status
    assoc.release()
    assert final == 0xFE00 and 0 < pending < MANY


def test_findscu(server: RunningServer) -> None:
    findscu = require("findscu")
    result = subprocess.run(
        [
            findscu,
            "-S",
            "-aec",
            "LIGHTBOX",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "PatientID=PID-A",
            "-k",
            "StudyInstanceUID",
            "-k",
            "StudyDate",
            "127.0.0.1",
            str(server.dicom_port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert STUDY_A in result.stdout + result.stderr and "20240105" in result.stdout + result.stderr


def test_extended_negotiation_fuzzy_names(server: RunningServer) -> None:
    """PS3.4 C.5.1.1: with fuzzy semantic matching agreed, person names match whatever their case."""
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation

    def names(ext_neg: list[SOPClassExtendedNegotiation]) -> tuple[list[str], bytes | None]:
        ae = AE(ae_title="PYNETDICOM")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX", ext_neg=ext_neg)
        agreed = next(
            (
                i.service_class_application_information
                for i in assoc.acceptor.user_information
                if isinstance(i, SOPClassExtendedNegotiation)
            ),
            None,
        )
        found = [
            str(m.PatientName)
            for status, m in assoc.send_c_find(
                _study_query(PatientName="doe^anna"), StudyRootQueryRetrieveInformationModelFind
            )
            if status.Status == 0xFF00
        ]
        assoc.release()
        return found, agreed

    item = SOPClassExtendedNegotiation()
    item.sop_class_uid = StudyRootQueryRetrieveInformationModelFind
    item.service_class_application_information = b"\x01\x01\x01\x01"  # relational, date-time, fuzzy, timezone
    found, agreed = names([item])
    assert agreed == b"\x01\x01\x01\x00"  # everything but timezone adjustment
    assert found == ["Doe^Anna"]
    assert names([])[0] == []  # exact matching without the negotiation


FINDSCU_MATCHING = [
    # (PS3.4 C.2.2.2 matching type, the query's keys, the studies it finds)
    ("single value", ["PatientID=PID-A"], {"A"}),
    ("universal", ["PatientID"], {"A", "B"}),
    ("wildcard *", ["PatientName=Doe^A*"], {"A"}),
    ("wildcard ?", ["PatientID=PID-?"], {"A", "B"}),
    ("range", ["StudyDate=20240201-20240301"], {"B"}),
    ("open range", ["StudyDate=-20240131"], {"A"}),
    ("UID list", [f"StudyInstanceUID={STUDY_A}\\{STUDY_B}"], {"A", "B"}),
    ("no match", ["PatientID=NOBODY"], set()),
]


@pytest.mark.parametrize(("kind", "keys", "expected"), FINDSCU_MATCHING, ids=[c[0] for c in FINDSCU_MATCHING])
def test_findscu_matching_types(
    server: RunningServer, tmp_path: Path, kind: str, keys: list[str], expected: set[str]
) -> None:
    findscu = require("findscu")
    # The answers are read from the files findscu extracts them to (-X), not from its log output
    args = [findscu, "-S", "-X", "-od", str(tmp_path), "-aec", "LIGHTBOX", "-k", "QueryRetrieveLevel=STUDY"]
    args += ["-k", "StudyInstanceUID"]
    for key in keys:
        if not key.startswith("StudyInstanceUID"):
            args += ["-k", key]
        else:
            args[-1] = key
    result = subprocess.run(
        [*args, "127.0.0.1", str(server.dicom_port)], capture_output=True, text=True, timeout=60, env=ENV
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answered = {str(pydicom.dcmread(p).StudyInstanceUID) for p in tmp_path.glob("rsp*.dcm")}
    found = {name for name, uid in (("A", STUDY_A), ("B", STUDY_B)) if uid in answered}
    assert found == expected, kind
    assert answered <= {STUDY_A, STUDY_B}
