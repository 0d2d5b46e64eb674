"""DIMSE command set codec (PS3.7 chapters 6, 9, 10 and Annex E).

A command set is always group 0000 in implicit VR little endian (PS3.7 6.3.1), CommandGroupLength first.
It is parsed and built by hand with :mod:`struct`: this runs once per message, i.e. once per C-STORE, so it
avoids pydicom Datasets entirely. pydicom's data dictionary is read once at import for each tag and VR.

Representation
--------------
A command is a plain ``dict`` keyed by the standard keywords (:class:`CommandFields`, a ``TypedDict`` so
mypy checks keys and value types). A dict literal is the cheapest thing Python can build and a key lookup the
cheapest read; no wrapper object is constructed per message. Values are:

- US and UL: ``int``;
- UI, AE, LO (and other text VRs): ``str`` without padding;
- AT (OffendingElement, AttributeIdentifierList): ``list[int]`` of tags as ``0xGGGGEEEE``.

CommandGroupLength is never part of the dict: :func:`encode_command` computes it and :func:`decode_command`
checks it. In :func:`encode_command` a value of ``None`` means "absent", so optional fields pass through.
"""

import struct
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import TypedDict, cast

from pydicom.datadict import DicomDictionary

__all__ = [
    "COMMAND_NAMES",
    "C_CANCEL_RQ",
    "C_ECHO_RQ",
    "C_ECHO_RSP",
    "C_FIND_RQ",
    "C_FIND_RSP",
    "C_GET_RQ",
    "C_GET_RSP",
    "C_MOVE_RQ",
    "C_MOVE_RSP",
    "C_STORE_RQ",
    "C_STORE_RSP",
    "DATA_SET_PRESENT",
    "NO_DATA_SET",
    "N_ACTION_RQ",
    "N_ACTION_RSP",
    "N_CREATE_RQ",
    "N_CREATE_RSP",
    "N_DELETE_RQ",
    "N_DELETE_RSP",
    "N_EVENT_REPORT_RQ",
    "N_EVENT_REPORT_RSP",
    "N_GET_RQ",
    "N_GET_RSP",
    "N_SET_RQ",
    "N_SET_RSP",
    "PRIORITY_HIGH",
    "PRIORITY_LOW",
    "PRIORITY_MEDIUM",
    "VERIFICATION_SOP_CLASS",
    "CommandFields",
    "DIMSEError",
    "c_cancel_rq",
    "c_echo_rq",
    "c_echo_rsp",
    "c_find_rq",
    "c_find_rsp",
    "c_get_rq",
    "c_get_rsp",
    "c_move_rq",
    "c_move_rsp",
    "c_store_rq",
    "c_store_rsp",
    "command_field",
    "decode_command",
    "encode_command",
    "has_data_set",
    "is_response",
    "message_id",
    "n_action_rq",
    "n_action_rsp",
    "n_create_rq",
    "n_create_rsp",
    "n_delete_rq",
    "n_delete_rsp",
    "n_event_report_rq",
    "n_event_report_rsp",
    "n_get_rq",
    "n_get_rsp",
    "n_set_rq",
    "n_set_rsp",
]

# PS3.7 E.1: CommandField values
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_GET_RQ = 0x0010
C_GET_RSP = 0x8010
C_FIND_RQ = 0x0020
C_FIND_RSP = 0x8020
C_MOVE_RQ = 0x0021
C_MOVE_RSP = 0x8021
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
N_EVENT_REPORT_RQ = 0x0100
N_EVENT_REPORT_RSP = 0x8100
N_GET_RQ = 0x0110
N_GET_RSP = 0x8110
N_SET_RQ = 0x0120
N_SET_RSP = 0x8120
N_ACTION_RQ = 0x0130
N_ACTION_RSP = 0x8130
N_CREATE_RQ = 0x0140
N_CREATE_RSP = 0x8140
N_DELETE_RQ = 0x0150
N_DELETE_RSP = 0x8150
C_CANCEL_RQ = 0x0FFF

