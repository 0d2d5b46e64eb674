"""QIDO-RS query parameters (PS3.18 8.3.4): what each parameter becomes, and the errors that name it."""

from __future__ import annotations

import pytest

from lightbox.dicomweb.qido_params import MAX_OFFSET, SearchParameters, Step, parse_attribute, parse_search
from lightbox.domain.errors import InvalidQuery

PATIENT_NAME = (Step(0x00100010, "PatientName", "PN"),)
PATIENT_ID = (Step(0x00100020, "PatientID", "LO"),)
STUDY_UID = (Step(0x0020000D, "StudyInstanceUID", "UI"),)
SPS_ID = (
    Step(0x00400275, "RequestAttributesSequence", "SQ"),
    Step(0x00400009, "ScheduledProcedureStepID", "SH"),
)


def test_no_parameters_is_every_default() -> None:
    assert parse_search([]) == SearchParameters()


def test_keywords_and_tags_name_the_same_attribute() -> None:
    assert parse_search([("PatientName", "Doe*")]).matches == ((PATIENT_NAME, "Doe*"),)
    assert parse_search([("00100010", "Doe*")]).matches == ((PATIENT_NAME, "Doe*"),)
    assert parse_search([("0010001f", "")]).matches[0][0][0].tag == 0x0010001F  # hex digits in any case


def test_sequence_paths_by_keyword_or_tag() -> None:
    assert parse_attribute("RequestAttributesSequence.ScheduledProcedureStepID") == SPS_ID
    assert parse_attribute("00400275.00400009") == SPS_ID
    assert parse_search([("00400275.00400009", "SPS-1")]).matches == ((SPS_ID, "SPS-1"),)


def test_uid_lists_take_commas_and_backslashes() -> None:
    """PS3.18 8.3.4.1: a UID list is comma-separated; C-FIND's backslash works as well."""
    assert parse_search([("StudyInstanceUID", "1.2.3,1.2.4")]).matches == ((STUDY_UID, "1.2.3\\1.2.4"),)
    assert parse_search([("0020000D", "1.2.3\\1.2.4")]).matches == ((STUDY_UID, "1.2.3\\1.2.4"),)
    # Commas are literal in other values.
    assert parse_search([("StudyDescription", "Head, neck")]).matches[0][1] == "Head, neck"


def test_repeated_keys_match_any_of_their_values() -> None:
    params = parse_search([("StudyInstanceUID", "1.2.3"), ("PatientID", "A"), ("0020000D", "1.2.4")])
    assert params.matches == ((STUDY_UID, "1.2.3\\1.2.4"), (PATIENT_ID, "A"))


def test_empty_values_are_kept_for_universal_matching() -> None:
    assert parse_search([("PatientName", "")]).matches == ((PATIENT_NAME, ""),)


def test_includefield_repeated_and_comma_separated() -> None:
    params = parse_search(
        [("includefield", "00081048,StudyDescription"), ("includefield", "PatientName"), ("includefield", "")]
    )
    assert [path[0].keyword for path in params.includes] == [
        "PhysiciansOfRecord",
        "StudyDescription",
        "PatientName",
    ]
    assert not params.include_all


def test_includefield_all() -> None:
    assert parse_search([("includefield", "all")]).include_all
    params = parse_search([("includefield", "ALL, PatientAge")])
    assert params.include_all and params.includes == (parse_attribute("PatientAge"),)


def test_fuzzymatching() -> None:
    assert parse_search([("fuzzymatching", "true")]).fuzzy
    assert parse_search([("FuzzyMatching", "TRUE")]).fuzzy
    assert not parse_search([("fuzzymatching", "false")]).fuzzy
    with pytest.raises(InvalidQuery, match="fuzzymatching must be true or false, not 'yes'"):
        parse_search([("fuzzymatching", "yes")])


def test_limit_and_offset() -> None:
    params = parse_search([("limit", "25"), ("offset", "50")])
    assert (params.limit, params.offset) == (25, 50)
    assert parse_search([("limit", "0")]).limit == 0
    assert parse_search([("offset", str(MAX_OFFSET))]).offset == MAX_OFFSET
    # The same value twice is one value.
    assert parse_search([("limit", "5"), ("limit", "5")]).limit == 5


