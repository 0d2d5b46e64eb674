"""DIMSE command set codec: round trips, byte equality with pydicom, pynetdicom interoperability, fuzzing."""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from io import BytesIO
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pynetdicom import dimse_messages, dimse_primitives

from lightbox.dicomnet import dimse, status
from lightbox.dicomnet.dimse import DIMSEError, decode_command, encode_command

# --- Strategies: values valid for their VR, so pydicom accepts them unchanged ---

uids = st.from_regex(r"[1-9][0-9]{0,5}(\.(0|[1-9][0-9]{0,5})){0,8}", fullmatch=True)
_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "\\")
aes = st.text(alphabet=_PRINTABLE, min_size=1, max_size=16).map(str.strip).filter(bool)
texts = st.text(alphabet=_PRINTABLE, max_size=64).map(str.strip)
us = st.integers(0, 0xFFFF)
tags = st.lists(st.integers(0, 0xFFFFFFFF), max_size=6)
statuses = st.sampled_from([v for k, v in vars(status).items() if k.isupper() and isinstance(v, int)]) | us

_STRATEGY_BY_KEYWORD: dict[str, st.SearchStrategy[Any]] = {
    "AffectedSOPClassUID": uids,
    "RequestedSOPClassUID": uids,
    "MessageID": us,
    "MessageIDBeingRespondedTo": us,
    "MoveDestination": aes,
    "Priority": st.sampled_from([dimse.PRIORITY_LOW, dimse.PRIORITY_MEDIUM, dimse.PRIORITY_HIGH]),
    "CommandDataSetType": st.sampled_from([dimse.NO_DATA_SET, dimse.DATA_SET_PRESENT, 0x0000, 0x0102]),
    "Status": statuses,
    "OffendingElement": tags,
    "ErrorComment": texts,
    "ErrorID": us,
    "AffectedSOPInstanceUID": uids,
    "RequestedSOPInstanceUID": uids,
    "EventTypeID": us,
    "AttributeIdentifierList": tags,
    "ActionTypeID": us,
    "NumberOfRemainingSuboperations": us,
    "NumberOfCompletedSuboperations": us,
    "NumberOfFailedSuboperations": us,
    "NumberOfWarningSuboperations": us,
    "MoveOriginatorApplicationEntityTitle": aes,
    "MoveOriginatorMessageID": us,
}
command_sets = st.fixed_dictionaries(
    {"CommandField": st.sampled_from(sorted(dimse.COMMAND_NAMES))}, optional=_STRATEGY_BY_KEYWORD
)


def pydicom_encode(fields: Mapping[str, object]) -> bytes:
    """The reference encoding: a pydicom Dataset of the same elements, implicit VR little endian."""

    def write(ds: Dataset) -> bytes:
        fp = DicomBytesIO()
        fp.is_little_endian = True
        fp.is_implicit_VR = True
        write_dataset(fp, ds)
        return fp.getvalue()

    ds = Dataset()
    for keyword, value in fields.items():
        setattr(ds, keyword, value)
    body = write(ds)
    ds.CommandGroupLength = len(body)
    return write(ds)


def pydicom_decode(data: bytes) -> Dataset:
    from pydicom.filereader import read_dataset

    return read_dataset(BytesIO(data), is_implicit_VR=True, is_little_endian=True)


# --- Constants and tables ---


def test_command_field_values_follow_ps3_7_e1() -> None:
    assert (dimse.C_STORE_RQ, dimse.C_STORE_RSP) == (0x0001, 0x8001)
    assert (dimse.C_GET_RQ, dimse.C_GET_RSP, dimse.C_FIND_RQ, dimse.C_FIND_RSP) == (
        0x10,
        0x8010,
        0x20,
        0x8020,
    )
    assert (dimse.C_MOVE_RQ, dimse.C_MOVE_RSP, dimse.C_ECHO_RQ, dimse.C_ECHO_RSP) == (
        0x21,
        0x8021,
        0x30,
        0x8030,
    )
    assert (dimse.N_EVENT_REPORT_RQ, dimse.N_EVENT_REPORT_RSP) == (0x0100, 0x8100)
    assert (dimse.N_GET_RQ, dimse.N_SET_RQ, dimse.N_ACTION_RQ) == (0x0110, 0x0120, 0x0130)
    assert (dimse.N_CREATE_RQ, dimse.N_DELETE_RQ, dimse.C_CANCEL_RQ) == (0x0140, 0x0150, 0x0FFF)
    for rq in (dimse.N_GET_RQ, dimse.N_SET_RQ, dimse.N_ACTION_RQ, dimse.N_CREATE_RQ, dimse.N_DELETE_RQ):
        assert rq | 0x8000 in dimse.COMMAND_NAMES
    assert dimse.NO_DATA_SET == 0x0101
    assert (dimse.PRIORITY_MEDIUM, dimse.PRIORITY_HIGH, dimse.PRIORITY_LOW) == (0, 1, 2)