COMMAND_NAMES: dict[int, str] = {
    C_STORE_RQ: "C-STORE-RQ",
    C_STORE_RSP: "C-STORE-RSP",
    C_GET_RQ: "C-GET-RQ",
    C_GET_RSP: "C-GET-RSP",
    C_FIND_RQ: "C-FIND-RQ",
    C_FIND_RSP: "C-FIND-RSP",
    C_MOVE_RQ: "C-MOVE-RQ",
    C_MOVE_RSP: "C-MOVE-RSP",
    C_ECHO_RQ: "C-ECHO-RQ",
    C_ECHO_RSP: "C-ECHO-RSP",
    N_EVENT_REPORT_RQ: "N-EVENT-REPORT-RQ",
    N_EVENT_REPORT_RSP: "N-EVENT-REPORT-RSP",
    N_GET_RQ: "N-GET-RQ",
    N_GET_RSP: "N-GET-RSP",
    N_SET_RQ: "N-SET-RQ",
    N_SET_RSP: "N-SET-RSP",
    N_ACTION_RQ: "N-ACTION-RQ",
    N_ACTION_RSP: "N-ACTION-RSP",
    N_CREATE_RQ: "N-CREATE-RQ",
    N_CREATE_RSP: "N-CREATE-RSP",
    N_DELETE_RQ: "N-DELETE-RQ",
    N_DELETE_RSP: "N-DELETE-RSP",
    C_CANCEL_RQ: "C-CANCEL-RQ",
}

# PS3.7 E.1 CommandDataSetType: 0101H means no data set; any other value means one follows.
NO_DATA_SET = 0x0101
DATA_SET_PRESENT = 0x0001

# PS3.7 9.1.1.1.6 Priority
PRIORITY_MEDIUM = 0x0000
PRIORITY_HIGH = 0x0001
PRIORITY_LOW = 0x0002

VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"  # PS3.4 A.4

# PS3.5 10.2 / PS3.5 6.2: maximum length of an LO value in characters
_LO_MAX = 64


class DIMSEError(ValueError):
    """A command set that cannot be encoded or decoded; the message says which element and why."""


class CommandFields(TypedDict, total=False):
    """The non-retired command elements of PS3.7 E.1, keyed by their standard keywords."""

    AffectedSOPClassUID: str
    RequestedSOPClassUID: str
    CommandField: int
    MessageID: int
    MessageIDBeingRespondedTo: int
    MoveDestination: str
    Priority: int
    CommandDataSetType: int
    Status: int
    OffendingElement: list[int]
    ErrorComment: str
    ErrorID: int
    AffectedSOPInstanceUID: str
    RequestedSOPInstanceUID: str
    EventTypeID: int
    AttributeIdentifierList: list[int]
    ActionTypeID: int
    NumberOfRemainingSuboperations: int
    NumberOfCompletedSuboperations: int
    NumberOfFailedSuboperations: int
    NumberOfWarningSuboperations: int
    MoveOriginatorApplicationEntityTitle: str
    MoveOriginatorMessageID: int


# Value kinds, decided once from the dictionary VR and VM.
_UL = 0
_US = 1
_AT = 2
_UI = 3
_TEXT = 4
_KIND_BY_VR = {"UL": _UL, "US": _US, "AT": _AT, "UI": _UI, "AE": _TEXT, "LO": _TEXT, "SH": _TEXT, "CS": _TEXT}


def _build_tables() -> tuple[dict[int, tuple[str, int]], dict[str, tuple[int, int, bytes]]]:
    """Element number -> (keyword, kind) and keyword -> (element, kind, 4-byte tag) for group 0000.

    Retired command elements (PS3.7 E.2, ACR-NEMA leftovers) are left out: they are skipped like unknown
    tags.
    """
    by_element: dict[int, tuple[str, int]] = {}
    by_keyword: dict[str, tuple[int, int, bytes]] = {}
    for tag, entry in DicomDictionary.items():
        vr, vm, _name, retired, keyword = entry
        if tag >> 16 != 0 or tag == 0 or retired:
            continue
        kind = _KIND_BY_VR[vr]
        if kind == _US and vm != "1":
            raise RuntimeError(f"unexpected multi-valued US command element {keyword}")
        element = tag & 0xFFFF
        by_element[element] = (keyword, kind)
        by_keyword[keyword] = (element, kind, struct.pack("<HH", 0, element))
    return by_element, by_keyword


_BY_ELEMENT, _BY_KEYWORD = _build_tables()