@pytest.mark.parametrize(
    ("name", "value"),
    [("limit", "-1"), ("limit", "ten"), ("limit", "1.5"), ("limit", ""), ("offset", "+3"), ("offset", " 3")],
)
def test_bad_limit_or_offset(name: str, value: str) -> None:
    with pytest.raises(InvalidQuery, match=f"{name} must be a whole number from 0 to"):
        parse_search([(name, value)])


def test_orderby_stored_or_newest_first() -> None:
    assert parse_search([]).newest_first is False
    assert parse_search([("orderby", "stored")]).newest_first is False
    assert parse_search([("orderby", "-stored")]).newest_first is True
    for wrong in ("-StudyDate", "newest", ""):
        with pytest.raises(InvalidQuery, match="orderby must be stored"):
            parse_search([("orderby", wrong)])


def test_offset_beyond_what_a_database_takes() -> None:
    with pytest.raises(InvalidQuery, match="offset must be a whole number"):
        parse_search([("offset", str(MAX_OFFSET + 1))])


def test_a_single_parameter_given_twice() -> None:
    with pytest.raises(InvalidQuery, match="limit is given twice"):
        parse_search([("limit", "5"), ("limit", "6")])


def test_unknown_keyword_is_named() -> None:
    with pytest.raises(InvalidQuery, match="unknown attribute 'PatientNme'"):
        parse_search([("PatientNme", "Doe")])
    with pytest.raises(InvalidQuery, match=r"unknown attribute 'Bogus' in 'RequestAttributesSequence.Bogus'"):
        parse_search([("RequestAttributesSequence.Bogus", "x")])
    with pytest.raises(InvalidQuery, match="unknown attribute 'Nonsense'"):
        parse_search([("includefield", "PatientID,Nonsense")])


@pytest.mark.parametrize("name", ["0010002", "001000200", "0010002G", "PatientID.", ".PatientID"])
def test_malformed_attributes(name: str) -> None:
    with pytest.raises(InvalidQuery, match="unknown attribute"):
        parse_attribute(name)


def test_only_sequences_have_items() -> None:
    with pytest.raises(InvalidQuery, match="PatientName is not a sequence"):
        parse_attribute("PatientName.PatientID")


def test_a_sequence_is_matched_by_its_items_attributes() -> None:
    with pytest.raises(InvalidQuery, match="RequestAttributesSequence is a sequence"):
        parse_search([("RequestAttributesSequence", "SPS-1")])
    # Empty, it asks for the whole sequence.
    assert parse_search([("RequestAttributesSequence", "")]).matches[0][1] == ""


@pytest.mark.parametrize("name", ["00020010", "00000900", "00100000", "FFFEE000"])
def test_attributes_that_are_not_in_a_stored_data_set(name: str) -> None:
    with pytest.raises(InvalidQuery, match="is not an attribute of a stored data set"):
        parse_attribute(name)


def test_private_attributes() -> None:
    assert parse_attribute("00230010") == (Step(0x00230010, "00230010", "LO"),)  # a Private Creator
    assert parse_attribute("00231001") == (Step(0x00231001, "00231001", "UN"),)


def test_accept_and_charset_parameters() -> None:
    """PS3.18 8.3.3: media types may be given as a parameter; DICOM JSON is UTF-8, nothing else."""
    assert parse_search([("accept", "application/json")]).accept == "application/json"
    assert parse_search([("charset", "UTF-8")]) == SearchParameters()
    with pytest.raises(InvalidQuery, match="charset 'ISO-8859-1' is not supported"):
        parse_search([("charset", "ISO-8859-1")])


def test_timezone_adjustment_is_refused_not_ignored() -> None:
    """PS3.18 8.3.4.1.1: Timezone Offset From UTC in a query shifts its dates and times; not supported."""
    with pytest.raises(InvalidQuery, match="TimezoneOffsetFromUTC as a query parameter"):
        parse_search([("TimezoneOffsetFromUTC", "+0100")])
    assert parse_search([("00080201", "")]).matches[0][1] == ""  # returned, not matched