def test_typed_dict_lists_exactly_the_non_retired_command_elements() -> None:
    assert set(dimse.CommandFields.__annotations__) == set(dimse._BY_KEYWORD)
    assert set(_STRATEGY_BY_KEYWORD) | {"CommandField"} == set(dimse._BY_KEYWORD)


# --- Encoding ---


def test_c_echo_rq_bytes() -> None:
    data = encode_command(dimse.c_echo_rq(7))
    uid = b"1.2.840.10008.1.1\x00"  # 17 characters, NUL padded (PS3.5 6.2)
    expected_body = (
        struct.pack("<HHI", 0, 0x0002, 18)
        + uid
        + struct.pack("<HHIH", 0, 0x0100, 2, 0x0030)
        + struct.pack("<HHIH", 0, 0x0110, 2, 7)
        + struct.pack("<HHIH", 0, 0x0800, 2, 0x0101)
    )
    assert data == struct.pack("<HHII", 0, 0, 4, len(expected_body)) + expected_body


def test_encode_pads_text_with_space_and_ignores_none_and_group_length() -> None:
    fields = {
        "CommandField": dimse.C_MOVE_RQ,
        "MoveDestination": "ABC",
        "ErrorComment": None,
        "CommandGroupLength": 12345,
    }
    data = encode_command(fields)
    assert b"ABC " in data
    assert decode_command(data) == {"CommandField": dimse.C_MOVE_RQ, "MoveDestination": "ABC"}
    assert struct.unpack_from("<I", data, 8)[0] == len(data) - 12


@pytest.mark.parametrize(
    "fields",
    [
        {"CommandField": 1, "NoSuchKeyword": 1},
        {"CommandField": 1, "PatientName": "X"},
        {"CommandField": -1},
        {"CommandField": 0x10000},
        {"CommandField": "1"},
        {"CommandField": True},
        {"CommandField": 1, "AffectedSOPClassUID": 1.2},
        {"CommandField": 1, "AffectedSOPClassUID": "1.2.é"},
        {"CommandField": 1, "MoveDestination": "€"},
        {"CommandField": 1, "MoveDestination": b"AE"},
        {"CommandField": 1, "OffendingElement": "00100010"},
        {"CommandField": 1, "OffendingElement": [0x1_0000_0000]},
        {"CommandField": 1, "OffendingElement": [-1]},
    ],
)
def test_encode_rejects_bad_fields(fields: dict[str, object]) -> None:
    with pytest.raises(DIMSEError):
        encode_command(fields)


def test_single_tag_is_accepted_for_at() -> None:
    data = encode_command({"CommandField": dimse.C_STORE_RSP, "OffendingElement": 0x00100020})
    assert decode_command(data)["OffendingElement"] == [0x00100020]


@given(command_sets)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_encoding_is_byte_identical_to_pydicom(fields: dict[str, Any]) -> None:
    assert encode_command(fields) == pydicom_encode(fields)


@given(command_sets)
@settings(max_examples=300)
def test_arbitrary_fields_round_trip(fields: dict[str, Any]) -> None:
    data = encode_command(fields)
    assert decode_command(data) == fields
    assert decode_command(memoryview(data)) == fields
    assert decode_command(bytearray(data)) == fields


@given(command_sets)
@settings(max_examples=100)
def test_pydicom_reads_what_we_write(fields: dict[str, Any]) -> None:
    ds = pydicom_decode(encode_command(fields))
    assert ds.CommandGroupLength == len(encode_command(fields)) - 12
    for keyword, value in fields.items():
        got = ds[keyword].value
        if keyword in ("OffendingElement", "AttributeIdentifierList"):
            got = [] if got in (None, b"", "") else ([got] if isinstance(got, int) else list(got))
        elif isinstance(value, str) and got is None:
            got = ""
        assert got == value, keyword


def test_latin1_text_round_trips() -> None:
    fields = {"CommandField": dimse.C_STORE_RSP, "ErrorComment": "Müller"}
    assert decode_command(encode_command(fields)) == fields


# --- Decoding ---


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0, element, len(value)) + value


def _command_set(*elements: bytes) -> bytes:
    body = b"".join(elements)
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