_HEAD = struct.Struct("<HHI")  # PS3.5 7.1.2: tag group, tag element, 32-bit length (implicit VR)
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_LEN2 = _U32.pack(2)
_LEN4 = _U32.pack(4)
_GROUP_LENGTH_HEAD = _HEAD.pack(0, 0, 4)
_by_element_key = itemgetter(0)


def _encode_element(keyword: str, kind: int, tag: bytes, value: object) -> bytes:
    if kind == _US:
        if type(value) is not int or not 0 <= value <= 0xFFFF:
            raise DIMSEError(f"{keyword} must be an int in 0..65535, not {value!r}")
        return tag + _LEN2 + _U16.pack(value)
    if kind == _UI:
        if not isinstance(value, str):
            raise DIMSEError(f"{keyword} must be a str, not {type(value).__name__}")
        try:
            raw = value.encode("ascii")
        except UnicodeEncodeError:
            raise DIMSEError(f"{keyword} must be ASCII: {value!r}") from None
        if len(raw) & 1:
            raw += b"\x00"  # PS3.5 6.2: UI is padded with a single trailing NUL
    elif kind == _TEXT:
        if not isinstance(value, str):
            raise DIMSEError(f"{keyword} must be a str, not {type(value).__name__}")
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raise DIMSEError(f"{keyword} has characters outside the default repertoire: {value!r}") from None
        if len(raw) & 1:
            raw += b" "  # PS3.5 6.2: text VRs are padded with a trailing space
    elif kind == _AT:
        tags = [value] if isinstance(value, int) else value
        if not isinstance(tags, Sequence) or isinstance(tags, str | bytes):
            raise DIMSEError(f"{keyword} must be a tag or a sequence of tags, not {value!r}")
        parts = []
        for item in tags:
            if not isinstance(item, int) or not 0 <= item <= 0xFFFFFFFF:
                raise DIMSEError(f"{keyword} holds an invalid tag {item!r}")
            parts.append(struct.pack("<HH", item >> 16, item & 0xFFFF))  # PS3.5 6.2 AT: group, then element
        raw = b"".join(parts)
    else:  # _UL
        if type(value) is not int or not 0 <= value <= 0xFFFFFFFF:
            raise DIMSEError(f"{keyword} must be an int in 0..4294967295, not {value!r}")
        return tag + _LEN4 + _U32.pack(value)
    return tag + _U32.pack(len(raw)) + raw


def encode_command(fields: Mapping[str, object]) -> bytes:
    """Encode a command set in implicit VR little endian, CommandGroupLength first (PS3.7 6.3.1).

    Elements are written in ascending tag order whatever the order of ``fields``. ``None`` values are
    omitted, and a CommandGroupLength in ``fields`` is ignored (it is computed). Raises :class:`DIMSEError`
    for an unknown keyword or a value of the wrong type or range.
    """
    items = []
    for keyword, value in fields.items():
        if value is None or keyword == "CommandGroupLength":
            continue
        spec = _BY_KEYWORD.get(keyword)
        if spec is None:
            raise DIMSEError(f"{keyword!r} is not a command element keyword (PS3.7 E.1)")
        items.append((spec[0], keyword, spec, value))
    items.sort(key=_by_element_key)
    body = b"".join([_encode_element(keyword, spec[1], spec[2], value) for _, keyword, spec, value in items])
    return _GROUP_LENGTH_HEAD + _U32.pack(len(body)) + body


