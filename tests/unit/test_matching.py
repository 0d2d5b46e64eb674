"""Parsing of query keys and their evaluation on DICOM JSON (PS3.4 C.2.2.2), without a database."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from sqlalchemy.dialects import postgresql, sqlite

from lightbox.domain.errors import InvalidQuery
from lightbox.domain.levels import Level
from lightbox.domain.matching import (
    AnyOf,
    CombinedRange,
    Empty,
    Exact,
    Items,
    Key,
    NameGroups,
    Number,
    Range,
    Universal,
    Wildcard,
    check_ranges,
    combine_date_time,
    element_text,
    matches,
    normalize_datetime,
    parse_key,
    parse_value,
    project,
    wildcard_regex,
)
from lightbox.index.matching import Criterion, SearchSpec, build_search, like_pattern, make_spec


def key(keyword: str, value: Any) -> Key:
    ds = Dataset()
    setattr(ds, keyword, value)
    return parse_key(ds[keyword])


def pn(alphabetic: str, ideographic: str = "", phonetic: str = "") -> dict[str, Any]:
    groups = {"Alphabetic": alphabetic, "Ideographic": ideographic, "Phonetic": phonetic}
    return {"vr": "PN", "Value": [{g: v for g, v in groups.items() if v}]}


def el(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


# --- parsing --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("vr", "text", "expected"),
    [
        ("LO", "", Universal()),
        ("LO", "*", Universal()),
        ("LO", "**", Universal()),
        ("DA", "*", Universal()),
        ("UI", "*", Universal()),
        ("LO", '""', Empty()),
        ("LO", "  PID-1 ", Exact("PID-1")),
        ("LO", "PID*", Wildcard("PID*")),
        ("LO", "P?D", Wildcard("P?D")),
        ("CS", "CT\\MR", AnyOf((Exact("CT"), Exact("MR")))),
        ("CS", "CT\\M*", AnyOf((Exact("CT"), Wildcard("M*")))),
        ("CS", "CT\\*", Universal()),
        ("CS", "CT\\CT", Exact("CT")),
        ("UI", "1.2.3", Exact("1.2.3")),
        ("UI", "1.2.3\\1.2.4", AnyOf((Exact("1.2.3"), Exact("1.2.4")))),
        ("DA", "20240102", Exact("20240102")),
        ("DA", "2024.01.02", Exact("20240102")),
        ("DA", "20240101-20240131", Range("20240101", "20240131")),
        ("DA", "-20240131", Range(None, "20240131")),
        ("DA", "20240101-", Range("20240101", None)),
        ("DA", "20240101\\20240301-20240302", AnyOf((Exact("20240101"), Range("20240301", "20240302")))),
        ("TM", "1030", Range("103000.000000", "103059.999999")),
        ("TM", "10", Range("100000.000000", "105959.999999")),
        ("TM", "103015.5", Range("103015.500000", "103015.599999")),
        ("TM", "10:30:15", Range("103015.000000", "103015.999999")),
        ("TM", "1000-1100", Range("100000.000000", "110059.999999")),
        ("TM", "-0900", Range(None, "090059.999999")),
        ("DT", "2024", Range("20240101000000.000000", "20241231235959.999999")),
        ("DT", "202402", Range("20240201000000.000000", "20240229235959.999999")),
        ("DT", "20240102-20240103", Range("20240102000000.000000", "20240103235959.999999")),
        ("DT", "20240102103000-0500", Range("20240102103000.000000", "20240102103000.999999")),
        (
            "DT",
            "20240102103000+0100-20240102113000+0100",
            Range("20240102103000.000000", "20240102113000.999999"),
        ),
        ("DT", "-20240102", Range(None, "20240102235959.999999")),
        ("IS", "5", Number(5.0)),
        ("DS", "2.5\\3", AnyOf((Number(2.5), Number(3.0)))),
        ("PN", "Doe^John", Exact("Doe^John")),
        ("PN", "Yamada^Tarou=山田^太郎", NameGroups((Exact("Yamada^Tarou"), Exact("山田^太郎")))),
        ("PN", "=山田*", NameGroups((Universal(), Wildcard("山田*")))),
        ("PN", "*=*", Universal()),
        ("LT", "a\\b", Exact("a\\b")),  # a backslash in LT is text, not a delimiter
        ("AS", "045Y", Exact("045Y")),
        ("SH", "50%", Exact("50%")),
        ("SH", "A_1", Exact("A_1")),
    ],
)
def test_parse_value(vr: str, text: str, expected: object) -> None:
    assert parse_value("Key", vr, text) == expected


@pytest.mark.parametrize(
    ("vr", "text", "message"),
    [
        ("DA", "2020-13-45", "is not a date or date range"),
        ("DA", "20201345", "is not a date"),
        ("DA", "20230229", "is not a date"),
        ("DA", "yesterday", "is not a date"),
        ("DA", "-", "is not a date"),
        ("TM", "2500", "is not a time"),
        ("TM", "1261", "is not a time"),
        ("DT", "2024-13", "is not a date-time"),
        ("IS", "1*", "is not a number"),
        ("UI", "1.2.3\\1.02", "is not a valid UID"),
        ("UI", "1.2.*", "is not a valid UID"),
        ("OB", "abc", "cannot be matched"),
    ],
)
def test_bad_values_are_invalid_queries(vr: str, text: str, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        parse_value("Key", vr, text)


def test_reversed_ranges_are_invalid_unless_combined() -> None:
    keys = [key("StudyDate", "20240102-20240101")]
    with pytest.raises(InvalidQuery, match="ends before it starts"):
        check_ranges(keys)
    overnight = [key("StudyDate", "20240101-20240102"), key("StudyTime", "2200-0600")]
    with pytest.raises(InvalidQuery, match="StudyTime"):
        check_ranges(overnight)
    combined = combine_date_time(overnight)
    check_ranges(combined)
    assert combined[0].condition == CombinedRange(
        "20240101220000.000000", "20240102060059.999999", "00080030"
    )
    assert combined[1].condition == Universal()


def test_combined_date_time_keeps_open_ends_and_single_dates() -> None:
    day_evening = combine_date_time([key("StudyDate", "20240102"), key("StudyTime", "18-")])
    assert day_evening[0].condition == CombinedRange(
        "20240102180000.000000", "20240102235959.999999", "00080030"
    )
    until = combine_date_time([key("StudyDate", "-20240102"), key("StudyTime", "1200")])
    assert until[0].condition == CombinedRange(None, "20240102120059.999999", "00080030")
    # Without a time key, or with a universal one, the date matches alone.
    alone = combine_date_time([key("StudyDate", "20240102"), key("StudyTime", "")])
    assert alone[0].condition == Exact("20240102")


def test_parse_key_from_pydicom_values() -> None:
    ds = Dataset()
    ds.SeriesNumber = "7"
    ds.PatientName = "Yamada^Tarou=山田^太郎"
    ds.ModalitiesInStudy = ["CT", "MR"]
    ds.StudyInstanceUID = ["1.2.3", "1.2.4"]
    ds.add(DataElement(0x00200011, "IS", ""))
    assert element_text(ds["PatientName"]) == "Yamada^Tarou=山田^太郎"
    assert element_text(ds["ModalitiesInStudy"]) == "CT\\MR"
    assert parse_key(ds["StudyInstanceUID"]) == Key(
        "0020000D", "StudyInstanceUID", "UI", AnyOf((Exact("1.2.3"), Exact("1.2.4")))
    )
    assert parse_key(ds["SeriesNumber"]).condition == Universal()
    assert parse_key(ds["ModalitiesInStudy"]).tag == "00080061"


def test_sequence_keys() -> None:
    item = Dataset()
    item.CodeValue = "P1"
    item.CodeMeaning = ""
    seq = key("ProcedureCodeSequence", Sequence([item]))
    assert seq.vr == "SQ"
    assert isinstance(seq.condition, Items) and not seq.condition.whole
    assert [k.keyword for k in seq.condition.keys] == ["CodeValue", "CodeMeaning"]
    assert not seq.is_universal
    assert key("ProcedureCodeSequence", Sequence([])).condition == Items((), whole=True)
    assert key("ProcedureCodeSequence", Sequence([Dataset()])).condition == Items((), whole=True)
    return_only = Dataset()
    return_only.CodeValue = ""
    assert key("ProcedureCodeSequence", Sequence([return_only])).is_universal
    with pytest.raises(InvalidQuery, match="at most one item"):
        key("ProcedureCodeSequence", Sequence([Dataset(), Dataset()]))


# --- evaluation -----------------------------------------------------------------------------------------
def test_single_value_matching_is_exact_and_case_sensitive() -> None:
    doc = {"00100020": el("LO", "PID-1"), "00081030": el("LO", "CT HEAD")}
    assert matches(key("PatientID", "PID-1"), doc)
    assert not matches(key("PatientID", "pid-1"), doc)
    assert not matches(key("PatientID", "PID-"), doc)
    assert not matches(key("StudyDescription", "ct head"), doc)
    assert not matches(key("AccessionNumber", "X"), doc)  # absent never matches a value


def test_wildcards_only_special_for_star_and_question_mark() -> None:
    doc = {"00100020": el("LO", "A.1+(x)"), "00080050": el("SH", "50%")}
    assert matches(key("PatientID", "A.1+(*"), doc)
    assert matches(key("PatientID", "A?1+(x)"), doc)
    assert not matches(key("PatientID", "A.1+"), doc)
    assert not matches(key("PatientID", "A*1*("), doc)
    assert matches(key("AccessionNumber", "50%"), doc)
    assert not matches(key("AccessionNumber", "5%"), doc)
    assert wildcard_regex("a*b?").fullmatch("aXYbZ")
    assert not wildcard_regex("a*b?").fullmatch("ab")


def test_person_names() -> None:
    doc = {"00100010": pn("Müller^Jürgen", "ミュラー^ユルゲン")}
    assert matches(key("PatientName", "Müller^Jürgen"), doc)
    assert matches(key("PatientName", "Mü*"), doc)
    assert not matches(key("PatientName", "MULLER^JURGEN"), doc)
    assert matches(key("PatientName", "MULLER^JURGEN"), doc, fold_names=True)
    assert matches(key("PatientName", "mul*"), doc, fold_names=True)
    assert matches(key("PatientName", "=ミュラー*"), doc)
    assert matches(key("PatientName", "Müller^Jürgen=ミュラー^ユルゲン"), doc)
    assert not matches(key("PatientName", "Müller^Jürgen=ミュラー^ハンス"), doc)
    assert not matches(key("PatientName", "==x*"), doc)  # no phonetic group stored


def test_multi_valued_stored_attributes_match_any_value() -> None:
    doc = {
        "00080008": el("CS", "DERIVED", "SECONDARY"),
        "00101001": el("PN", {"Alphabetic": "A^B"}, {"Alphabetic": "C^D"}),
    }
    assert matches(key("ImageType", "SECONDARY"), doc)
    assert matches(key("ImageType", "ORIGINAL\\DERIVED"), doc)
    assert not matches(key("ImageType", "ORIGINAL"), doc)
    assert matches(key("OtherPatientNames", "C^*"), doc)


def test_empty_value_matching() -> None:
    assert matches(key("AccessionNumber", '""'), {})
    assert matches(key("AccessionNumber", '""'), {"00080050": {"vr": "SH"}})
    assert matches(key("AccessionNumber", '""'), {"00080050": el("SH", "")})
    assert not matches(key("AccessionNumber", '""'), {"00080050": el("SH", "A")})
    assert matches(key("PatientName", '""'), {"00100010": el("PN", {})})
    assert not matches(key("PatientName", '""'), {"00100010": pn("", "山田")})


def test_date_time_and_numbers() -> None:
    doc = {
        "00080020": el("DA", "20240102"),
        "00080030": el("TM", "2359"),
        "0008002A": el("DT", "20240102235959.5"),
        "00200013": el("IS", 7),
        "00281050": el("DS", "40.0"),
    }
    assert matches(key("StudyDate", "20240102"), doc)
    assert matches(key("StudyDate", "20240101-20240102"), doc)
    assert matches(key("StudyDate", "20240102-"), doc)
    assert not matches(key("StudyDate", "-20240101"), doc)
    assert matches(key("StudyTime", "2359"), doc)  # stored 23:59 is 23:59:00
    assert matches(key("StudyTime", "2300-2359"), doc)
    assert not matches(key("StudyTime", "-2358"), doc)
    assert matches(key("AcquisitionDateTime", "20240102"), doc)
    assert matches(key("AcquisitionDateTime", "20240102235959.5-"), doc)
    assert not matches(key("AcquisitionDateTime", "20240103-"), doc)
    assert matches(key("InstanceNumber", "7"), doc)
    assert matches(key("InstanceNumber", "07"), doc)
    assert not matches(key("InstanceNumber", "8"), doc)
    assert matches(key("WindowCenter", "40"), doc)


def test_combined_range_on_json() -> None:
    doc = {"00080020": el("DA", "20240102"), "00080030": el("TM", "0030")}
    (date_key, time_key) = combine_date_time(
        [key("StudyDate", "20240101-20240102"), key("StudyTime", "2200-0100")]
    )
    assert matches(date_key, doc) and matches(time_key, doc)
    late = {"00080020": el("DA", "20240102"), "00080030": el("TM", "0200")}
    assert not matches(date_key, late)


def _code(value: str, scheme: str, meaning: str) -> dict[str, Any]:
    return {"00080100": el("SH", value), "00080102": el("SH", scheme), "00080104": el("LO", meaning)}


def _items(**keys: str) -> Key:
    item = Dataset()
    for keyword, value in keys.items():
        setattr(item, keyword, value)
    return key("ProcedureCodeSequence", Sequence([item]))


def test_sequence_matching_within_one_item() -> None:
    doc = {"00081032": {"vr": "SQ", "Value": [_code("P1", "L", "Head"), _code("P2", "L", "Chest")]}}
    assert matches(_items(CodeValue="P2"), doc)
    assert matches(_items(CodeValue="P1", CodingSchemeDesignator="L"), doc)
    assert not matches(_items(CodeValue="P1", CodeMeaning="Chest"), doc)  # two items, not one
    assert matches(_items(CodeMeaning="Ch*", CodeValue=""), doc)
    assert not matches(_items(CodeValue="P3"), doc)
    assert not matches(_items(CodeValue="P1"), {})
    assert matches(_items(CodeValue=""), {})  # return keys only: nothing filtered


def test_project_sequence_returns_matching_items_with_requested_keys() -> None:
    doc = {"00081032": {"vr": "SQ", "Value": [_code("P1", "L", "Head"), _code("P2", "L", "Chest")]}}
    wanted = _items(CodeValue="P2", CodeMeaning="")
    assert project(wanted, doc["00081032"]) == {
        "vr": "SQ",
        "Value": [{"00080100": el("SH", "P2"), "00080104": el("LO", "Chest")}],
    }
    every = _items(CodeValue="")
    assert project(every, doc["00081032"])["Value"] == [
        {"00080100": el("SH", "P1")},
        {"00080100": el("SH", "P2")},
    ]
    whole = key("ProcedureCodeSequence", Sequence([]))
    assert project(whole, doc["00081032"]) == doc["00081032"]
    assert project(whole, None) == {"vr": "SQ"}


def test_normalize_datetime() -> None:
    assert normalize_datetime("2024") == "20240101000000.000000"
    assert normalize_datetime("2024", upper=True) == "20241231235959.999999"
    assert normalize_datetime("20230215", upper=True) == "20230215235959.999999"
    assert normalize_datetime("202302", upper=True) == "20230228235959.999999"
    assert normalize_datetime("20240102103000.12+0100") == "20240102103000.120000"
    assert normalize_datetime("not a date") is None


def test_like_pattern_escapes_sql_wildcards() -> None:
    assert like_pattern("Doe*") == "Doe%"
    assert like_pattern("D?e") == "D_e"
    assert like_pattern("A_1*") == "A\\_1%"
    assert like_pattern("50%") == "50\\%"
    assert like_pattern("a\\b*") == "a\\\\b%"


# --- split between SQL and Python -----------------------------------------------------------------------
def _sql(spec: SearchSpec, dialect: Any) -> str:
    return str(build_search(spec, 10, 5).compile(dialect=dialect))


def test_spec_splits_sql_and_python_work() -> None:
    name = Criterion(Level.PATIENT, key("PatientName", "Doe*"))
    groups = Criterion(Level.PATIENT, key("PatientName", "Doe*=山田*"))
    diagnosis = Criterion(Level.STUDY, key("AdmittingDiagnosesDescription", "*skull*"))
    spec = make_spec(Level.STUDY, [name, groups, diagnosis], return_levels={Level.STUDY})
    # PN groups narrow on the alphabetic column and finish in Python; attributes without a column in Python.
    assert spec.python == (groups, diagnosis)
    assert spec.attrs == {Level.STUDY, Level.PATIENT}
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        sql = _sql(spec, dialect)
        assert "patients.patient_name LIKE" in sql and "ESCAPE '\\'" in sql
        assert "JOIN patients" in sql  # matched on: joined
        assert "ORDER BY studies.id" in sql and "studies.id >" in sql


def test_newest_first_pages_backwards_by_id() -> None:
    spec = make_spec(Level.STUDY, [Criterion(Level.PATIENT, key("PatientName", "Doe*"))], newest_first=True)
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        sql = _sql(spec, dialect)
        assert "ORDER BY studies.id DESC" in sql and "studies.id <" in sql


def test_parents_only_returned_are_looked_up_not_joined() -> None:
    spec = make_spec(
        Level.STUDY,
        [Criterion(Level.STUDY, key("StudyDate", "20240101-20240107"))],
        return_levels={Level.PATIENT, Level.STUDY},
        computed=["NumberOfPatientRelatedStudies", "ModalitiesInStudy"],
    )
    assert spec.python == ()
    sql = _sql(spec, postgresql.dialect())
    assert "JOIN" not in sql
    assert "(SELECT patients.attrs" in sql and "(SELECT patients.num_studies" in sql
    assert "studies.modalities_in_study AS" in sql


def test_case_insensitive_names_use_the_fold_columns() -> None:
    crit = Criterion(Level.PATIENT, key("PatientName", "müller*"))
    spec = make_spec(Level.PATIENT, [crit], fold_names=True)
    compiled = build_search(spec, None, 5).compile(dialect=sqlite.dialect())
    assert "patients.patient_name_fold LIKE" in str(compiled)
    assert "MULLER%" in compiled.params.values()
