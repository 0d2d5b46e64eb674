"""DICOM Upper Layer PDUs (PS3.8 9.3): pure encode and decode, no I/O.

The transport reads the 6-byte PDU header (``parse_header``), then the body, and hands the body to ``decode``
(association, release and abort PDUs) or ``iter_pdvs`` (P-DATA-TF). P-DATA-TF is the hot path, so it builds no
objects: ``iter_pdvs`` yields memoryviews into the received body, and ``fragment``/``encode_pdata`` frame a
message with one copy. Every malformation found while decoding raises ``PDUError`` carrying the A-ABORT reason
(PS3.8 9.3.8) the transport should send; encoding a value that cannot go on the wire raises ``ValueError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

# PDU types, PS3.8 9.3.1
A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07
PDU_TYPES = frozenset(range(A_ASSOCIATE_RQ, A_ABORT + 1))

# Presentation context results, PS3.8 9.3.3.2 Table 9-18
CONTEXT_ACCEPTANCE = 0
CONTEXT_USER_REJECTION = 1
CONTEXT_NO_REASON = 2
CONTEXT_ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
CONTEXT_TRANSFER_SYNTAXES_NOT_SUPPORTED = 4

# A-ASSOCIATE-RJ result, source and reason/diag., PS3.8 9.3.4 Table 9-21
RJ_PERMANENT = 1
RJ_TRANSIENT = 2
RJ_SOURCE_USER = 1
RJ_SOURCE_ACSE = 2  # service provider, ACSE related
RJ_SOURCE_PRESENTATION = 3  # service provider, presentation related
RJ_NO_REASON = 1  # reasons with RJ_SOURCE_USER
RJ_APPLICATION_CONTEXT_NOT_SUPPORTED = 2
RJ_CALLING_AE_NOT_RECOGNIZED = 3
RJ_CALLED_AE_NOT_RECOGNIZED = 7
RJ_ACSE_NO_REASON = 1  # reasons with RJ_SOURCE_ACSE
RJ_PROTOCOL_VERSION_NOT_SUPPORTED = 2
RJ_TEMPORARY_CONGESTION = 1  # reasons with RJ_SOURCE_PRESENTATION
RJ_LOCAL_LIMIT_EXCEEDED = 2

# A-ABORT source and reason/diag., PS3.8 9.3.8 Table 9-26
ABORT_SOURCE_USER = 0
ABORT_SOURCE_PROVIDER = 2
ABORT_NOT_SPECIFIED = 0  # reasons are significant only with ABORT_SOURCE_PROVIDER
ABORT_UNRECOGNIZED_PDU = 1
ABORT_UNEXPECTED_PDU = 2
ABORT_UNRECOGNIZED_PDU_PARAMETER = 4
ABORT_UNEXPECTED_PDU_PARAMETER = 5
ABORT_INVALID_PDU_PARAMETER_VALUE = 6

# User Identity types, PS3.7 D.3.3.7.1
USER_IDENTITY_USERNAME = 1
USER_IDENTITY_USERNAME_PASSCODE = 2
USER_IDENTITY_KERBEROS = 3
USER_IDENTITY_SAML = 4
USER_IDENTITY_JWT = 5

# Message Control Header bits, PS3.8 E.2
PDV_COMMAND = 0x01
PDV_LAST = 0x02

# Item types, PS3.8 9.3.2-9.3.3 and PS3.7 D.3.3
_APPLICATION_CONTEXT = 0x10
_CONTEXT_RQ = 0x20
_CONTEXT_AC = 0x21
_ABSTRACT_SYNTAX = 0x30
_TRANSFER_SYNTAX = 0x40
_USER_INFORMATION = 0x50
_MAX_LENGTH = 0x51
_IMPLEMENTATION_CLASS_UID = 0x52
_ASYNC_OPS = 0x53
_ROLE_SELECTION = 0x54
_IMPLEMENTATION_VERSION_NAME = 0x55
_SOP_EXTENDED = 0x56
_COMMON_EXTENDED = 0x57
_USER_IDENTITY_RQ = 0x58
_USER_IDENTITY_AC = 0x59
_KNOWN_ITEMS = frozenset({0x10, 0x20, 0x21, 0x30, 0x40, *range(0x50, 0x5A)})
_SINGLE_USER_ITEMS = frozenset({0x51, 0x52, 0x53, 0x55, 0x58, 0x59})

HEADER = struct.Struct(">BxI")  # PDU type, reserved, PDU length
_ITEM = struct.Struct(">BBH")  # item type, reserved (0x57: sub-item version), item length
_ASSOCIATE = struct.Struct(">H2x16s16s32x")  # protocol version, reserved, called AE, calling AE, reserved
_FOUR = struct.Struct(">xBBB")  # A-ASSOCIATE-RJ and A-ABORT: reserved, then three bytes
_PDATA = struct.Struct(">BxIIBB")  # PDU header, PDV item length, context id, message control header
_PDV = struct.Struct(">IBB")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U16_PAIR = struct.Struct(">HH")
_CONTEXT_RQ_HEAD = struct.Struct(">B3x")
_CONTEXT_AC_HEAD = struct.Struct(">BxBx")
_IDENTITY_HEAD = struct.Struct(">BBH")

_PDV_OVERHEAD = 6  # PDV item length (4), context id (1), control header (1), PS3.8 9.3.5.1
_MAX_U32 = 0xFFFFFFFF
# PS3.5 6.2 AE: default repertoire without control characters and backslash
_AE_CHARS = bytes(c for c in range(0x20, 0x7F) if c != 0x5C)


class PDUError(Exception):
    """A malformed PDU; ``reason`` is the A-ABORT reason (PS3.8 9.3.8) to send back."""

    def __init__(self, message: str, reason: int = ABORT_INVALID_PDU_PARAMETER_VALUE) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PresentationContextRQ:
    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PresentationContextAC:
    context_id: int
    result: int
    transfer_syntax: str  # not significant unless result is CONTEXT_ACCEPTANCE (PS3.8 9.3.3.2)


@dataclass(frozen=True, slots=True)
class RoleSelection:
    sop_class_uid: str
    scu_role: bool
    scp_role: bool


@dataclass(frozen=True, slots=True)
class ExtendedNegotiation:
    sop_class_uid: str
    info: bytes


@dataclass(frozen=True, slots=True)
class CommonExtendedNegotiation:
    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UserIdentityRQ:
    type: int
    positive_response_requested: bool
    primary: bytes = field(repr=False)  # may be a token or a ticket: kept out of logs
    secondary: bytes = field(default=b"", repr=False)  # the passcode


@dataclass(frozen=True, slots=True)
class UserInformation:
    max_pdu_length: int | None = None  # 0 means unlimited (PS3.8 D.1)
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    async_ops: tuple[int, int] | None = None  # (max operations invoked, max operations performed)
    role_selections: tuple[RoleSelection, ...] = ()
    extended_negotiations: tuple[ExtendedNegotiation, ...] = ()
    common_extended_negotiations: tuple[CommonExtendedNegotiation, ...] = ()
    user_identity: UserIdentityRQ | None = None
    user_identity_response: bytes | None = field(default=None, repr=False)
    unknown: tuple[tuple[int, bytes], ...] = ()  # sub-items of other types, kept and re-sent as they came


@dataclass(frozen=True, slots=True)
class AssociateRQ:
    called_ae: str
    calling_ae: str
    application_context: str
    contexts: tuple[PresentationContextRQ, ...]
    user: UserInformation
    protocol_version: int = 1


@dataclass(frozen=True, slots=True)
class AssociateAC:
    called_ae: str  # echoed from the A-ASSOCIATE-RQ, not tested on receipt (PS3.8 9.3.3)
    calling_ae: str
    application_context: str
    contexts: tuple[PresentationContextAC, ...]
    user: UserInformation
    protocol_version: int = 1


@dataclass(frozen=True, slots=True)
class AssociateRJ:
    result: int
    source: int
    reason: int


@dataclass(frozen=True, slots=True)
class ReleaseRQ:
    pass


@dataclass(frozen=True, slots=True)
class ReleaseRP:
    pass


@dataclass(frozen=True, slots=True)
class Abort:
    source: int
    reason: int = ABORT_NOT_SPECIFIED  # significant only when source is the service provider


PDU = AssociateRQ | AssociateAC | AssociateRJ | ReleaseRQ | ReleaseRP | Abort


# ---------------------------------------------------------------------------------------------------- header


def parse_header(b: bytes | memoryview) -> tuple[int, int]:
    """Return (PDU type, body length) from the 6-byte PDU header; an unknown type raises at once."""
    if len(b) != HEADER.size:
        raise PDUError(f"PDU header must be {HEADER.size} bytes, got {len(b)}")
    pdu_type, length = HEADER.unpack(b)
    if pdu_type not in PDU_TYPES:
        raise PDUError(f"unrecognized PDU type 0x{pdu_type:02X}", ABORT_UNRECOGNIZED_PDU)
    return pdu_type, length


# ---------------------------------------------------------------------------------------------------- P-DATA


def pdata_header(context_id: int, is_command: bool, is_last: bool, length: int) -> bytes:
    """PDU header, PDV item header and control byte for one PDV of ``length`` bytes (PS3.8 9.3.5, E.2).

    Lets a transport write the header and the fragment separately, without joining them.
    """
    control = (PDV_COMMAND if is_command else 0) | (PDV_LAST if is_last else 0)
    try:
        return _PDATA.pack(P_DATA_TF, length + _PDV_OVERHEAD, length + 2, context_id, control)
    except struct.error as exc:
        raise ValueError(f"cannot frame a PDV: {exc}") from exc


def encode_pdata(context_id: int, is_command: bool, is_last: bool, data: bytes | memoryview) -> bytes:
    """One P-DATA-TF PDU carrying one PDV."""
    return b"".join((pdata_header(context_id, is_command, is_last, len(data)), data))


def fragment(
    context_id: int, is_command: bool, data: bytes | memoryview, max_pdu_length: int
) -> Iterator[bytes]:
    """Split a command or data set into P-DATA-TF PDUs the peer accepts.

    ``max_pdu_length`` is the peer's Maximum Length Receive: the largest P-DATA-TF variable field, PDV item
    headers included (PS3.8 D.1); 0 means unlimited. An empty message still yields one last fragment.
    """
    if max_pdu_length == 0:
        chunk = _MAX_U32 - _PDV_OVERHEAD
    elif max_pdu_length > _PDV_OVERHEAD:
        chunk = min(max_pdu_length, _MAX_U32) - _PDV_OVERHEAD
    else:
        raise ValueError(f"maximum PDU length {max_pdu_length} cannot carry any data")
    view = memoryview(data)
    total = len(view)
    start = 0
    while True:
        end = min(start + chunk, total)
        yield encode_pdata(context_id, is_command, end == total, view[start:end])
        if end == total:
            return
        start = end


def iter_pdvs(body: bytes | memoryview) -> Iterator[tuple[int, int, memoryview]]:
    """Yield (context id, message control header, fragment) for each PDV of a P-DATA-TF body, without copying.

    Only the framing is checked; whether the context id was accepted is the association's business.
    """
    view = memoryview(body)
    size = len(view)
    if size == 0:
        raise PDUError("P-DATA-TF carries no PDV item")  # PS3.8 9.3.5: one or more
    offset = 0
    while offset < size:
        if size - offset < _PDV.size:
            raise PDUError("truncated PDV item header")
        length, context_id, control = _PDV.unpack_from(view, offset)
        end = offset + 4 + length
        if length < 2 or end > size:
            raise PDUError(f"PDV item length {length} does not fit its P-DATA-TF")
        yield context_id, control, view[offset + _PDV_OVERHEAD : end]
        offset = end


# ---------------------------------------------------------------------------------------------------- encode


def encode(pdu: PDU) -> bytes:
    """Encode any PDU but P-DATA-TF, header included."""
    try:
        pdu_type, body = _encode_body(pdu)
        return HEADER.pack(pdu_type, len(body)) + body
    except struct.error as exc:  # a number out of its field's range
        raise ValueError(f"cannot encode {type(pdu).__name__}: {exc}") from exc


def _encode_body(pdu: PDU) -> tuple[int, bytes]:
    if isinstance(pdu, AssociateRQ):
        items = [_encode_rq_context(c) for c in pdu.contexts]
        return A_ASSOCIATE_RQ, _encode_associate(pdu, items)
    if isinstance(pdu, AssociateAC):
        items = [_encode_ac_context(c) for c in pdu.contexts]
        return A_ASSOCIATE_AC, _encode_associate(pdu, items)
    if isinstance(pdu, AssociateRJ):
        return A_ASSOCIATE_RJ, _FOUR.pack(pdu.result, pdu.source, pdu.reason)
    if isinstance(pdu, ReleaseRQ):
        return A_RELEASE_RQ, bytes(4)
    if isinstance(pdu, ReleaseRP):
        return A_RELEASE_RP, bytes(4)
    if isinstance(pdu, Abort):
        return A_ABORT, _FOUR.pack(0, pdu.source, pdu.reason)
    raise TypeError(f"not an encodable PDU: {pdu!r}")


def _encode_associate(pdu: AssociateRQ | AssociateAC, contexts: list[bytes]) -> bytes:
    if pdu.user.max_pdu_length is None:
        raise ValueError("user information needs a maximum length (PS3.8 D.1)")
    fixed = _ASSOCIATE.pack(pdu.protocol_version, _encode_ae(pdu.called_ae), _encode_ae(pdu.calling_ae))
    app = _item(_APPLICATION_CONTEXT, _ascii(pdu.application_context))
    return b"".join([fixed, app, *contexts, _encode_user(pdu.user)])


def _encode_ae(ae: str) -> bytes:
    raw = ae.encode("ascii")
    if not raw.strip(b" ") or len(raw) > 16 or raw.translate(None, _AE_CHARS):
        raise ValueError(f"invalid AE title {ae!r} (PS3.5 6.2: 1-16 characters, no backslash or controls)")
    return raw.ljust(16, b" ")


def _ascii(text: str) -> bytes:
    return text.encode("ascii")


def _item(item_type: int, value: bytes, header_byte: int = 0) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"item 0x{item_type:02X} is {len(value)} bytes, over the 65535 an item can hold")
    return _ITEM.pack(item_type, header_byte, len(value)) + value


def _check_context_id(context_id: int) -> None:
    if not (1 <= context_id <= 255 and context_id % 2):
        raise ValueError(f"presentation context id {context_id} is not odd within 1-255 (PS3.8 9.3.2.2)")


def _encode_rq_context(ctx: PresentationContextRQ) -> bytes:
    _check_context_id(ctx.context_id)
    if not ctx.transfer_syntaxes:
        raise ValueError(f"presentation context {ctx.context_id} proposes no transfer syntax")
    parts = [_CONTEXT_RQ_HEAD.pack(ctx.context_id), _item(_ABSTRACT_SYNTAX, _ascii(ctx.abstract_syntax))]
    parts += [_item(_TRANSFER_SYNTAX, _ascii(ts)) for ts in ctx.transfer_syntaxes]
    return _item(_CONTEXT_RQ, b"".join(parts))


def _encode_ac_context(ctx: PresentationContextAC) -> bytes:
    _check_context_id(ctx.context_id)
    head = _CONTEXT_AC_HEAD.pack(ctx.context_id, ctx.result)
    return _item(_CONTEXT_AC, head + _item(_TRANSFER_SYNTAX, _ascii(ctx.transfer_syntax)))


def _uid_field(uid: str) -> bytes:
    raw = _ascii(uid)
    return _U16.pack(len(raw)) + raw


def _encode_user(user: UserInformation) -> bytes:
    """Sub-items in increasing type order (PS3.8 9.3.1), then the unknown ones as received."""
    parts = [_item(_MAX_LENGTH, _U32.pack(user.max_pdu_length or 0))]
    if user.implementation_class_uid is not None:
        parts.append(_item(_IMPLEMENTATION_CLASS_UID, _ascii(user.implementation_class_uid)))
    if user.async_ops is not None:
        parts.append(_item(_ASYNC_OPS, _U16_PAIR.pack(*user.async_ops)))
    for role in user.role_selections:
        value = _uid_field(role.sop_class_uid) + bytes((role.scu_role, role.scp_role))
        parts.append(_item(_ROLE_SELECTION, value))
    if user.implementation_version_name is not None:
        parts.append(_item(_IMPLEMENTATION_VERSION_NAME, _ascii(user.implementation_version_name)))
    for ext in user.extended_negotiations:
        parts.append(_item(_SOP_EXTENDED, _uid_field(ext.sop_class_uid) + ext.info))
    for common in user.common_extended_negotiations:
        related = b"".join(_uid_field(uid) for uid in common.related_general_sop_classes)
        value = b"".join(
            (_uid_field(common.sop_class_uid), _uid_field(common.service_class_uid), _U16.pack(len(related)))
        )
        parts.append(_item(_COMMON_EXTENDED, value + related))
    if user.user_identity is not None:
        ident = user.user_identity
        value = b"".join(
            (
                _IDENTITY_HEAD.pack(ident.type, ident.positive_response_requested, len(ident.primary)),
                ident.primary,
                _U16.pack(len(ident.secondary)),
                ident.secondary,
            )
        )
        parts.append(_item(_USER_IDENTITY_RQ, value))
    if user.user_identity_response is not None:
        response = user.user_identity_response
        parts.append(_item(_USER_IDENTITY_AC, _U16.pack(len(response)) + response))
    parts += [_item(item_type, value) for item_type, value in user.unknown]
    return _item(_USER_INFORMATION, b"".join(parts))


# ---------------------------------------------------------------------------------------------------- decode


def decode(pdu_type: int, body: bytes | memoryview) -> PDU:
    """Decode the body of any PDU but P-DATA-TF (use ``iter_pdvs``); raises only ``PDUError``."""
    view = memoryview(body)
    if pdu_type == A_ASSOCIATE_RQ:
        return _decode_associate(view, is_rq=True)
    if pdu_type == A_ASSOCIATE_AC:
        return _decode_associate(view, is_rq=False)
    if pdu_type in (A_ASSOCIATE_RJ, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT):
        if len(view) != 4:
            raise PDUError(f"PDU type 0x{pdu_type:02X} must have a 4-byte body, got {len(view)}")
        # Results, sources and reasons are not range-checked: the association ends either way.
        if pdu_type == A_ASSOCIATE_RJ:
            return AssociateRJ(*_FOUR.unpack(view))
        if pdu_type == A_ABORT:
            _, source, reason = _FOUR.unpack(view)
            return Abort(source, reason)
        return ReleaseRQ() if pdu_type == A_RELEASE_RQ else ReleaseRP()
    if pdu_type == P_DATA_TF:
        raise PDUError("P-DATA-TF bodies go through iter_pdvs", ABORT_NOT_SPECIFIED)
    raise PDUError(f"unrecognized PDU type 0x{pdu_type:02X}", ABORT_UNRECOGNIZED_PDU)


def _items(view: memoryview) -> Iterator[tuple[int, int, memoryview]]:
    """Yield (item type, reserved byte, value) for a run of items, checking each fits its parent."""
    size = len(view)
    offset = 0
    while offset < size:
        if size - offset < _ITEM.size:
            raise PDUError(f"truncated item header at offset {offset}")
        item_type, header_byte, length = _ITEM.unpack_from(view, offset)
        start = offset + _ITEM.size
        offset = start + length
        if offset > size:
            raise PDUError(f"item 0x{item_type:02X} length {length} overruns its parent")
        yield item_type, header_byte, view[start:offset]


def _text(value: memoryview, what: str) -> str:
    """UIDs and names: ASCII; trailing NULs and spaces are padding (PS3.5 9.1, PS3.7 D.3.3.2)."""
    try:
        return bytes(value).decode("ascii").rstrip("\0 ")
    except UnicodeDecodeError:
        raise PDUError(f"{what} is not ASCII") from None


def _decode_ae(raw: bytes, what: str, strict: bool) -> str:
    if not strict:  # A-ASSOCIATE-AC echoes these and they are not tested (PS3.8 9.3.3)
        return raw.decode("latin-1").strip(" ")
    if raw.translate(None, _AE_CHARS) or not raw.strip(b" "):
        raise PDUError(f"{what} {raw!r} is not a valid AE title (PS3.8 9.3.2, PS3.5 6.2)")
    return raw.decode("ascii").strip(" ")


def _unexpected(item_type: int, where: str) -> PDUError:
    return PDUError(f"item 0x{item_type:02X} is out of place in {where}", ABORT_UNEXPECTED_PDU_PARAMETER)


def _decode_associate(view: memoryview, is_rq: bool) -> AssociateRQ | AssociateAC:
    where = "A-ASSOCIATE-RQ" if is_rq else "A-ASSOCIATE-AC"
    if len(view) < _ASSOCIATE.size:
        raise PDUError(f"{where} body of {len(view)} bytes is shorter than its fixed fields")
    version, called, calling = _ASSOCIATE.unpack_from(view)
    called_ae = _decode_ae(called, "called AE title", is_rq)
    calling_ae = _decode_ae(calling, "calling AE title", is_rq)
    context_type = _CONTEXT_RQ if is_rq else _CONTEXT_AC
    app: str | None = None
    rq_contexts: list[PresentationContextRQ] = []
    ac_contexts: list[PresentationContextAC] = []
    ids: set[int] = set()
    user: UserInformation | None = None
    # PS3.8 9.3.1: items come in increasing type order, and items of unrecognized types are ignored and
    # skipped. We follow that rule rather than abort, so a peer using a later edition's items still connects.
    for item_type, _, value in _items(view[_ASSOCIATE.size :]):
        if item_type == _APPLICATION_CONTEXT and app is None and not ids and user is None:
            app = _text(value, "application context name")
        elif item_type == context_type and app is not None and user is None:
            if is_rq:
                rq_ctx = _decode_rq_context(value)
                context_id = rq_ctx.context_id
                rq_contexts.append(rq_ctx)
            else:
                ac_ctx = _decode_ac_context(value)
                context_id = ac_ctx.context_id
                ac_contexts.append(ac_ctx)
            if context_id in ids:
                raise PDUError(f"presentation context id {context_id} appears twice")
            ids.add(context_id)
        elif item_type == _USER_INFORMATION and app is not None and user is None:
            user = _decode_user(value)
        elif item_type in _KNOWN_ITEMS:
            raise _unexpected(item_type, where)
    if app is None:
        raise PDUError(f"{where} has no application context item")
    if is_rq and not ids:
        raise PDUError("A-ASSOCIATE-RQ proposes no presentation context")
    if user is None or user.max_pdu_length is None:
        raise PDUError(f"{where} has no user information with a maximum length (PS3.8 D.1)")
    if is_rq:
        return AssociateRQ(called_ae, calling_ae, app, tuple(rq_contexts), user, version)
    return AssociateAC(called_ae, calling_ae, app, tuple(ac_contexts), user, version)


def _decode_context_id(context_id: int) -> int:
    if context_id % 2 == 0:  # a byte, so only 0 and the even values are wrong
        raise PDUError(f"presentation context id {context_id} is not odd within 1-255 (PS3.8 9.3.2.2)")
    return context_id


def _decode_rq_context(value: memoryview) -> PresentationContextRQ:
    if len(value) < _CONTEXT_RQ_HEAD.size:
        raise PDUError("truncated presentation context item")
    (context_id,) = _CONTEXT_RQ_HEAD.unpack_from(value)
    _decode_context_id(context_id)
    abstract: str | None = None
    syntaxes: list[str] = []
    for item_type, _, sub in _items(value[_CONTEXT_RQ_HEAD.size :]):
        if item_type == _ABSTRACT_SYNTAX and abstract is None and not syntaxes:
            abstract = _text(sub, "abstract syntax")
        elif item_type == _TRANSFER_SYNTAX and abstract is not None:
            syntaxes.append(_text(sub, "transfer syntax"))
        elif item_type in _KNOWN_ITEMS:
            raise _unexpected(item_type, f"presentation context {context_id}")
    if abstract is None or not syntaxes:
        raise PDUError(f"presentation context {context_id} lacks its abstract or transfer syntax")
    return PresentationContextRQ(context_id, abstract, tuple(syntaxes))


def _decode_ac_context(value: memoryview) -> PresentationContextAC:
    if len(value) < _CONTEXT_AC_HEAD.size:
        raise PDUError("truncated presentation context item")
    context_id, result = _CONTEXT_AC_HEAD.unpack_from(value)
    _decode_context_id(context_id)
    if result > CONTEXT_TRANSFER_SYNTAXES_NOT_SUPPORTED:
        raise PDUError(f"presentation context {context_id} has unknown result {result}")
    syntax: str | None = None
    for item_type, _, sub in _items(value[_CONTEXT_AC_HEAD.size :]):
        if item_type == _TRANSFER_SYNTAX and syntax is None:
            syntax = _text(sub, "transfer syntax")
        elif item_type in _KNOWN_ITEMS:
            raise _unexpected(item_type, f"presentation context {context_id}")
    if syntax is None and result == CONTEXT_ACCEPTANCE:
        raise PDUError(f"accepted presentation context {context_id} names no transfer syntax")
    return PresentationContextAC(context_id, result, syntax or "")


def _split_uid(value: memoryview, offset: int, what: str) -> tuple[str, int]:
    """A UID preceded by its 2-byte length (PS3.7 D.3.3.3-D.3.3.6); returns the UID and the next offset."""
    if len(value) - offset < 2:
        raise PDUError(f"truncated {what} length")
    (length,) = _U16.unpack_from(value, offset)
    end = offset + 2 + length
    if end > len(value):
        raise PDUError(f"{what} length {length} overruns its sub-item")
    return _text(value[offset + 2 : end], what), end


def _split_bytes(value: memoryview, offset: int, what: str) -> tuple[bytes, int]:
    if len(value) - offset < 2:
        raise PDUError(f"truncated {what} length")
    (length,) = _U16.unpack_from(value, offset)
    end = offset + 2 + length
    if end > len(value):
        raise PDUError(f"{what} length {length} overruns its sub-item")
    return bytes(value[offset + 2 : end]), end


def _flag(byte: int, what: str) -> bool:
    if byte > 1:
        raise PDUError(f"{what} is {byte}, not 0 or 1")
    return bool(byte)


def _decode_user(view: memoryview) -> UserInformation:
    """User Information sub-items (PS3.7 D.3.3), accepted in any order: peers do not all sort them."""
    seen: set[int] = set()
    max_length: int | None = None
    class_uid: str | None = None
    version_name: str | None = None
    async_ops: tuple[int, int] | None = None
    identity: UserIdentityRQ | None = None
    response: bytes | None = None
    roles: list[RoleSelection] = []
    extended: list[ExtendedNegotiation] = []
    common: list[CommonExtendedNegotiation] = []
    unknown: list[tuple[int, bytes]] = []
    for item_type, _, value in _items(view):
        if item_type in seen:
            raise _unexpected(item_type, "user information (it may appear once)")
        if item_type in _SINGLE_USER_ITEMS:
            seen.add(item_type)
        if item_type == _MAX_LENGTH:
            if len(value) != 4:
                raise PDUError("maximum length sub-item must hold 4 bytes")
            (max_length,) = _U32.unpack(value)
        elif item_type == _IMPLEMENTATION_CLASS_UID:
            class_uid = _text(value, "implementation class UID")
        elif item_type == _IMPLEMENTATION_VERSION_NAME:
            version_name = _text(value, "implementation version name")
        elif item_type == _ASYNC_OPS:
            if len(value) != 4:
                raise PDUError("asynchronous operations window sub-item must hold 4 bytes")
            async_ops = _U16_PAIR.unpack(value)
        elif item_type == _ROLE_SELECTION:
            uid, end = _split_uid(value, 0, "role selection SOP class UID")
            if len(value) - end != 2:
                raise PDUError("role selection sub-item must end with the SCU and SCP roles")
            roles.append(RoleSelection(uid, _flag(value[end], "SCU role"), _flag(value[end + 1], "SCP role")))
        elif item_type == _SOP_EXTENDED:
            uid, end = _split_uid(value, 0, "extended negotiation SOP class UID")
            extended.append(ExtendedNegotiation(uid, bytes(value[end:])))
        elif item_type == _COMMON_EXTENDED:
            common.append(_decode_common(value))
        elif item_type == _USER_IDENTITY_RQ:
            identity = _decode_identity(value)
        elif item_type == _USER_IDENTITY_AC:
            response, end = _split_bytes(value, 0, "user identity server response")
            if end != len(value):
                raise PDUError("user identity response sub-item has trailing bytes")
        elif item_type in _KNOWN_ITEMS:
            raise _unexpected(item_type, "user information")
        else:
            unknown.append((item_type, bytes(value)))
    return UserInformation(
        max_length,
        class_uid,
        version_name,
        async_ops,
        tuple(roles),
        tuple(extended),
        tuple(common),
        identity,
        response,
        tuple(unknown),
    )


def _decode_common(value: memoryview) -> CommonExtendedNegotiation:
    """PS3.7 D.3.3.6: SOP class UID, service class UID, then a run of related general SOP class UIDs."""
    sop, offset = _split_uid(value, 0, "common extended negotiation SOP class UID")
    service, offset = _split_uid(value, offset, "service class UID")
    if len(value) - offset < 2:
        raise PDUError("truncated related general SOP classes length")
    (length,) = _U16.unpack_from(value, offset)
    if offset + 2 + length != len(value):
        raise PDUError("related general SOP classes length does not match the sub-item")
    related_view = value[offset + 2 :]
    related: list[str] = []
    offset = 0
    while offset < len(related_view):
        uid, offset = _split_uid(related_view, offset, "related general SOP class UID")
        related.append(uid)
    return CommonExtendedNegotiation(sop, service, tuple(related))


def _decode_identity(value: memoryview) -> UserIdentityRQ:
    """PS3.7 D.3.3.7.1: type, positive-response-requested, primary field, secondary field."""
    if len(value) < 2:
        raise PDUError("truncated user identity sub-item")
    identity_type = value[0]
    positive = _flag(value[1], "user identity positive-response-requested")
    primary, offset = _split_bytes(value, 2, "user identity primary field")
    secondary, offset = _split_bytes(value, offset, "user identity secondary field")
    if offset != len(value):
        raise PDUError("user identity sub-item has trailing bytes")
    return UserIdentityRQ(identity_type, positive, primary, secondary)