def decode_command(data: bytes | bytearray | memoryview) -> CommandFields:
    """Decode and validate an implicit VR little endian command set (PS3.7 6.3.1, E.1).

    Checks that CommandGroupLength comes first and equals the bytes that follow it, that every tag is in
    group 0000 and strictly ascending, that each value fits in the buffer and has a size its VR allows, and
    that CommandField is present. Unknown and retired group 0000 elements are skipped. Any problem raises
    :class:`DIMSEError`; no other exception escapes for any input.
    """
    if type(data) is not bytes:
        data = bytes(data)
    size = len(data)
    if size < 12:
        raise DIMSEError(f"command set of {size} bytes is shorter than its CommandGroupLength element")
    group, element, length = _HEAD.unpack_from(data, 0)
    if group != 0 or element != 0 or length != 4:
        raise DIMSEError("command set does not start with CommandGroupLength (0000,0000) UL of length 4")
    (group_length,) = _U32.unpack_from(data, 8)
    if group_length != size - 12:
        raise DIMSEError(f"CommandGroupLength is {group_length} but {size - 12} bytes follow it")

    fields: dict[str, object] = {}
    offset = 12
    previous = 0
    by_element = _BY_ELEMENT
    unpack_head = _HEAD.unpack_from
    while offset < size:
        if size - offset < 8:
            raise DIMSEError(f"truncated element header at offset {offset}")
        group, element, length = unpack_head(data, offset)
        if group != 0:
            raise DIMSEError(f"element ({group:04X},{element:04X}) is not in command group 0000")
        if element <= previous:
            raise DIMSEError(
                f"element (0000,{element:04X}) is out of ascending order or repeated (PS3.5 7.1)"
            )
        previous = element
        offset += 8
        end = offset + length
        if end > size:
            raise DIMSEError(f"element (0000,{element:04X}) of length {length} overruns the command set")
        spec = by_element.get(element)
        if spec is not None:
            keyword, kind = spec
            if kind == _US:
                if length == 2:
                    fields[keyword] = _U16.unpack_from(data, offset)[0]
                elif length:  # an empty US is treated as absent
                    raise DIMSEError(f"{keyword} (US, VM 1) has length {length}, expected 2")
            elif kind == _UI:
                try:
                    fields[keyword] = data[offset:end].decode("ascii").rstrip("\x00 ")
                except UnicodeDecodeError:
                    raise DIMSEError(f"{keyword} (UI) is not ASCII") from None
            elif kind == _TEXT:
                fields[keyword] = data[offset:end].decode("latin-1").strip("\x00 ")
            elif kind == _AT:
                if length & 3:
                    raise DIMSEError(f"{keyword} (AT) has length {length}, not a multiple of 4")
                words = struct.unpack_from(f"<{length >> 1}H", data, offset)
                fields[keyword] = [words[i] << 16 | words[i + 1] for i in range(0, len(words), 2)]
            else:  # _UL
                if length == 4:
                    fields[keyword] = _U32.unpack_from(data, offset)[0]
                elif length:
                    raise DIMSEError(f"{keyword} (UL, VM 1) has length {length}, expected 4")
        offset = end
    if "CommandField" not in fields:
        raise DIMSEError("command set has no CommandField (0000,0100)")
    return cast(CommandFields, fields)


def has_data_set(fields: Mapping[str, object]) -> bool:
    """True if a data set follows the command (PS3.7 E.1: any CommandDataSetType other than 0101H)."""
    return fields.get("CommandDataSetType", NO_DATA_SET) != NO_DATA_SET


def is_response(fields: Mapping[str, object]) -> bool:
    """True for a response command: bit 15 of CommandField is set (PS3.7 E.1)."""
    command_field = fields.get("CommandField")
    return isinstance(command_field, int) and bool(command_field & 0x8000)


# --- Builders -----------------------------------------------------------------------------------------------
# Each returns a new dict for encode_command(); callers may add optional fields (ErrorID, OffendingElement).


def _data_set_type(present: bool) -> int:
    return DATA_SET_PRESENT if present else NO_DATA_SET


def _request_value(request: Mapping[str, object], keyword: str) -> object:
    value = request.get(keyword)
    if value is None:
        raise DIMSEError(f"the request has no {keyword}, so no response can refer to it")
    return value


def _error_comment(text: str) -> str:
    """Fit free text into LO: printable ASCII without backslashes, at most 64 characters (PS3.5 6.2)."""
    cleaned = "".join(c if " " <= c <= "~" and c != "\\" else "?" for c in text)
    return cleaned[:_LO_MAX].strip()


def _response(
    command_field: int,
    request: Mapping[str, object],
    status: int,
    has_data: bool,
    echo: tuple[str, ...],
    error_comment: str | None = None,
) -> CommandFields:
    fields: dict[str, object] = {
        "CommandField": command_field,
        "MessageIDBeingRespondedTo": _request_value(request, "MessageID"),
        "CommandDataSetType": _data_set_type(has_data),
        "Status": status,
    }
    for keyword in echo:
        value = request.get(keyword)
        if value is not None:
            fields[keyword] = value
    if error_comment:
        fields["ErrorComment"] = _error_comment(error_comment)
    return cast(CommandFields, fields)