def test_decode_strips_padding_and_skips_unknown_and_retired_elements() -> None:
    data = _command_set(
        _element(0x0002, b"1.2.3 \x00\x00"),  # some peers pad UI with a space
        _element(0x0010, b"RECOG "),  # CommandRecognitionCode, retired
        _element(0x0100, struct.pack("<H", dimse.C_MOVE_RQ)),
        _element(0x0600, b" DEST\x00 "),  # AE: leading and trailing padding is insignificant
        _element(0x0777, b"\x01\x02"),  # not in the dictionary
        _element(0x0800, struct.pack("<H", 1)),
        _element(0x5170, b"12"),  # Copies, retired
    )
    assert decode_command(data) == {
        "AffectedSOPClassUID": "1.2.3",
        "CommandField": dimse.C_MOVE_RQ,
        "MoveDestination": "DEST",
        "CommandDataSetType": 1,
    }


def test_decode_treats_empty_numbers_as_absent() -> None:
    data = _command_set(_element(0x0100, struct.pack("<H", 1)), _element(0x0110, b""), _element(0x0901, b""))
    assert decode_command(data) == {"CommandField": 1, "OffendingElement": []}


_GOOD_FIELD = _element(0x0100, struct.pack("<H", dimse.C_ECHO_RQ))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter"),
        (b"\x00" * 11, "shorter"),
        (struct.pack("<HHII", 0, 1, 4, 0), "start with"),
        (struct.pack("<HHII", 0, 0, 2, 0), "start with"),
        (struct.pack("<HHII", 0, 0, 4, 5) + _GOOD_FIELD, "CommandGroupLength is"),
        (struct.pack("<HHII", 0, 0, 4, 99) + _GOOD_FIELD, "CommandGroupLength is"),
        (_command_set(_GOOD_FIELD, b"\x00\x00\x00\x09"), "truncated"),
        (_command_set(_GOOD_FIELD, struct.pack("<HHI", 8, 0x10, 0)), "not in command group"),
        (_command_set(_element(0x0110, b"\x01\x00"), _GOOD_FIELD), "ascending"),
        (_command_set(_GOOD_FIELD, _GOOD_FIELD), "repeated"),
        (_command_set(_GOOD_FIELD, _element(0, b"\x00" * 4)), "ascending"),
        (_command_set(_GOOD_FIELD, struct.pack("<HHI", 0, 0x0110, 0xFFFFFFFF)), "overruns"),
        (_command_set(_element(0x0100, b"\x01\x00\x00\x00")), "expected 2"),
        (_command_set(_GOOD_FIELD, _element(0x0901, b"\x10\x00\x10")), "multiple of 4"),
        (_command_set(_element(0x0002, b"1.\xff"), _GOOD_FIELD), "not ASCII"),
        (_command_set(_element(0x0110, b"\x01\x00")), "no CommandField"),
        (_command_set(), "no CommandField"),
    ],
)
def test_decode_rejects_malformed_command_sets(data: bytes, reason: str) -> None:
    with pytest.raises(DIMSEError, match=reason):
        decode_command(data)


