"""The query service on every Index backend: every matching type of PS3.4 C.2.2.2 at every level.

A small archive of crafted objects is stored through the ingest service (names with component groups and
several character sets, values holding SQL's own % and _, empty and absent values, multi-valued attributes,
dates and times on range boundaries, sequences), then queried through ``QueryService``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import CTImageStorage, MRImageStorage, UltrasoundImageStorage, generate_uid

from lightbox.domain.actor import Actor
from lightbox.domain.errors import InvalidQuery
from lightbox.domain.levels import Level, Model
from lightbox.formats.json_to_dicom import encode_dataset
from lightbox.index.sql import SqlIndex
from lightbox.services.events import EventBus, StudyQueried
from lightbox.services.ingest import IngestService
from lightbox.services.query import QueryOptions, QueryService
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.dicom import make_dataset, to_part10

PATIENT_NAME, PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID = (
    "00100010",
    "00100020",
    "0020000D",
    "0020000E",
    "00080018",
)
YAMADA = "Yamada^Tarou=山田^太郎=やまだ^たろう"


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "L"
    item.CodeMeaning = meaning
    return item


def _request(requested: str, step: str) -> Dataset:
    item = Dataset()
    item.RequestedProcedureID = requested
    item.ScheduledProcedureStepID = step
    return item


@dataclass
class Archive:
    query: QueryService
    events: EventBus
    studies: dict[str, str]  # S1..S5 -> Study Instance UID
    series: dict[str, str]  # S1.1, S1.2, S2.1, S3.1, S4.1, S5.1 -> Series Instance UID
    instances: dict[str, str]  # I1..I7 -> SOP Instance UID

    def find(self, level: Level, identifier: Dataset, **kwargs: Any) -> list[dict[str, Any]]:
        return list(self.query.find(level, identifier, **kwargs))

    def studies_of(self, results: list[dict[str, Any]]) -> list[str]:
        names = {uid: name for name, uid in self.studies.items()}
        return [names[r[STUDY_UID]["Value"][0]] for r in results]

    def series_of(self, results: list[dict[str, Any]]) -> list[str]:
        names = {uid: name for name, uid in self.series.items()}
        return [names[r[SERIES_UID]["Value"][0]] for r in results]

    def instances_of(self, results: list[dict[str, Any]]) -> list[str]:
        names = {uid: name for name, uid in self.instances.items()}
        return [names[r[SOP_UID]["Value"][0]] for r in results]

    def study_search(self, **keys: Any) -> list[str]:
        return self.studies_of(self.find(Level.STUDY, q(**keys)))


def q(**keys: Any) -> Dataset:
    """An identifier: keyword=value, a value of None makes an empty (return) key."""
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, "" if value is None else value)
    return ds


@pytest.fixture
def archive(index: SqlIndex, blob_store: FileSystemBlobStore) -> Archive:
    events = EventBus()
    ingest = IngestService(index, blob_store, EventBus())
    studies = {name: str(generate_uid()) for name in ("S1", "S2", "S3", "S4", "S5")}
    series = {name: str(generate_uid()) for name in ("S1.1", "S1.2", "S2.1", "S3.1", "S4.1", "S5.1")}
    instances: dict[str, str] = {}

    def store(name: str, study: str, series_name: str, **attrs: Any) -> None:
        ds = make_dataset(StudyInstanceUID=studies[study], SeriesInstanceUID=series[series_name], **attrs)
        instances[name] = ds.SOPInstanceUID
        ingest.ingest([to_part10(ds)], "test")

    doe = {
        "PatientName": "Doe^John",
        "PatientID": "PID-1",
        "PatientSex": "M",
        "PatientBirthTime": "0600",
        "OtherPatientNames": ["Doe^Johnny", "Roe^J"],
    }
    s1 = {
        "StudyDate": "20240102",
        "StudyTime": "101500",
        "AccessionNumber": "A_1",
        "StudyDescription": "CT HEAD",
        "ReferringPhysicianName": "Who^Doctor",
        "AdmittingDiagnosesDescription": "Fracture of skull",
        "ProcedureCodeSequence": Sequence([_code("P1", "Head CT"), _code("P2", "Chest CT")]),
    }
    ct_series = {
        "Modality": "CT",
        "SeriesNumber": 1,
        "ProtocolName": "Head routine",
        "RequestAttributesSequence": Sequence([_request("RP1", "SPS1"), _request("RP2", "SPS2")]),
    }
    store(
        "I1",
        "S1",
        "S1.1",
        **doe,
        **s1,
        **ct_series,
        InstanceNumber=1,
        ImageType=["ORIGINAL", "PRIMARY", "AXIAL"],
    )
    store("I2", "S1", "S1.1", **doe, **s1, **ct_series, InstanceNumber=2, ImageType=["DERIVED", "SECONDARY"])
    store(
        "I3",
        "S1",
        "S1.2",
        **doe,
        **s1,
        Modality="MR",
        SeriesNumber=2,
        ProtocolName="Brain 50% dose",
        SOPClassUID=MRImageStorage,
        InstanceNumber=3,
    )
    store(
        "I4",
        "S2",
        "S2.1",
        **doe,
        StudyDate="20240103",
        StudyTime="000000",
        AccessionNumber="AB1",
        StudyDescription="MR KNEE",
        ReferringPhysicianName="",
        Modality="MR",
        SOPClassUID=MRImageStorage,
    )
    store(
        "I5",
        "S3",
        "S3.1",
        SpecificCharacterSet="ISO_IR 100",
        PatientName="Müller^Jürgen",
        PatientID="50%",
        PatientSex="M",
        StudyDate="20231231",
        StudyTime="235959.999999",
        AccessionNumber="50%",
        StudyDescription="",
        ReferringPhysicianName="Dr^Åsa",
        Modality="US",
        SeriesDate="20231231",
        SeriesTime="2300",
        SOPClassUID=UltrasoundImageStorage,
    )
    store(
        "I6",
        "S4",
        "S4.1",
        SpecificCharacterSet="ISO_IR 192",
        PatientName=YAMADA,
        PatientID="PID_3",
        StudyDate="20240102",
        StudyTime="2359",
        AccessionNumber=None,
        StudyDescription=None,
        ReferringPhysicianName=None,
        Modality="CT",
        SeriesDate="20240102",
        SeriesTime="0100",
    )
    store(
        "I7",
        "S5",
        "S5.1",
        PatientName="doe^jane",
        PatientID="PIDX3",
        PatientBirthDate=None,
        StudyDate=None,
        StudyTime="120000",
        AccessionNumber="500",
        StudyDescription="CR CHEST",
        ReferringPhysicianName=None,
        Modality="CR",
        SOPClassUID=CTImageStorage,
    )
    return Archive(QueryService(index, events), events, studies, series, instances)


# --- universal matching and return keys ---------------------------------------------------------------
def test_return_keys_are_exactly_the_requested_ones(archive: Archive) -> None:
    identifier = q(PatientName=None, StudyDate=None, AccessionNumber=None, StudyDescription=None)
    identifier.SpecificCharacterSet = "ISO_IR 192"
    results = archive.find(Level.STUDY, identifier)
    assert archive.studies_of(results) == ["S1", "S2", "S3", "S4", "S5"]  # by row id: storage order
    for r in results:
        assert set(r) == {PATIENT_NAME, "00080020", "00080050", "00081030", STUDY_UID}
    s1, _, s3, s4, s5 = results
    assert s1[PATIENT_NAME] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]}
    assert s1["00080050"] == {"vr": "SH", "Value": ["A_1"]}
    assert s4["00080050"] == {"vr": "SH"}  # absent: returned empty
    assert s5["00080020"] == {"vr": "DA"}
    assert s3["00081030"].get("Value") in (None, [], [""])
    # Only the unique key, when nothing else is asked.
    assert [set(r) for r in archive.find(Level.STUDY, q())] == [{STUDY_UID}] * 5
    assert archive.study_search(PatientName="*", AccessionNumber="*") == ["S1", "S2", "S3", "S4", "S5"]


# --- single value, wildcard, case -------------------------------------------------------------------
def test_single_value_matching_is_exact_and_case_sensitive(archive: Archive) -> None:
    assert archive.study_search(PatientID="PID-1") == ["S1", "S2"]
    assert archive.study_search(PatientID="pid-1") == []
    assert archive.study_search(StudyDescription="CT HEAD") == ["S1"]
    assert archive.study_search(StudyDescription="CT") == []
    assert archive.study_search(PatientName="Doe^John") == ["S1", "S2"]
    assert archive.study_search(PatientName="doe^john") == []
    assert archive.study_search(ReferringPhysicianName="Who^Doctor") == ["S1"]
    assert archive.series_of(archive.find(Level.SERIES, q(Modality="MR"))) == ["S1.2", "S2.1"]
    assert archive.study_search(AdmittingDiagnosesDescription="Fracture of skull") == ["S1"]  # no column


def test_wildcards_and_literal_sql_characters(archive: Archive) -> None:
    assert archive.study_search(PatientName="Doe*") == ["S1", "S2"]
    assert archive.study_search(PatientName="D?e^John") == ["S1", "S2"]
    assert archive.study_search(PatientName="*Jürgen") == ["S3"]
    # "_" and "%" are literal in DICOM: "A_1" must not match "AB1", "50%" must not match "500".
    assert archive.study_search(AccessionNumber="A_1") == ["S1"]
    assert archive.study_search(AccessionNumber="A_*") == ["S1"]
    assert archive.study_search(AccessionNumber="A?1") == ["S1", "S2"]
    assert archive.study_search(AccessionNumber="50%") == ["S3"]
    assert archive.study_search(AccessionNumber="50*") == ["S3", "S5"]
    assert archive.study_search(PatientID="PID_3") == ["S4"]
    assert archive.study_search(PatientID="PID?3") == ["S4", "S5"]
    assert archive.study_search(PatientID="50%") == ["S3"]
    series = archive.find(Level.SERIES, q(ProtocolName="Brain 50%*"))  # matched in Python
    assert archive.series_of(series) == ["S1.2"]


def test_case_insensitive_person_names(archive: Archive) -> None:
    fold = QueryOptions(case_insensitive_names=True)
    assert archive.studies_of(archive.find(Level.STUDY, q(PatientName="doe*"), options=fold)) == [
        "S1",
        "S2",
        "S5",
    ]
    assert archive.studies_of(archive.find(Level.STUDY, q(PatientName="MULLER^JURGEN"), options=fold)) == [
        "S3"
    ]
    assert archive.study_search(PatientName="MULLER^JURGEN") == []
    assert archive.studies_of(
        archive.find(Level.STUDY, q(ReferringPhysicianName="who^doctor"), options=fold)
    ) == ["S1"]
    assert archive.studies_of(archive.find(Level.STUDY, q(ReferringPhysicianName="dr^a*"), options=fold)) == [
        "S3"
    ]
    assert archive.study_search(ReferringPhysicianName="who^doctor") == []
    # Case folding is for person names only.
    assert archive.studies_of(archive.find(Level.STUDY, q(StudyDescription="ct head"), options=fold)) == []


def test_person_name_groups_and_character_sets(archive: Archive) -> None:
    (s4,) = archive.find(Level.STUDY, q(PatientName="Yamada^Tarou"))
    assert s4[PATIENT_NAME]["Value"] == [
        {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}
    ]
    assert archive.study_search(PatientName="=山田^太郎") == ["S4"]
    assert archive.study_search(PatientName="Yamada*=山田*") == ["S4"]
    assert archive.study_search(PatientName="==やまだ*") == ["S4"]
    assert archive.study_search(PatientName="Yamada^Tarou=山田^次郎") == []
    (s3,) = archive.find(Level.STUDY, q(PatientName="Müller^Jürgen", ReferringPhysicianName=None))
    assert s3[PATIENT_NAME]["Value"] == [{"Alphabetic": "Müller^Jürgen"}]  # ISO_IR 100 decoded
    assert s3["00080090"]["Value"] == [{"Alphabetic": "Dr^Åsa"}]


# --- ranges ---------------------------------------------------------------------------------------------
def test_date_and_time_range_matching(archive: Archive) -> None:
    assert archive.study_search(StudyDate="20240102") == ["S1", "S4"]
    assert archive.study_search(StudyDate="20240102-20240103") == ["S1", "S2", "S4"]
    assert archive.study_search(StudyDate="-20231231") == ["S3"]
    assert archive.study_search(StudyDate="20240103-") == ["S2"]
    assert archive.study_search(StudyTime="1015") == ["S1"]
    assert archive.study_search(StudyTime="1000-1015") == ["S1"]  # the upper bound is 10:15:59.999999
    assert archive.study_search(StudyTime="1000-1014") == []
    assert archive.study_search(StudyTime="-0000") == ["S2"]
    assert archive.study_search(StudyTime="2359-") == ["S3", "S4"]
    assert archive.study_search(StudyTime="235959.999999") == ["S3"]
    assert archive.study_search(StudyDate="20240102", StudyTime="2359") == ["S4"]
    patients = archive.find(Level.PATIENT, q(PatientBirthDate="19700101-"), model=Model.PATIENT_ROOT)
    assert [p[PATIENT_ID]["Value"][0] for p in patients] == ["PID-1", "50%", "PID_3"]


def test_combined_date_time_range(archive: Archive) -> None:
    combined = QueryOptions(combined_datetime=True)
    overnight = q(StudyDate="20240102-20240103", StudyTime="1200-0100")
    with pytest.raises(InvalidQuery, match="StudyTime"):
        archive.find(Level.STUDY, overnight)  # separately, 12:00-01:00 is a reversed time range
    assert archive.studies_of(archive.find(Level.STUDY, overnight, options=combined)) == ["S2", "S4"]
    around_new_year = q(StudyDate="20231231-20240102", StudyTime="2359-1100")
    assert archive.studies_of(archive.find(Level.STUDY, around_new_year, options=combined)) == ["S1", "S3"]
    one_day = q(StudyDate="20240102", StudyTime="1000-")
    assert archive.studies_of(archive.find(Level.STUDY, one_day, options=combined)) == ["S1", "S4"]
    # Series date and time: matched in SQL on the two columns joined.
    series = q(SeriesDate="20231231-20240102", SeriesTime="2200-0200")
    assert archive.series_of(archive.find(Level.SERIES, series, options=combined)) == ["S3.1", "S4.1"]
    assert archive.series_of(
        archive.find(Level.SERIES, q(SeriesDate="20231231-20240102", SeriesTime="0000-0200"))
    ) == ["S4.1"]
    # Birth date and time have no combined column: matched in Python on the stored attributes.
    born = q(PatientBirthDate="19700101", PatientBirthTime="0500-0700")
    patients = archive.find(Level.PATIENT, born, model=Model.PATIENT_ROOT, options=combined)
    assert [p[PATIENT_ID]["Value"][0] for p in patients] == ["PID-1"]
    assert patients[0]["00100032"] == {"vr": "TM", "Value": ["0600"]}


# --- lists, multiple values, empty values ---------------------------------------------------------------
def test_list_of_uid_matching(archive: Archive) -> None:
    s1, s3 = archive.studies["S1"], archive.studies["S3"]
    assert archive.study_search(StudyInstanceUID=f"{s1}\\{s3}") == ["S1", "S3"]
    assert archive.study_search(StudyInstanceUID=[s3, s1]) == ["S1", "S3"]
    assert archive.study_search(StudyInstanceUID="1.2.3.4") == []
    picked = [archive.series["S1.2"], archive.series["S4.1"]]
    assert archive.series_of(archive.find(Level.SERIES, q(SeriesInstanceUID=picked))) == ["S1.2", "S4.1"]
    sops = [archive.instances["I2"], archive.instances["I7"]]
    assert archive.instances_of(archive.find(Level.IMAGE, q(SOPInstanceUID=sops))) == ["I2", "I7"]
    with pytest.raises(InvalidQuery, match="not a valid UID"):
        archive.find(Level.STUDY, q(StudyInstanceUID=f"{s1}\\1.2.abc"))


def test_multiple_value_matching(archive: Archive) -> None:
    assert archive.study_search(AccessionNumber="A_1\\5*") == ["S1", "S3", "S5"]
    assert archive.study_search(StudyDate="20231231\\20240103") == ["S2", "S3"]
    assert archive.study_search(PatientName="Doe^J*\\Yamada*") == ["S1", "S2", "S4"]
    assert archive.series_of(archive.find(Level.SERIES, q(Modality="CT\\US"))) == ["S1.1", "S3.1", "S4.1"]


def test_empty_value_matching(archive: Archive) -> None:
    assert archive.study_search(AccessionNumber='""') == ["S4"]
    assert archive.study_search(StudyDescription='""') == ["S3", "S4"]
    assert archive.study_search(ReferringPhysicianName='""') == ["S2", "S4", "S5"]
    assert archive.study_search(StudyDate='""') == ["S5"]
    assert archive.study_search(AdmittingDiagnosesDescription='""') == ["S2", "S3", "S4", "S5"]
    patients = archive.find(Level.PATIENT, q(PatientBirthDate='""'), model=Model.PATIENT_ROOT)
    assert [p[PATIENT_ID]["Value"][0] for p in patients] == ["PIDX3"]


# --- multi-valued attributes, computed keys -------------------------------------------------------------
def test_multi_valued_attributes_and_modalities_in_study(archive: Archive) -> None:
    results = archive.find(Level.STUDY, q(ModalitiesInStudy="CT"))
    assert archive.studies_of(results) == ["S1", "S4"]
    assert results[0]["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert archive.study_search(ModalitiesInStudy="MR") == ["S1", "S2"]
    assert archive.study_search(ModalitiesInStudy="MR\\US") == ["S1", "S2", "S3"]
    assert archive.study_search(ModalitiesInStudy="M*") == ["S1", "S2"]
    assert archive.study_search(ModalitiesInStudy="CT", StudyDate="20240102") == ["S1", "S4"]
    assert archive.study_search(SOPClassesInStudy=MRImageStorage) == ["S1", "S2"]
    (s1,) = archive.find(Level.STUDY, q(StudyID="1", AccessionNumber="A_1", SOPClassesInStudy=None))
    assert s1["00080062"] == {"vr": "UI", "Value": sorted([CTImageStorage, MRImageStorage])}
    assert archive.instances_of(archive.find(Level.IMAGE, q(ImageType="DERIVED"))) == ["I2"]
    assert archive.instances_of(archive.find(Level.IMAGE, q(ImageType="ORIGINAL\\SECONDARY"))) == ["I1", "I2"]
    patients = archive.find(Level.PATIENT, q(OtherPatientNames="Roe^*"), model=Model.PATIENT_ROOT)
    assert [p[PATIENT_ID]["Value"][0] for p in patients] == ["PID-1"]


def test_computed_return_keys(archive: Archive) -> None:
    (s1,) = archive.find(
        Level.STUDY,
        q(AccessionNumber="A_1", NumberOfStudyRelatedSeries=None, NumberOfStudyRelatedInstances=None),
    )
    assert s1["00201206"] == {"vr": "IS", "Value": [2]}
    assert s1["00201208"] == {"vr": "IS", "Value": [3]}
    identifier = q(
        PatientID="PID-1",
        NumberOfPatientRelatedStudies=None,
        NumberOfPatientRelatedSeries=None,
        NumberOfPatientRelatedInstances=None,
    )
    (p1,) = archive.find(Level.PATIENT, identifier, model=Model.PATIENT_ROOT)
    assert (p1["00201200"]["Value"], p1["00201202"]["Value"], p1["00201204"]["Value"]) == ([2], [3], [4])
    identifier = q(
        AccessionNumber="A_1",
        SeriesNumber="1",
        Modality="CT",
        NumberOfSeriesRelatedInstances=None,
        ModalitiesInStudy=None,
    )
    (series,) = archive.find(Level.SERIES, identifier)
    assert series["00201209"] == {"vr": "IS", "Value": [2]}
    assert series["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    images = archive.find(Level.IMAGE, q(AccessionNumber="A_1", NumberOfStudyRelatedInstances=None))
    assert [i["00201208"]["Value"] for i in images] == [[3], [3], [3]]


# --- sequences --------------------------------------------------------------------------------------------
def _item(**keys: str | None) -> Sequence:
    item = Dataset()
    for keyword, value in keys.items():
        setattr(item, keyword, value or "")
    return Sequence([item])


def test_sequence_matching(archive: Archive) -> None:
    assert archive.study_search(ProcedureCodeSequence=_item(CodeValue="P2")) == ["S1"]
    # Both keys must match within one item: P1 is "Head CT", not "Chest CT".
    assert archive.study_search(ProcedureCodeSequence=_item(CodeValue="P1", CodeMeaning="Chest CT")) == []
    (s1,) = archive.find(
        Level.STUDY,
        q(ProcedureCodeSequence=_item(CodeValue="P1", CodingSchemeDesignator="L", CodeMeaning=None)),
    )
    assert s1["00081032"] == {
        "vr": "SQ",
        "Value": [
            {
                "00080100": {"vr": "SH", "Value": ["P1"]},
                "00080102": {"vr": "SH", "Value": ["L"]},
                "00080104": {"vr": "LO", "Value": ["Head CT"]},
            }
        ],
    }
    # An empty item returns the whole sequence and filters nothing.
    everything = archive.find(Level.STUDY, q(ProcedureCodeSequence=Sequence([Dataset()])))
    assert archive.studies_of(everything) == ["S1", "S2", "S3", "S4", "S5"]
    assert len(everything[0]["00081032"]["Value"]) == 2 and everything[1]["00081032"] == {"vr": "SQ"}
    # Return keys only: all studies, each item cut down to the requested attributes.
    codes = archive.find(Level.STUDY, q(ProcedureCodeSequence=_item(CodeValue=None)))
    assert [set(i) for i in codes[0]["00081032"]["Value"]] == [{"00080100"}, {"00080100"}]
    assert len(codes) == 5
    by_step = archive.find(
        Level.SERIES,
        q(RequestAttributesSequence=_item(RequestedProcedureID="RP2", ScheduledProcedureStepID="SPS2")),
    )
    assert archive.series_of(by_step) == ["S1.1"]
    mixed = q(RequestAttributesSequence=_item(RequestedProcedureID="RP1", ScheduledProcedureStepID="SPS2"))
    assert archive.find(Level.SERIES, mixed) == []


# --- levels -----------------------------------------------------------------------------------------------
def test_levels_and_keys_of_other_levels(archive: Archive) -> None:
    with pytest.raises(InvalidQuery, match="PATIENT"):
        archive.find(Level.PATIENT, q(PatientID=None))  # the Study Root model has no patient level
    with pytest.raises(InvalidQuery, match="SeriesInstanceUID is a SERIES level attribute"):
        archive.find(Level.STUDY, q(SeriesInstanceUID=None))
    with pytest.raises(InvalidQuery, match="SOPInstanceUID"):
        archive.find(Level.SERIES, q(SOPInstanceUID=None), model=Model.PATIENT_ROOT)
    patients = archive.find(Level.PATIENT, q(PatientName=None), model=Model.PATIENT_ROOT)
    assert [p[PATIENT_ID]["Value"][0] for p in patients] == ["PID-1", "50%", "PID_3", "PIDX3"]
    # Hierarchical: the unique key of the level above.
    hierarchical = archive.find(Level.SERIES, q(StudyInstanceUID=archive.studies["S1"], SeriesNumber=None))
    assert archive.series_of(hierarchical) == ["S1.1", "S1.2"]
    assert [s["00200011"]["Value"] for s in hierarchical] == [[1], [2]]
    assert [s[STUDY_UID]["Value"][0] for s in hierarchical] == [archive.studies["S1"]] * 2
    # Relational: keys of any upper level, matched on the parents and returned from them.
    images = archive.find(
        Level.IMAGE, q(PatientName="Doe*", StudyDate=None, Modality="CT", InstanceNumber=None)
    )
    assert archive.instances_of(images) == ["I1", "I2"]
    assert [i["00080020"]["Value"] for i in images] == [["20240102"]] * 2
    assert [i[PATIENT_NAME]["Value"][0]["Alphabetic"] for i in images] == ["Doe^John"] * 2
    assert archive.instances_of(archive.find(Level.IMAGE, q(InstanceNumber="2"))) == ["I2"]
    assert archive.series_of(archive.find(Level.SERIES, q(SeriesNumber="2"))) == ["S1.2"]
    in_patient_root = archive.find(Level.STUDY, q(PatientID="PID-1"), model=Model.PATIENT_ROOT)
    assert archive.studies_of(in_patient_root) == ["S1", "S2"]


def _raw(tag: int, vr: str, value: bytes) -> Dataset:
    """An identifier holding one element as it comes off the wire (not yet converted by pydicom)."""
    ds = Dataset()
    ds[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, True, True)
    return ds


def test_bad_identifiers_fail_before_any_search(archive: Archive) -> None:
    for identifier, message in [
        (q(StudyDate="2020-13-45"), "StudyDate: '2020-13-45' is not a date"),
        (q(StudyDate="20240131-20240101"), "ends before it starts"),
        (q(StudyTime="2500"), "StudyTime"),
        (_raw(0x00200011, "IS", b"one "), "SeriesNumber: 'one' is not a number"),
        (_raw(0x00280010, "US", b"abc"), "Rows: unreadable value"),
        (q(ProcedureCodeSequence=Sequence([Dataset(), Dataset()])), "at most one item"),
    ]:
        with pytest.raises(InvalidQuery, match=message):
            archive.query.find(Level.SERIES, identifier)


# --- paging, limits, cancel, events --------------------------------------------------------------------
def test_offset_limit_and_truncation(archive: Archive, index: SqlIndex) -> None:
    events = EventBus()
    small = QueryService(index, events, page_size=2)
    every = q()

    def run(service: QueryService, identifier: Dataset, **options: Any) -> tuple[list[str], bool]:
        result = service.find(Level.STUDY, identifier, options=QueryOptions(**options))
        return archive.studies_of(list(result)), result.truncated

    assert run(small, every) == (["S1", "S2", "S3", "S4", "S5"], False)
    assert run(small, every, offset=1, limit=2) == (["S2", "S3"], False)
    assert run(small, every, offset=4) == (["S5"], False)
    assert run(small, every, offset=9) == ([], False)
    capped = QueryService(index, events, page_size=2, max_results=3)
    assert run(capped, every) == (["S1", "S2", "S3"], True)
    assert run(capped, every, limit=3) == (["S1", "S2", "S3"], False)  # the client's own limit
    assert run(capped, every, limit=10) == (["S1", "S2", "S3"], True)
    assert run(QueryService(index, events, max_results=5), every) == (["S1", "S2", "S3", "S4", "S5"], False)
    # Keys matched in Python: pages keep coming until enough rows match.
    no_diagnosis = q(AdmittingDiagnosesDescription='""')
    assert run(small, no_diagnosis, offset=1, limit=2) == (["S3", "S4"], False)
    assert run(QueryService(index, events, page_size=1, max_results=2), no_diagnosis) == (["S2", "S3"], True)
    skull = q(AdmittingDiagnosesDescription="*skull*")
    assert run(QueryService(index, events, page_size=1), skull) == (["S1"], False)


def test_newest_first_reverses_the_order_page_after_page(archive: Archive, index: SqlIndex) -> None:
    def run(service: QueryService, identifier: Dataset, **options: Any) -> list[str]:
        result = service.find(Level.STUDY, identifier, options=QueryOptions(newest_first=True, **options))
        return archive.studies_of(list(result))

    small = QueryService(index, EventBus(), page_size=2)  # keyset pages of the index, backwards
    assert run(small, q()) == ["S5", "S4", "S3", "S2", "S1"]
    assert run(small, q(), offset=1, limit=2) == ["S4", "S3"]
    assert run(small, q(), offset=4) == ["S1"]
    # Keys matched in Python: pages keep coming, backwards, until enough rows match.
    assert run(QueryService(index, EventBus(), page_size=1), q(AdmittingDiagnosesDescription='""')) == [
        "S5",
        "S4",
        "S3",
        "S2",
    ]


def test_pages_give_the_same_results_as_one_page(archive: Archive, index: SqlIndex) -> None:
    identifier = q(PatientName=None, ModalitiesInStudy=None, StudyDate="20231231-")
    one_by_one = list(QueryService(index, EventBus(), page_size=1).find(Level.STUDY, identifier))
    assert one_by_one == archive.find(Level.STUDY, identifier)
    images = q(PatientID=None)
    assert list(QueryService(index, EventBus(), page_size=2).find(Level.IMAGE, images)) == archive.find(
        Level.IMAGE, images
    )


def test_cancel_and_the_queried_event(archive: Archive) -> None:
    seen: list[StudyQueried] = []
    archive.events.subscribe(StudyQueried, seen.append)
    result = archive.query.find(Level.STUDY, q(PatientName="Doe*", StudyDate=None), source="dimse:SCU")
    assert seen == []  # nothing is searched before the first match is asked for
    first = next(result)
    assert archive.studies_of([first]) == ["S1"]
    result.cancel()
    assert list(result) == []
    result.cancel()
    assert seen == [StudyQueried(Actor("dimse:SCU"), "STUDY", {"PatientName": "Doe*", "StudyDate": ""}, 1)]
    assert len(archive.find(Level.SERIES, q(Modality="CT"), source="qido")) == 2
    assert seen[-1] == StudyQueried(Actor("qido"), "SERIES", {"Modality": "CT"}, 2)
    assert len(seen) == 2


def test_a_match_as_the_c_find_adapter_encodes_it(archive: Archive) -> None:
    (s3,) = archive.find(Level.STUDY, q(PatientName="Müller*", ModalitiesInStudy=None, StudyDate=None))
    utf8 = {"00080005": {"vr": "CS", "Value": ["ISO_IR 192"]}}  # the adapter declares UTF-8 as well
    ds = read_dataset(io.BytesIO(encode_dataset({**s3, **utf8}, implicit_vr=False)), False, True)
    assert str(ds.PatientName) == "Müller^Jürgen"
    assert ds.ModalitiesInStudy == "US"
    assert ds.StudyDate == "20231231"
    assert ds.StudyInstanceUID == archive.studies["S3"]