# PS3.7 9.3.5: C-ECHO
def c_echo_rq(message_id: int) -> CommandFields:
    return {
        "CommandField": C_ECHO_RQ,
        "MessageID": message_id,
        "AffectedSOPClassUID": VERIFICATION_SOP_CLASS,
        "CommandDataSetType": NO_DATA_SET,
    }


def c_echo_rsp(message_id: int, status: int, sop_class_uid: str = VERIFICATION_SOP_CLASS) -> CommandFields:
    return {
        "CommandField": C_ECHO_RSP,
        "MessageIDBeingRespondedTo": message_id,
        "AffectedSOPClassUID": sop_class_uid,
        "CommandDataSetType": NO_DATA_SET,
        "Status": status,
    }


# PS3.7 9.3.1: C-STORE
def c_store_rq(
    message_id: int,
    sop_class_uid: str,
    sop_instance_uid: str,
    priority: int = PRIORITY_MEDIUM,
    move_originator_aet: str | None = None,
    move_originator_message_id: int | None = None,
) -> CommandFields:
    fields: CommandFields = {
        "CommandField": C_STORE_RQ,
        "MessageID": message_id,
        "AffectedSOPClassUID": sop_class_uid,
        "AffectedSOPInstanceUID": sop_instance_uid,
        "Priority": priority,
        "CommandDataSetType": DATA_SET_PRESENT,
    }
    # PS3.7 9.3.1.1: the move originator fields are present only for a C-STORE that serves a C-MOVE
    if move_originator_aet is not None:
        fields["MoveOriginatorApplicationEntityTitle"] = move_originator_aet
    if move_originator_message_id is not None:
        fields["MoveOriginatorMessageID"] = move_originator_message_id
    return fields


def c_store_rsp(
    request: Mapping[str, object], status: int, error_comment: str | None = None
) -> CommandFields:
    """C-STORE-RSP echoing the request's SOP Class and Instance UIDs (PS3.7 9.3.1.2)."""
    return _response(
        C_STORE_RSP, request, status, False, ("AffectedSOPClassUID", "AffectedSOPInstanceUID"), error_comment
    )


# PS3.7 9.3.2: C-FIND
def c_find_rq(message_id: int, sop_class_uid: str, priority: int = PRIORITY_MEDIUM) -> CommandFields:
    return {
        "CommandField": C_FIND_RQ,
        "MessageID": message_id,
        "AffectedSOPClassUID": sop_class_uid,
        "Priority": priority,
        "CommandDataSetType": DATA_SET_PRESENT,
    }


def c_find_rsp(
    request: Mapping[str, object], status: int, has_identifier: bool, error_comment: str | None = None
) -> CommandFields:
    """C-FIND-RSP; ``has_identifier`` is true for pending responses that carry a match (PS3.7 9.3.2.2)."""
    return _response(C_FIND_RSP, request, status, has_identifier, ("AffectedSOPClassUID",), error_comment)


# PS3.7 9.3.3 / 9.3.4: C-GET and C-MOVE
def c_get_rq(message_id: int, sop_class_uid: str, priority: int = PRIORITY_MEDIUM) -> CommandFields:
    return {
        "CommandField": C_GET_RQ,
        "MessageID": message_id,
        "AffectedSOPClassUID": sop_class_uid,
        "Priority": priority,
        "CommandDataSetType": DATA_SET_PRESENT,
    }


def c_move_rq(
    message_id: int, sop_class_uid: str, move_destination: str, priority: int = PRIORITY_MEDIUM
) -> CommandFields:
    return {
        "CommandField": C_MOVE_RQ,
        "MessageID": message_id,
        "AffectedSOPClassUID": sop_class_uid,
        "Priority": priority,
        "MoveDestination": move_destination,
        "CommandDataSetType": DATA_SET_PRESENT,
    }