def test_decode_returns_a_plain_dict_without_pydicom_datasets() -> None:
    command = dimse.c_store_rq(1, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", move_originator_aet="SCU")
    decoded = decode_command(encode_command(command))
    assert type(decoded) is dict
    assert all(type(v) in (int, str, list) for v in decoded.values())
    assert decoded == command


# --- Fuzzing: only DIMSEError may escape ---


def _decode_or_dimse_error(data: bytes) -> None:
    try:
        result = decode_command(data)
    except DIMSEError:
        return
    assert type(result) is dict
    assert "CommandField" in result


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _decode_or_dimse_error(data)


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_fuzz_arbitrary_body_with_valid_group_length(body: bytes) -> None:
    _decode_or_dimse_error(struct.pack("<HHII", 0, 0, 4, len(body)) + body)


@given(command_sets, st.data())
@settings(max_examples=300)
def test_fuzz_truncations_and_bit_flips(fields: dict[str, Any], data: st.DataObject) -> None:
    encoded = encode_command(fields)
    cut = data.draw(st.integers(0, len(encoded)))
    _decode_or_dimse_error(encoded[:cut])
    flipped = bytearray(encoded)
    for _ in range(data.draw(st.integers(1, 4))):
        bit = data.draw(st.integers(0, len(encoded) * 8 - 1))
        flipped[bit // 8] ^= 1 << (bit % 8)
    _decode_or_dimse_error(bytes(flipped))
    # the same flips with the group length repaired, so the parser goes past the first check
    struct.pack_into("<I", flipped, 8, len(flipped) - 12)
    flipped[:8] = encoded[:8]
    _decode_or_dimse_error(bytes(flipped))


# --- Builders ---


def _round_trip(fields: dimse.CommandFields) -> dimse.CommandFields:
    decoded = decode_command(encode_command(fields))
    assert decoded == fields
    assert encode_command(fields) == pydicom_encode(fields)
    return decoded


@given(us, statuses)
def test_c_echo(message_id: int, code: int) -> None:
    rq = _round_trip(dimse.c_echo_rq(message_id))
    assert rq["AffectedSOPClassUID"] == dimse.VERIFICATION_SOP_CLASS
    assert dimse.command_field(rq) == dimse.C_ECHO_RQ and dimse.message_id(rq) == message_id
    assert not dimse.has_data_set(rq) and not dimse.is_response(rq)
    rsp = _round_trip(dimse.c_echo_rsp(message_id, code))
    assert rsp["MessageIDBeingRespondedTo"] == message_id and rsp["Status"] == code
    assert dimse.is_response(rsp) and not dimse.has_data_set(rsp)


@given(
    us, uids, uids, st.sampled_from([0, 1, 2]), st.none() | aes, st.none() | us, statuses, st.none() | texts
)
def test_c_store(
    message_id: int,
    sop_class: str,
    sop_instance: str,
    priority: int,
    originator: str | None,
    originator_id: int | None,
    code: int,
    comment: str | None,
) -> None:
    rq = _round_trip(
        dimse.c_store_rq(message_id, sop_class, sop_instance, priority, originator, originator_id)
    )
    assert dimse.has_data_set(rq) and rq["Priority"] == priority
    assert rq.get("MoveOriginatorApplicationEntityTitle") == originator
    assert rq.get("MoveOriginatorMessageID") == originator_id
    rsp = _round_trip(dimse.c_store_rsp(rq, code, comment))
    assert rsp["CommandField"] == dimse.C_STORE_RSP
    assert rsp["MessageIDBeingRespondedTo"] == message_id
    assert rsp["AffectedSOPClassUID"] == sop_class and rsp["AffectedSOPInstanceUID"] == sop_instance
    assert rsp["CommandDataSetType"] == dimse.NO_DATA_SET and rsp["Status"] == code
    assert rsp.get("ErrorComment") == (comment or None)


def test_error_comment_is_made_valid_lo() -> None:
    rq = dimse.c_store_rq(1, "1.2", "1.2.3")
    rsp = dimse.c_store_rsp(rq, status.PROCESSING_FAILURE, "disk \\ full: " + "é" * 100 + "\n")
    comment = rsp["ErrorComment"]
    assert len(comment) <= 64 and comment.isascii() and "\\" not in comment and "\n" not in comment
    assert decode_command(encode_command(rsp)) == rsp


def test_response_to_a_request_without_message_id_is_refused() -> None:
    with pytest.raises(DIMSEError, match="MessageID"):
        dimse.c_store_rsp({"CommandField": dimse.C_STORE_RQ}, status.SUCCESS)
    with pytest.raises(DIMSEError):
        dimse.message_id({"CommandField": 1})
    with pytest.raises(DIMSEError):
        dimse.command_field({})


@given(us, uids, statuses, st.booleans())
def test_c_find(message_id: int, sop_class: str, code: int, has_identifier: bool) -> None:
    rq = _round_trip(dimse.c_find_rq(message_id, sop_class, dimse.PRIORITY_HIGH))
    assert dimse.has_data_set(rq) and rq["Priority"] == dimse.PRIORITY_HIGH
    rsp = _round_trip(dimse.c_find_rsp(rq, code, has_identifier))
    assert rsp["CommandField"] == dimse.C_FIND_RSP and rsp["AffectedSOPClassUID"] == sop_class
    assert rsp["MessageIDBeingRespondedTo"] == message_id and rsp["Status"] == code
    assert dimse.has_data_set(rsp) is has_identifier


_counts = st.none() | us


@pytest.mark.parametrize(
    ("build_rq", "build_rsp", "rsp_field"),
    [
        (lambda mid, uid: dimse.c_move_rq(mid, uid, "DEST"), dimse.c_move_rsp, dimse.C_MOVE_RSP),
        (lambda mid, uid: dimse.c_get_rq(mid, uid), dimse.c_get_rsp, dimse.C_GET_RSP),
    ],
)
@given(us, uids, statuses, _counts, _counts, _counts, _counts, st.booleans())
def test_c_move_and_c_get(
    build_rq: Callable[[int, str], dimse.CommandFields],
    build_rsp: Callable[..., dimse.CommandFields],
    rsp_field: int,
    message_id: int,
    sop_class: str,
    code: int,
    remaining: int | None,
    completed: int | None,
    failed: int | None,
    warning: int | None,
    has_identifier: bool,
) -> None:
    rq = _round_trip(build_rq(message_id, sop_class))
    assert dimse.has_data_set(rq)
    rsp = _round_trip(build_rsp(rq, code, remaining, completed, failed, warning, has_identifier))
    assert rsp["CommandField"] == rsp_field and rsp["MessageIDBeingRespondedTo"] == message_id
    assert rsp["AffectedSOPClassUID"] == sop_class and rsp["Status"] == code
    assert rsp.get("NumberOfRemainingSuboperations") == remaining
    assert rsp.get("NumberOfCompletedSuboperations") == completed
    assert rsp.get("NumberOfFailedSuboperations") == failed
    assert rsp.get("NumberOfWarningSuboperations") == warning
    assert dimse.has_data_set(rsp) is has_identifier


def test_c_move_rq_carries_destination_and_c_cancel() -> None:
    assert _round_trip(dimse.c_move_rq(3, "1.2", "STORESCP"))["MoveDestination"] == "STORESCP"
    cancel = _round_trip(dimse.c_cancel_rq(3))
    assert cancel == {
        "CommandField": dimse.C_CANCEL_RQ,
        "MessageIDBeingRespondedTo": 3,
        "CommandDataSetType": dimse.NO_DATA_SET,
    }


@given(us, uids, uids, us, statuses, st.booleans(), st.booleans())
def test_n_event_report(
    message_id: int, sop_class: str, sop_instance: str, event: int, code: int, info: bool, reply: bool
) -> None:
    rq = _round_trip(dimse.n_event_report_rq(message_id, sop_class, sop_instance, event, info))
    assert rq["EventTypeID"] == event and dimse.has_data_set(rq) is info
    rsp = _round_trip(dimse.n_event_report_rsp(rq, code, reply))
    assert rsp["CommandField"] == dimse.N_EVENT_REPORT_RSP and rsp["MessageIDBeingRespondedTo"] == message_id
    assert (rsp["AffectedSOPClassUID"], rsp["AffectedSOPInstanceUID"]) == (sop_class, sop_instance)
    assert rsp["EventTypeID"] == event and rsp["Status"] == code and dimse.has_data_set(rsp) is reply


@given(us, uids, uids, st.none() | tags, statuses, st.booleans())
def test_n_get(
    message_id: int, sop_class: str, sop_instance: str, attrs: list[int] | None, code: int, has_list: bool
) -> None:
    rq = _round_trip(dimse.n_get_rq(message_id, sop_class, sop_instance, attrs))
    assert (rq["RequestedSOPClassUID"], rq["RequestedSOPInstanceUID"]) == (sop_class, sop_instance)
    assert rq.get("AttributeIdentifierList") == attrs and not dimse.has_data_set(rq)
    rsp = _round_trip(dimse.n_get_rsp(rq, code, has_list))
    assert (rsp["AffectedSOPClassUID"], rsp["AffectedSOPInstanceUID"]) == (sop_class, sop_instance)
    assert rsp["CommandField"] == dimse.N_GET_RSP and dimse.has_data_set(rsp) is has_list


@given(us, uids, uids, statuses)
def test_n_set_and_n_delete(message_id: int, sop_class: str, sop_instance: str, code: int) -> None:
    rq = _round_trip(dimse.n_set_rq(message_id, sop_class, sop_instance))
    assert dimse.has_data_set(rq)
    rsp = _round_trip(dimse.n_set_rsp(rq, code))
    assert rsp["CommandField"] == dimse.N_SET_RSP and rsp["AffectedSOPInstanceUID"] == sop_instance
    rq = _round_trip(dimse.n_delete_rq(message_id, sop_class, sop_instance))
    assert rq["CommandField"] == dimse.N_DELETE_RQ and not dimse.has_data_set(rq)
    rsp = _round_trip(dimse.n_delete_rsp(rq, code))
    assert rsp["CommandField"] == dimse.N_DELETE_RSP and rsp["MessageIDBeingRespondedTo"] == message_id
    assert (rsp["AffectedSOPClassUID"], rsp["AffectedSOPInstanceUID"]) == (sop_class, sop_instance)
    assert not dimse.has_data_set(rsp)


@given(us, uids, uids, us, statuses, st.booleans(), st.booleans())
def test_n_action(
    message_id: int, sop_class: str, sop_instance: str, action: int, code: int, info: bool, reply: bool
) -> None:
    rq = _round_trip(dimse.n_action_rq(message_id, sop_class, sop_instance, action, info))
    assert rq["ActionTypeID"] == action and dimse.has_data_set(rq) is info
    rsp = _round_trip(dimse.n_action_rsp(rq, code, reply))
    assert rsp["CommandField"] == dimse.N_ACTION_RSP and rsp["ActionTypeID"] == action
    assert (rsp["AffectedSOPClassUID"], rsp["AffectedSOPInstanceUID"]) == (sop_class, sop_instance)
    assert dimse.has_data_set(rsp) is reply


@given(us, uids, st.none() | uids, uids, statuses, st.booleans())
def test_n_create(
    message_id: int, sop_class: str, requested: str | None, assigned: str, code: int, has_list: bool
) -> None:
    rq = _round_trip(dimse.n_create_rq(message_id, sop_class, requested, has_list))
    assert rq.get("AffectedSOPInstanceUID") == requested and dimse.has_data_set(rq) is has_list
    rsp = _round_trip(dimse.n_create_rsp(rq, code, None if requested else assigned))
    assert rsp["CommandField"] == dimse.N_CREATE_RSP and rsp["AffectedSOPClassUID"] == sop_class
    assert rsp["AffectedSOPInstanceUID"] == (requested or assigned)


# --- Interoperability with pynetdicom ---


def _pynetdicom_command_set(message_class: type, primitive: object) -> bytes:
    message = message_class()
    message.primitive_to_message(primitive)
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = True
    write_dataset(fp, message.command_set)
    return fp.getvalue()


def _primitive(cls: type, **values: object) -> object:
    primitive = cls()
    for name, value in values.items():
        setattr(primitive, name, value)
    return primitive


_CT = "1.2.840.10008.5.1.4.1.1.2"
_STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
_COMMITMENT = "1.2.840.10008.1.20.1"
_ID = BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")


PYNETDICOM_CASES: list[tuple[type, object, dimse.CommandFields]] = [
    (
        dimse_messages.C_STORE_RQ,
        _primitive(
            dimse_primitives.C_STORE,
            MessageID=5,
            AffectedSOPClassUID=_CT,
            AffectedSOPInstanceUID="1.2.3.4.5",
            Priority=2,
            MoveOriginatorApplicationEntityTitle="MOVESCU",
            MoveOriginatorMessageID=9,
            DataSet=BytesIO(b"\x00" * 8),
        ),
        dimse.c_store_rq(5, _CT, "1.2.3.4.5", dimse.PRIORITY_LOW, "MOVESCU", 9),
    ),
    (
        dimse_messages.C_STORE_RSP,
        _primitive(
            dimse_primitives.C_STORE,
            MessageIDBeingRespondedTo=5,
            AffectedSOPClassUID=_CT,
            AffectedSOPInstanceUID="1.2.3.4.5",
            Status=0xB000,
        ),
        dimse.c_store_rsp(dimse.c_store_rq(5, _CT, "1.2.3.4.5"), status.COERCION_OF_DATA_ELEMENTS),
    ),
    (
        dimse_messages.C_ECHO_RQ,
        _primitive(
            dimse_primitives.C_ECHO, MessageID=65535, AffectedSOPClassUID=dimse.VERIFICATION_SOP_CLASS
        ),
        dimse.c_echo_rq(65535),
    ),
    (
        dimse_messages.C_ECHO_RSP,
        _primitive(
            dimse_primitives.C_ECHO,
            MessageIDBeingRespondedTo=1,
            AffectedSOPClassUID=dimse.VERIFICATION_SOP_CLASS,
            Status=0,
        ),
        dimse.c_echo_rsp(1, status.SUCCESS),
    ),
    (
        dimse_messages.C_FIND_RQ,
        _primitive(
            dimse_primitives.C_FIND,
            MessageID=2,
            AffectedSOPClassUID=_STUDY_ROOT_FIND,
            Priority=1,
            Identifier=_ID,
        ),
        dimse.c_find_rq(2, _STUDY_ROOT_FIND, dimse.PRIORITY_HIGH),
    ),
    (
        dimse_messages.C_FIND_RSP,
        _primitive(
            dimse_primitives.C_FIND,
            MessageIDBeingRespondedTo=2,
            AffectedSOPClassUID=_STUDY_ROOT_FIND,
            Status=0xFF00,
            Identifier=_ID,
        ),
        dimse.c_find_rsp(dimse.c_find_rq(2, _STUDY_ROOT_FIND), status.PENDING, True),
    ),
    (
        dimse_messages.C_MOVE_RQ,
        _primitive(
            dimse_primitives.C_MOVE,
            MessageID=3,
            AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.2.2",
            Priority=0,
            MoveDestination="STORESCP",
            Identifier=_ID,
        ),
        dimse.c_move_rq(3, "1.2.840.10008.5.1.4.1.2.2.2", "STORESCP"),
    ),
    (
        dimse_messages.C_MOVE_RSP,
        _primitive(
            dimse_primitives.C_MOVE,
            MessageIDBeingRespondedTo=3,
            AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.2.2",
            Status=0xFF00,
            NumberOfRemainingSuboperations=10,
            NumberOfCompletedSuboperations=2,
            NumberOfFailedSuboperations=1,
            NumberOfWarningSuboperations=0,
        ),
        dimse.c_move_rsp(
            dimse.c_move_rq(3, "1.2.840.10008.5.1.4.1.2.2.2", "X"), status.PENDING, 10, 2, 1, 0, False
        ),
    ),
    (
        dimse_messages.C_GET_RSP,
        _primitive(
            dimse_primitives.C_GET,
            MessageIDBeingRespondedTo=4,
            AffectedSOPClassUID="1.2.840.10008.5.1.4.1.2.2.3",
            Status=0xB000,
            NumberOfCompletedSuboperations=5,
            NumberOfFailedSuboperations=1,
            NumberOfWarningSuboperations=0,
            Identifier=_ID,
        ),
        dimse.c_get_rsp(
            dimse.c_get_rq(4, "1.2.840.10008.5.1.4.1.2.2.3"),
            status.SUBOPERATIONS_COMPLETE_WITH_FAILURES,
            None,
            5,
            1,
            0,
            True,
        ),
    ),
    (
        dimse_messages.C_CANCEL_RQ,
        _primitive(dimse_primitives.C_CANCEL, MessageIDBeingRespondedTo=7),
        dimse.c_cancel_rq(7),
    ),
    (
        dimse_messages.N_EVENT_REPORT_RQ,
        _primitive(
            dimse_primitives.N_EVENT_REPORT,
            MessageID=8,
            AffectedSOPClassUID=_COMMITMENT,
            AffectedSOPInstanceUID="1.2.840.10008.1.20.1.1",
            EventTypeID=1,
            EventInformation=_ID,
        ),
        dimse.n_event_report_rq(8, _COMMITMENT, "1.2.840.10008.1.20.1.1", 1, True),
    ),
    (
        dimse_messages.N_GET_RQ,
        _primitive(
            dimse_primitives.N_GET,
            MessageID=9,
            RequestedSOPClassUID="1.2.840.10008.5.1.1.16",
            RequestedSOPInstanceUID="1.2.840.10008.5.1.1.17",
            AttributeIdentifierList=[0x21100010, 0x00100010],
        ),
        dimse.n_get_rq(9, "1.2.840.10008.5.1.1.16", "1.2.840.10008.5.1.1.17", [0x21100010, 0x00100010]),
    ),
    (
        dimse_messages.N_SET_RQ,
        _primitive(
            dimse_primitives.N_SET,
            MessageID=10,
            RequestedSOPClassUID="1.2.840.10008.3.1.2.3.3",
            RequestedSOPInstanceUID="1.2.3",
            ModificationList=_ID,
        ),
        dimse.n_set_rq(10, "1.2.840.10008.3.1.2.3.3", "1.2.3"),
    ),
    (
        dimse_messages.N_ACTION_RQ,
        _primitive(
            dimse_primitives.N_ACTION,
            MessageID=11,
            RequestedSOPClassUID=_COMMITMENT,
            RequestedSOPInstanceUID="1.2.840.10008.1.20.1.1",
            ActionTypeID=1,
            ActionInformation=_ID,
        ),
        dimse.n_action_rq(11, _COMMITMENT, "1.2.840.10008.1.20.1.1", 1, True),
    ),
    (
        dimse_messages.N_ACTION_RSP,
        _primitive(
            dimse_primitives.N_ACTION,
            MessageIDBeingRespondedTo=11,
            AffectedSOPClassUID=_COMMITMENT,
            AffectedSOPInstanceUID="1.2.840.10008.1.20.1.1",
            ActionTypeID=1,
            Status=0,
        ),
        dimse.n_action_rsp(dimse.n_action_rq(11, _COMMITMENT, "1.2.840.10008.1.20.1.1", 1), status.SUCCESS),
    ),
    (
        dimse_messages.N_CREATE_RQ,
        _primitive(
            dimse_primitives.N_CREATE,
            MessageID=12,
            AffectedSOPClassUID="1.2.840.10008.3.1.2.3.3",
            AffectedSOPInstanceUID="1.2.3.9",
            AttributeList=_ID,
        ),
        dimse.n_create_rq(12, "1.2.840.10008.3.1.2.3.3", "1.2.3.9", True),
    ),
    (
        dimse_messages.N_CREATE_RSP,
        _primitive(
            dimse_primitives.N_CREATE,
            MessageIDBeingRespondedTo=12,
            AffectedSOPClassUID="1.2.840.10008.3.1.2.3.3",
            AffectedSOPInstanceUID="1.2.3.9",
            Status=0x0111,
        ),
        dimse.n_create_rsp(
            dimse.n_create_rq(12, "1.2.840.10008.3.1.2.3.3"), status.DUPLICATE_SOP_INSTANCE, "1.2.3.9"
        ),
    ),
    (
        dimse_messages.N_DELETE_RQ,
        _primitive(
            dimse_primitives.N_DELETE,
            MessageID=13,
            RequestedSOPClassUID="1.2.840.10008.5.1.1.16",
            RequestedSOPInstanceUID="1.2.4",
        ),
        dimse.n_delete_rq(13, "1.2.840.10008.5.1.1.16", "1.2.4"),
    ),
]


@pytest.mark.parametrize(
    ("message_class", "primitive", "expected"),
    PYNETDICOM_CASES,
    ids=[case[0].__name__ for case in PYNETDICOM_CASES],
)
def test_decodes_pynetdicom_command_sets(
    message_class: type, primitive: object, expected: dimse.CommandFields
) -> None:
    theirs = _pynetdicom_command_set(message_class, primitive)
    assert decode_command(theirs) == expected
    # pynetdicom's data set marker is 0x0001, as ours, so the bytes agree too
    assert encode_command(expected) == theirs


def test_pynetdicom_decodes_ours() -> None:
    from pynetdicom.dsutils import decode

    ours = encode_command(dimse.c_store_rq(5, _CT, "1.2.3.4.5", dimse.PRIORITY_LOW, "MOVESCU", 9))
    ds = decode(BytesIO(ours), True, True)
    assert ds.CommandField == dimse.C_STORE_RQ and ds.MessageID == 5
    assert ds.AffectedSOPInstanceUID == "1.2.3.4.5" and ds.MoveOriginatorApplicationEntityTitle == "MOVESCU"
    message = dimse_messages.C_STORE_RQ()
    message.command_set = ds
    primitive = message.message_to_primitive()
    assert isinstance(primitive, dimse_primitives.C_STORE)
    assert primitive.AffectedSOPClassUID == _CT and primitive.Priority == 2


# --- Status categories ---

_EXPECTED_CATEGORY = {
    "SUCCESS": "success",
    "CANCEL": "cancel",
    "PENDING": "pending",
    "PENDING_WARNING": "pending",
    "ATTRIBUTE_NOT_SUPPORTED_WARNING": "warning",
    "ATTRIBUTE_LIST_ERROR": "warning",
    "ATTRIBUTE_VALUE_OUT_OF_RANGE": "warning",
    "COERCION_OF_DATA_ELEMENTS": "warning",
    "ELEMENTS_DISCARDED": "warning",
    "DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING": "warning",
    "SUBOPERATIONS_COMPLETE_WITH_FAILURES": "warning",
}


def _status_constants() -> dict[str, int]:
    return {k: v for k, v in vars(status).items() if k.isupper() and not k.startswith("_")}


def test_every_status_constant_has_its_ps3_7_c1_category() -> None:
    constants = _status_constants()
    assert len(constants) >= 35
    for name, code in constants.items():
        assert 0 <= code <= 0xFFFF
        assert status.category(code) == _EXPECTED_CATEGORY.get(name, "failure"), name


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("SUCCESS", 0x0000),
        ("CANCEL", 0xFE00),
        ("PENDING", 0xFF00),
        ("PENDING_WARNING", 0xFF01),
        ("OUT_OF_RESOURCES", 0xA700),
        ("DATA_SET_DOES_NOT_MATCH_SOP_CLASS", 0xA900),
        ("CANNOT_UNDERSTAND", 0xC000),
        ("COERCION_OF_DATA_ELEMENTS", 0xB000),
        ("ELEMENTS_DISCARDED", 0xB006),
        ("DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING", 0xB007),
        ("OUT_OF_RESOURCES_MATCHES", 0xA701),
        ("OUT_OF_RESOURCES_SUBOPERATIONS", 0xA702),
        ("MOVE_DESTINATION_UNKNOWN", 0xA801),
        ("NO_SUCH_ATTRIBUTE", 0x0105),
        ("PROCESSING_FAILURE", 0x0110),
        ("DUPLICATE_SOP_INSTANCE", 0x0111),
        ("NO_SUCH_OBJECT_INSTANCE", 0x0112),
        ("NO_SUCH_SOP_CLASS", 0x0118),
        ("SOP_CLASS_NOT_SUPPORTED", 0x0122),
        ("NOT_AUTHORIZED", 0x0124),
        ("DUPLICATE_INVOCATION", 0x0210),
        ("UNRECOGNIZED_OPERATION", 0x0211),
        ("MISTYPED_ARGUMENT", 0x0212),
        ("RESOURCE_LIMITATION", 0x0213),
    ],
)
def test_status_values(name: str, code: int) -> None:
    assert getattr(status, name) == code


@given(us)
def test_category_of_any_code_follows_the_ranges(code: int) -> None:
    got = status.category(code)
    if 0xB000 <= code <= 0xBFFF or code in (0x0001, 0x0107, 0x0116):
        assert got == "warning"
    elif code == 0:
        assert got == "success"
    elif code in (0xFF00, 0xFF01):
        assert got == "pending"
    elif code == 0xFE00:
        assert got == "cancel"
    else:
        assert got == "failure"
