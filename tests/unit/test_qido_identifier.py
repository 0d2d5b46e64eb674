"""QIDO-RS searches as C-FIND identifiers: keys, default return keys per resource, paths through sequences."""

from __future__ import annotations

import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from lightbox.dicomweb.qido_attributes import ALL, DEFAULTS, INSTANCE_ALL
from lightbox.dicomweb.qido_identifier import Resource, build_identifier
from lightbox.dicomweb.qido_params import parse_search
from lightbox.domain.errors import InvalidQuery
from lightbox.domain.levels import Level
from lightbox.domain.matching import AnyOf, Exact, Items, Universal, parse_key
from lightbox.index.attributes import level_of_tag


def identifier(resource: Resource, *pairs: tuple[str, str]) -> Dataset:
    return build_identifier(resource, parse_search(pairs)).dataset


def keywords(ds: Dataset) -> set[str]:
    return {elem.keyword for elem in ds}


def test_study_search_holds_the_matching_keys_and_the_default_return_keys() -> None:
    ds = identifier(Resource(Level.STUDY), ("PatientName", "Doe*"), ("00080020", "20240101-"))
    assert ds.PatientName == "Doe*" and ds.StudyDate == "20240101-"
    assert keywords(ds) == set(DEFAULTS[Level.STUDY].required) | set(DEFAULTS[Level.STUDY].conditional)
    assert ds.AccessionNumber == ""  # a return key only


def test_values_reach_the_matching_engine_as_sent() -> None:
    """The engine reads the text as it reads a C-FIND identifier: a bad number is its error, worded there."""
    ds = identifier(Resource(Level.IMAGE), ("InstanceNumber", "abc"), ("Rows", "4"))
    assert parse_key(ds["Rows"]).condition.value == 4.0  # type: ignore[union-attr]
    with pytest.raises(InvalidQuery, match="InstanceNumber: 'abc' is not a number"):
        parse_key(ds["InstanceNumber"])


def test_uid_lists() -> None:
    ds = identifier(Resource(Level.STUDY), ("StudyInstanceUID", "1.2.3,1.2.4"))
    assert parse_key(ds["StudyInstanceUID"]).condition == AnyOf((Exact("1.2.3"), Exact("1.2.4")))


def test_default_levels_of_each_resource() -> None:
    """PS3.18 10.6.3.3: All Series holds study attributes; All Instances study and series ones; a path
    that fixes the study or series leaves that level's attributes out."""
    assert Resource(Level.STUDY).default_levels() == (Level.STUDY,)
    assert Resource(Level.SERIES).default_levels() == (Level.SERIES, Level.STUDY)
    assert Resource(Level.SERIES, study="1.2").default_levels() == (Level.SERIES,)
    assert Resource(Level.IMAGE).default_levels() == (Level.IMAGE, Level.SERIES, Level.STUDY)
    assert Resource(Level.IMAGE, study="1.2").default_levels() == (Level.IMAGE, Level.SERIES)
    assert Resource(Level.IMAGE, study="1.2", series="1.2.3").default_levels() == (Level.IMAGE,)
    assert "PatientName" in keywords(identifier(Resource(Level.SERIES)))
    assert "PatientName" not in keywords(identifier(Resource(Level.SERIES, study="1.2")))


def test_path_uids_are_single_value_keys() -> None:
    ds = identifier(Resource(Level.IMAGE, study="1.2", series="1.2.3"))
    assert (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) == ("1.2", "1.2.3", "")
    # A matching parameter may repeat the path's UID, not contradict it.
    same = identifier(Resource(Level.SERIES, study="1.2"), ("StudyInstanceUID", "1.2"))
    assert same.StudyInstanceUID == "1.2"
    with pytest.raises(InvalidQuery, match=r"StudyInstanceUID is 1.2 by the path"):
        identifier(Resource(Level.SERIES, study="1.2"), ("StudyInstanceUID", "1.3"))


def test_includefield_of_a_lower_level_is_not_returned() -> None:
    """PS3.18 10.6.3.3.1: series or instance attributes in includefield are not returned for studies."""
    ds = identifier(
        Resource(Level.STUDY),
        ("includefield", "StudyDescription,SeriesDescription,SOPClassUID,RetrieveAETitle"),
    )
    assert {"StudyDescription", "RetrieveAETitle"} <= keywords(ds)
    assert not {"SeriesDescription", "SOPClassUID"} & keywords(ds)
    assert {"StudyDescription", "SeriesDescription"} <= keywords(
        identifier(Resource(Level.SERIES), ("includefield", "StudyDescription,SeriesDescription"))
    )


def test_sequence_keys() -> None:
    ds = identifier(Resource(Level.SERIES), ("RequestAttributesSequence.ScheduledProcedureStepID", "SPS-1"))
    key = parse_key(ds["RequestAttributesSequence"])
    assert isinstance(key.condition, Items) and not key.condition.whole
    conditions = {k.keyword: k.condition for k in key.condition.keys}
    # The matching key and the default return key of the same item (PS3.18 Table 10.6.3-4).
    assert conditions == {"ScheduledProcedureStepID": Exact("SPS-1"), "RequestedProcedureID": Universal()}


def test_a_whole_sequence_asked_for() -> None:
    ds = identifier(Resource(Level.SERIES), ("includefield", "RequestAttributesSequence"))
    assert len(ds.RequestAttributesSequence) == 0  # every item, every attribute (PS3.4 C.2.2.2.6)
    ds = identifier(Resource(Level.STUDY), ("includefield", "ProcedureCodeSequence.CodeValue"))
    assert [e.keyword for e in ds.ProcedureCodeSequence[0]] == ["CodeValue"]


def test_conditional_and_all_attributes_are_dropped_when_empty_unless_asked_for() -> None:
    built = build_identifier(
        Resource(Level.STUDY), parse_search([("includefield", "all"), ("StudyDescription", "")])
    )
    drop = built.drop_if_empty
    assert f"{tag_for_keyword('TimezoneOffsetFromUTC'):08X}" in drop  # conditional default
    assert f"{tag_for_keyword('PatientAge'):08X}" in drop  # from "all"
    assert f"{tag_for_keyword('StudyDescription'):08X}" not in drop  # asked for by name
    assert f"{tag_for_keyword('PatientName'):08X}" not in drop  # a required default
    assert f"{tag_for_keyword('ModalitiesInStudy'):08X}" in drop  # empty only for objects without Modality
    assert {"PatientAge", "StudyDescription", "ModalitiesInStudy"} <= keywords(built.dataset)


@pytest.mark.parametrize("level", [Level.STUDY, Level.SERIES, Level.IMAGE])
def test_attribute_tables_name_known_attributes_of_their_level(level: Level) -> None:
    for keyword in (*DEFAULTS[level].required, *DEFAULTS[level].conditional, *ALL[level]):
        for part in keyword.split("."):
            assert tag_for_keyword(part) is not None, part
    for keyword in INSTANCE_ALL:
        assert level_of_tag(f"{tag_for_keyword(keyword):08X}") is Level.IMAGE, keyword