def _retrieve_rsp(
    command_field: int,
    request: Mapping[str, object],
    status: int,
    remaining: int | None,
    completed: int | None,
    failed: int | None,
    warning: int | None,
    has_identifier: bool,
    error_comment: str | None,
) -> CommandFields:
    fields = _response(
        command_field, request, status, has_identifier, ("AffectedSOPClassUID",), error_comment
    )
    # PS3.7 9.3.3.2 / 9.3.4.2: remaining is required while pending; the counts are conditional otherwise
    if remaining is not None:
        fields["NumberOfRemainingSuboperations"] = remaining
    if completed is not None:
        fields["NumberOfCompletedSuboperations"] = completed
    if failed is not None:
        fields["NumberOfFailedSuboperations"] = failed
    if warning is not None:
        fields["NumberOfWarningSuboperations"] = warning
    return fields


def c_move_rsp(
    request: Mapping[str, object],
    status: int,
    remaining: int | None = None,
    completed: int | None = None,
    failed: int | None = None,
    warning: int | None = None,
    has_identifier: bool = False,
    error_comment: str | None = None,
) -> CommandFields:
    """C-MOVE-RSP; a count of ``None`` is omitted. The identifier holds the Failed SOP Instance UID List."""
    return _retrieve_rsp(
        C_MOVE_RSP, request, status, remaining, completed, failed, warning, has_identifier, error_comment
    )


def c_get_rsp(
    request: Mapping[str, object],
    status: int,
    remaining: int | None = None,
    completed: int | None = None,
    failed: int | None = None,
    warning: int | None = None,
    has_identifier: bool = False,
    error_comment: str | None = None,
) -> CommandFields:
    """C-GET-RSP; a count of ``None`` is omitted. The identifier holds the Failed SOP Instance UID List."""
    return _retrieve_rsp(
        C_GET_RSP, request, status, remaining, completed, failed, warning, has_identifier, error_comment
    )


# PS3.7 9.3.2.3: C-CANCEL
def c_cancel_rq(message_id_being_responded_to: int) -> CommandFields:
    return {
        "CommandField": C_CANCEL_RQ,
        "MessageIDBeingRespondedTo": message_id_being_responded_to,
        "CommandDataSetType": NO_DATA_SET,
    }


# PS3.7 10.3.1: N-EVENT-REPORT
def n_event_report_rq(
    message_id: int,
    sop_class_uid: str,
    sop_instance_uid: str,
    event_type_id: int,
    has_event_information: bool = False,
) -> CommandFields:
    return {
        "CommandField": N_EVENT_REPORT_RQ,
        "MessageID": message_id,
        "AffectedSOPClassUID": sop_class_uid,
        "AffectedSOPInstanceUID": sop_instance_uid,
        "EventTypeID": event_type_id,
        "CommandDataSetType": _data_set_type(has_event_information),
    }


def n_event_report_rsp(
    request: Mapping[str, object], status: int, has_event_reply: bool = False
) -> CommandFields:
    return _response(
        N_EVENT_REPORT_RSP,
        request,
        status,
        has_event_reply,
        ("AffectedSOPClassUID", "AffectedSOPInstanceUID", "EventTypeID"),
    )


def _n_rsp_for_requested(
    command_field: int, request: Mapping[str, object], status: int, has_data: bool
) -> CommandFields:
    # PS3.7 10.3.2-10.3.6: a response names as Affected what its request named as Requested
    fields = _response(command_field, request, status, has_data, ())
    sop_class_uid = request.get("RequestedSOPClassUID")
    if isinstance(sop_class_uid, str):
        fields["AffectedSOPClassUID"] = sop_class_uid
    sop_instance_uid = request.get("RequestedSOPInstanceUID")
    if isinstance(sop_instance_uid, str):
        fields["AffectedSOPInstanceUID"] = sop_instance_uid
    return fields


# PS3.7 10.3.2: N-GET
def n_get_rq(
    message_id: int,
    sop_class_uid: str,
    sop_instance_uid: str,
    attribute_identifiers: Sequence[int] | None = None,
) -> CommandFields:
    fields: CommandFields = {
        "CommandField": N_GET_RQ,
        "MessageID": message_id,
        "RequestedSOPClassUID": sop_class_uid,
        "RequestedSOPInstanceUID": sop_instance_uid,
        "CommandDataSetType": NO_DATA_SET,
    }
    if attribute_identifiers is not None:  # PS3.7 10.1.2.1.4: absent means all attributes
        fields["AttributeIdentifierList"] = list(attribute_identifiers)
    return fields


def n_get_rsp(request: Mapping[str, object], status: int, has_attribute_list: bool) -> CommandFields:
    return _n_rsp_for_requested(N_GET_RSP, request, status, has_attribute_list)


# PS3.7 10.3.3: N-SET
def n_set_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str) -> CommandFields:
    return {
        "CommandField": N_SET_RQ,
        "MessageID": message_id,
        "RequestedSOPClassUID": sop_class_uid,
        "RequestedSOPInstanceUID": sop_instance_uid,
        "CommandDataSetType": DATA_SET_PRESENT,  # the Modification List is mandatory
    }


def n_set_rsp(request: Mapping[str, object], status: int, has_attribute_list: bool = False) -> CommandFields:
    return _n_rsp_for_requested(N_SET_RSP, request, status, has_attribute_list)


# PS3.7 10.3.4: N-ACTION
def n_action_rq(
    message_id: int,
    sop_class_uid: str,
    sop_instance_uid: str,
    action_type_id: int,
    has_action_information: bool = False,
) -> CommandFields:
    return {
        "CommandField": N_ACTION_RQ,
        "MessageID": message_id,
        "RequestedSOPClassUID": sop_class_uid,
        "RequestedSOPInstanceUID": sop_instance_uid,
        "ActionTypeID": action_type_id,
        "CommandDataSetType": _data_set_type(has_action_information),
    }


def n_action_rsp(request: Mapping[str, object], status: int, has_action_reply: bool = False) -> CommandFields:
    fields = _n_rsp_for_requested(N_ACTION_RSP, request, status, has_action_reply)
    action_type_id = request.get("ActionTypeID")
    if isinstance(action_type_id, int):
        fields["ActionTypeID"] = action_type_id
    return fields


# PS3.7 10.3.5: N-CREATE
def n_create_rq(
    message_id: int,
    sop_class_uid: str,
    sop_instance_uid: str | None = None,
    has_attribute_list: bool = False,
) -> CommandFields:
    fields: CommandFields = {
        "CommandField": N_CREATE_RQ,
        "MessageID": message_id,
        "AffectedSOPClassUID": sop_class_uid,
        "CommandDataSetType": _data_set_type(has_attribute_list),
    }
    if sop_instance_uid is not None:  # PS3.7 10.1.5.1.3: else the SCP assigns one
        fields["AffectedSOPInstanceUID"] = sop_instance_uid
    return fields


def n_create_rsp(
    request: Mapping[str, object],
    status: int,
    sop_instance_uid: str | None = None,
    has_attribute_list: bool = False,
) -> CommandFields:
    """N-CREATE-RSP; ``sop_instance_uid`` is the one the SCP assigned when the request named none."""
    fields = _response(
        N_CREATE_RSP, request, status, has_attribute_list, ("AffectedSOPClassUID", "AffectedSOPInstanceUID")
    )
    if sop_instance_uid is not None:
        fields["AffectedSOPInstanceUID"] = sop_instance_uid
    return fields


# PS3.7 10.3.6: N-DELETE
def n_delete_rq(message_id: int, sop_class_uid: str, sop_instance_uid: str) -> CommandFields:
    return {
        "CommandField": N_DELETE_RQ,
        "MessageID": message_id,
        "RequestedSOPClassUID": sop_class_uid,
        "RequestedSOPInstanceUID": sop_instance_uid,
        "CommandDataSetType": NO_DATA_SET,
    }


def n_delete_rsp(request: Mapping[str, object], status: int) -> CommandFields:
    return _n_rsp_for_requested(N_DELETE_RSP, request, status, False)


# --- Typed accessors for the two fields every dispatcher reads ----------------------------------------------


def command_field(fields: Mapping[str, object]) -> int:
    """The CommandField (0000,0100); :func:`decode_command` guarantees it is present."""
    value = fields.get("CommandField")
    if type(value) is not int:
        raise DIMSEError("command has no CommandField")
    return value


def message_id(fields: Mapping[str, object]) -> int:
    """The MessageID (0000,0110) of a request; :class:`DIMSEError` when it is missing (PS3.7 9.1.1.1.1)."""
    value = fields.get("MessageID")
    if type(value) is not int:
        raise DIMSEError("request has no MessageID")
    return value
