"""Upper Layer PDU codec (PS3.8 9.3): round trips, hand-built bytes, pynetdicom interop, P-DATA, fuzzing."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import UID
from pynetdicom import pdu as pyn
from pynetdicom.pdu_items import UserIdentitySubItemAC, UserIdentitySubItemRQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext

from lightbox.dicomnet import pdu
from lightbox.dicomnet.pdu import (
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    CommonExtendedNegotiation,
    ExtendedNegotiation,
    PDUError,
    PresentationContextAC,
    PresentationContextRQ,
    ReleaseRP,
    ReleaseRQ,
    RoleSelection,
    UserIdentityRQ,
    UserInformation,
)

APP_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
KNOWN_ITEM_TYPES = {0x10, 0x20, 0x21, 0x30, 0x40, *range(0x50, 0x5A)}


def roundtrip(value: pdu.PDU) -> pdu.PDU:
    data = pdu.encode(value)
    pdu_type, length = pdu.parse_header(data[:6])
    assert length == len(data) - 6
    return pdu.decode(pdu_type, data[6:])


def item(item_type: int, value: bytes) -> bytes:
    """An item laid out by hand from PS3.8 9.3.2: type, reserved, 2-byte big endian length, value."""
    return bytes([item_type, 0]) + len(value).to_bytes(2, "big") + value


# -------------------------------------------------------------------------------- strategies

AE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if c != 0x5C)
ae_titles = st.text(AE_CHARS, min_size=1, max_size=16).filter(lambda s: s.strip(" ") == s and s != "")
uids = st.lists(st.integers(0, 10**8), min_size=1, max_size=8).map(lambda parts: ".".join(map(str, parts)))
names = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", min_size=1, max_size=16)
context_ids = st.lists(st.integers(0, 127).map(lambda i: 2 * i + 1), min_size=1, max_size=8, unique=True)
small_bytes = st.binary(max_size=64)

user_info = st.builds(
    UserInformation,
    max_pdu_length=st.integers(0, 0xFFFFFFFF),
    implementation_class_uid=st.none() | uids,
    implementation_version_name=st.none() | names,
    async_ops=st.none() | st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    role_selections=st.lists(st.builds(RoleSelection, uids, st.booleans(), st.booleans()), max_size=3).map(
        tuple
    ),
    extended_negotiations=st.lists(st.builds(ExtendedNegotiation, uids, small_bytes), max_size=3).map(tuple),
    common_extended_negotiations=st.lists(
        st.builds(CommonExtendedNegotiation, uids, uids, st.lists(uids, max_size=3).map(tuple)), max_size=3
    ).map(tuple),
    user_identity=st.none()
    | st.builds(UserIdentityRQ, st.integers(1, 5), st.booleans(), small_bytes, small_bytes),
    user_identity_response=st.none() | small_bytes,
    unknown=st.lists(
        st.tuples(st.integers(0, 255).filter(lambda t: t not in KNOWN_ITEM_TYPES), small_bytes), max_size=3
    ).map(tuple),
)


@st.composite
def associate_rqs(draw: st.DrawFn) -> AssociateRQ:
    contexts = tuple(
        PresentationContextRQ(cid, draw(uids), tuple(draw(st.lists(uids, min_size=1, max_size=4))))
        for cid in draw(context_ids)
    )
    return AssociateRQ(draw(ae_titles), draw(ae_titles), draw(uids), contexts, draw(user_info))


@st.composite
def associate_acs(draw: st.DrawFn) -> AssociateAC:
    contexts = tuple(
        PresentationContextAC(cid, draw(st.integers(0, 4)), draw(uids)) for cid in draw(context_ids)
    )
    return AssociateAC(draw(ae_titles), draw(ae_titles), draw(uids), contexts, draw(user_info))


other_pdus = st.one_of(
    st.builds(AssociateRJ, st.integers(1, 2), st.integers(1, 3), st.integers(0, 7)),
    st.just(ReleaseRQ()),
    st.just(ReleaseRP()),
    st.builds(Abort, st.sampled_from([0, 2]), st.integers(0, 6)),
)
any_pdu = st.one_of(associate_rqs(), associate_acs(), other_pdus)


# -------------------------------------------------------------------------------- round trips


@given(associate_rqs())
def test_associate_rq_roundtrip(value: AssociateRQ) -> None:
    assert roundtrip(value) == value


@given(associate_acs())
def test_associate_ac_roundtrip(value: AssociateAC) -> None:
    assert roundtrip(value) == value


@given(other_pdus)
def test_fixed_size_pdus_roundtrip(value: pdu.PDU) -> None:
    assert roundtrip(value) == value


def test_fixed_size_pdus_exact_bytes() -> None:
    # PS3.8 9.3.4, 9.3.6, 9.3.7, 9.3.8
    assert pdu.encode(ReleaseRQ()) == bytes.fromhex("05 00 00000004 00000000")
    assert pdu.encode(ReleaseRP()) == bytes.fromhex("06 00 00000004 00000000")
    rj = AssociateRJ(pdu.RJ_PERMANENT, pdu.RJ_SOURCE_USER, pdu.RJ_CALLED_AE_NOT_RECOGNIZED)
    assert pdu.encode(rj) == bytes.fromhex("03 00 00000004 00 01 01 07")
    abort = Abort(pdu.ABORT_SOURCE_PROVIDER, pdu.ABORT_UNEXPECTED_PDU)
    assert pdu.encode(abort) == bytes.fromhex("07 00 00000004 00 00 02 02")


def test_user_identity_secrets_stay_out_of_repr() -> None:
    ident = UserIdentityRQ(pdu.USER_IDENTITY_USERNAME_PASSCODE, True, b"alice", b"hunter2")
    assert "hunter2" not in repr(UserInformation(16384, user_identity=ident))


# -------------------------------------------------------------------------------- hand-built bytes


def rq_body(*items: bytes, called: bytes = b"LIGHTBOX", calling: bytes = b"STORESCU") -> bytes:
    # PS3.8 9.3.2: protocol version, reserved, called AE, calling AE, 32 reserved bytes, variable items
    return b"\x00\x01\x00\x00" + called.ljust(16) + calling.ljust(16) + bytes(32) + b"".join(items)


APP_ITEM = item(0x10, APP_CONTEXT.encode())
CTX1 = item(
    0x20,
    b"\x01\x00\x00\x00"
    + item(0x30, CT_STORAGE.encode())
    + item(0x40, EXPLICIT_LE.encode())
    + item(0x40, IMPLICIT_LE.encode() + b"\x00"),
)
CTX3 = item(
    0x20, b"\x03\x00\x00\x00" + item(0x30, VERIFICATION.encode() + b"\x00") + item(0x40, b"1.2.840.10008.1.2")
)
MAX_LENGTH = item(0x51, (16384).to_bytes(4, "big"))
USER_ITEM = item(0x50, MAX_LENGTH + item(0x52, b"1.2.826.0.1.3680043.9.1\x00") + item(0x55, b"LIGHTBOX_1"))


def test_decode_hand_built_associate_rq() -> None:
    body = rq_body(APP_ITEM, CTX1, CTX3, USER_ITEM, called=b"  LIGHTBOX")
    rq = pdu.decode(pdu.A_ASSOCIATE_RQ, body)
    assert rq == AssociateRQ(
        called_ae="LIGHTBOX",
        calling_ae="STORESCU",
        application_context=APP_CONTEXT,
        contexts=(
            PresentationContextRQ(1, CT_STORAGE, (EXPLICIT_LE, IMPLICIT_LE)),
            PresentationContextRQ(3, VERIFICATION, (IMPLICIT_LE,)),
        ),
        user=UserInformation(16384, "1.2.826.0.1.3680043.9.1", "LIGHTBOX_1"),
    )


def test_decode_hand_built_associate_ac() -> None:
    contexts = (
        item(0x21, b"\x01\x00\x00\x00" + item(0x40, EXPLICIT_LE.encode()))
        + item(0x21, b"\x03\x00\x03\x00" + item(0x40, b""))  # rejected: the syntax is not significant
        + item(0x21, b"\x05\x00\x04\x00")  # rejected, and no transfer syntax sub-item at all
    )
    user = item(
        0x50,
        item(0x51, bytes.fromhex("00020000")) + item(0x52, b"1.2.3") + item(0x53, bytes.fromhex("00010002")),
    )
    ac = pdu.decode(pdu.A_ASSOCIATE_AC, rq_body(APP_ITEM, contexts, user))
    assert isinstance(ac, AssociateAC)
    assert ac.contexts == (
        PresentationContextAC(1, pdu.CONTEXT_ACCEPTANCE, EXPLICIT_LE),
        PresentationContextAC(3, pdu.CONTEXT_ABSTRACT_SYNTAX_NOT_SUPPORTED, ""),
        PresentationContextAC(5, pdu.CONTEXT_TRANSFER_SYNTAXES_NOT_SUPPORTED, ""),
    )
    assert ac.user == UserInformation(131072, "1.2.3", async_ops=(1, 2))
    assert (ac.called_ae, ac.calling_ae, ac.application_context) == ("LIGHTBOX", "STORESCU", APP_CONTEXT)


def test_encode_matches_hand_built_layout() -> None:
    rq = pdu.decode(pdu.A_ASSOCIATE_RQ, rq_body(APP_ITEM, CTX1, USER_ITEM))
    data = pdu.encode(rq)
    assert data[:6] == b"\x01\x00" + struct.pack(">I", len(data) - 6)
    assert data[6:10] == b"\x00\x01\x00\x00"
    assert data[10:42] == b"LIGHTBOX        STORESCU        "
    assert data[42:74] == bytes(32)
    assert data[74:].startswith(APP_ITEM)
    assert struct.unpack_from(">BxHB3x", data, 74 + len(APP_ITEM))[::2] == (0x20, 1)


def test_unknown_items_are_skipped_and_user_unknowns_kept() -> None:
    # PS3.8 9.3.1: items of unrecognized types are ignored
    user = item(0x50, item(0x70, b"future") + MAX_LENGTH)
    body = rq_body(APP_ITEM, item(0x60, b"x"), CTX1, item(0x61, b""), user, item(0x7F, b"zz"))
    rq = pdu.decode(pdu.A_ASSOCIATE_RQ, body)
    assert isinstance(rq, AssociateRQ)
    assert [c.context_id for c in rq.contexts] == [1]
    assert rq.user.unknown == ((0x70, b"future"),)
    assert rq.user.max_pdu_length == 16384


def test_user_sub_items_in_any_order() -> None:
    user = item(0x50, item(0x55, b"V1") + item(0x52, b"1.2") + MAX_LENGTH)
    rq = pdu.decode(pdu.A_ASSOCIATE_RQ, rq_body(APP_ITEM, CTX1, user))
    assert isinstance(rq, AssociateRQ)
    assert (
        rq.user.max_pdu_length,
        rq.user.implementation_class_uid,
        rq.user.implementation_version_name,
    ) == (
        16384,
        "1.2",
        "V1",
    )


MALFORMED = {
    "truncated fixed fields": (rq_body()[:60], pdu.ABORT_INVALID_PDU_PARAMETER_VALUE),
    "item overruns the PDU": (rq_body(APP_ITEM, CTX1, USER_ITEM)[:-3], pdu.ABORT_INVALID_PDU_PARAMETER_VALUE),
    "truncated item header": (
        rq_body(APP_ITEM, CTX1, USER_ITEM, b"\x60\x00"),
        pdu.ABORT_INVALID_PDU_PARAMETER_VALUE,
    ),
    "sub-item overruns its item": (
        rq_body(APP_ITEM, item(0x20, b"\x01\x00\x00\x00\x30\x00\x00\x09abc"), USER_ITEM),
        pdu.ABORT_INVALID_PDU_PARAMETER_VALUE,
    ),
    "even context id": (rq_body(APP_ITEM, b"\x20\x00\x00\x08\x02" + CTX1[5:], USER_ITEM), 6),
    "context id 0": (rq_body(APP_ITEM, b"\x20\x00\x00\x08\x00" + CTX1[5:], USER_ITEM), 6),
    "duplicate context id": (rq_body(APP_ITEM, CTX1, CTX1, USER_ITEM), 6),
    "application context after a context": (rq_body(CTX1, APP_ITEM, USER_ITEM), 5),
    "context after user information": (rq_body(APP_ITEM, USER_ITEM, CTX3), 5),
    "two user information items": (rq_body(APP_ITEM, CTX1, USER_ITEM, USER_ITEM), 5),
    "AC context item in an RQ": (rq_body(APP_ITEM, item(0x21, b"\x01\x00\x00\x00"), USER_ITEM), 5),
    "sub-item at the top level": (rq_body(APP_ITEM, CTX1, item(0x51, b"\x00\x00\x40\x00"), USER_ITEM), 5),
    "transfer syntax before abstract syntax": (
        rq_body(
            APP_ITEM, item(0x20, b"\x01\x00\x00\x00" + item(0x40, b"1.2") + item(0x30, b"1.2")), USER_ITEM
        ),
        5,
    ),
    "no transfer syntax": (
        rq_body(APP_ITEM, item(0x20, b"\x01\x00\x00\x00" + item(0x30, b"1.2")), USER_ITEM),
        6,
    ),
    "no sub-items": (rq_body(APP_ITEM, item(0x20, b"\x01\x00\x00\x00"), USER_ITEM), 6),
    "no application context before a context": (rq_body(CTX1, USER_ITEM), 5),
    "no items at all": (rq_body(), 6),
    "no presentation context": (rq_body(APP_ITEM, USER_ITEM), 6),
    "no user information": (rq_body(APP_ITEM, CTX1), 6),
    "no maximum length": (rq_body(APP_ITEM, CTX1, item(0x50, item(0x52, b"1.2"))), 6),
    "maximum length of 2 bytes": (rq_body(APP_ITEM, CTX1, item(0x50, item(0x51, b"\x40\x00"))), 6),
    "two maximum lengths": (rq_body(APP_ITEM, CTX1, item(0x50, MAX_LENGTH + MAX_LENGTH)), 5),
    "role of 2": (rq_body(APP_ITEM, CTX1, item(0x50, MAX_LENGTH + item(0x54, b"\x00\x031.2\x02\x00"))), 6),
    "role UID overruns": (
        rq_body(APP_ITEM, CTX1, item(0x50, MAX_LENGTH + item(0x54, b"\x00\x091.2\x01\x00"))),
        6,
    ),
    "backslash in AE title": (rq_body(APP_ITEM, CTX1, USER_ITEM, called=b"LIGHT\\BOX"), 6),
    "control character in AE title": (rq_body(APP_ITEM, CTX1, USER_ITEM, calling=b"STORE\nSCU"), 6),
    "AE title of spaces": (rq_body(APP_ITEM, CTX1, USER_ITEM, calling=b""), 6),
    "non-ASCII UID": (rq_body(item(0x10, b"1.2.\xff"), CTX1, USER_ITEM), 6),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_associate_rq(name: str) -> None:
    body, reason = MALFORMED[name]
    with pytest.raises(PDUError) as info:
        pdu.decode(pdu.A_ASSOCIATE_RQ, body)
    assert info.value.reason == reason


def test_malformed_associate_ac() -> None:
    with pytest.raises(PDUError) as info:
        pdu.decode(pdu.A_ASSOCIATE_AC, rq_body(APP_ITEM, CTX1, USER_ITEM))  # an RQ context in an AC
    assert info.value.reason == pdu.ABORT_UNEXPECTED_PDU_PARAMETER
    accepted_without_syntax = item(0x21, b"\x01\x00\x00\x00")
    with pytest.raises(PDUError):
        pdu.decode(pdu.A_ASSOCIATE_AC, rq_body(APP_ITEM, accepted_without_syntax, USER_ITEM))
    unknown_result = item(0x21, b"\x01\x00\x09\x00" + item(0x40, b"1.2"))
    with pytest.raises(PDUError):
        pdu.decode(pdu.A_ASSOCIATE_AC, rq_body(APP_ITEM, unknown_result, USER_ITEM))


def test_ac_ae_fields_are_not_tested() -> None:
    # PS3.8 9.3.3: the AC echoes the AE titles and the receiver does not test them
    ac = pdu.decode(pdu.A_ASSOCIATE_AC, rq_body(APP_ITEM, USER_ITEM, called=b"A\\B", calling=b""))
    assert isinstance(ac, AssociateAC)
    assert (ac.called_ae, ac.calling_ae, ac.contexts) == ("A\\B", "", ())


@pytest.mark.parametrize("pdu_type", [pdu.A_ASSOCIATE_RJ, pdu.A_RELEASE_RQ, pdu.A_RELEASE_RP, pdu.A_ABORT])
@pytest.mark.parametrize("size", [0, 3, 5])
def test_fixed_size_pdu_with_wrong_length(pdu_type: int, size: int) -> None:
    with pytest.raises(PDUError) as info:
        pdu.decode(pdu_type, bytes(size))
    assert info.value.reason == pdu.ABORT_INVALID_PDU_PARAMETER_VALUE


@pytest.mark.parametrize("pdu_type", [0x00, 0x08, 0x10, 0xFF])
def test_unknown_pdu_type(pdu_type: int) -> None:
    with pytest.raises(PDUError) as info:
        pdu.decode(pdu_type, bytes(4))
    assert info.value.reason == pdu.ABORT_UNRECOGNIZED_PDU
    with pytest.raises(PDUError) as info:
        pdu.parse_header(bytes([pdu_type, 0, 0, 0, 0, 4]))
    assert info.value.reason == pdu.ABORT_UNRECOGNIZED_PDU


def test_parse_header() -> None:
    assert pdu.parse_header(bytes.fromhex("04 00 00010006")) == (pdu.P_DATA_TF, 0x10006)
    with pytest.raises(PDUError):
        pdu.parse_header(b"\x04\x00\x00")


@pytest.mark.parametrize(
    "bad",
    [
        AssociateRQ(
            "A\\B",
            "SCU",
            APP_CONTEXT,
            (PresentationContextRQ(1, VERIFICATION, (IMPLICIT_LE,)),),
            UserInformation(0),
        ),
        AssociateRQ(
            "X" * 17,
            "SCU",
            APP_CONTEXT,
            (PresentationContextRQ(1, VERIFICATION, (IMPLICIT_LE,)),),
            UserInformation(0),
        ),
        AssociateRQ(
            "SCP",
            "SCU",
            APP_CONTEXT,
            (PresentationContextRQ(2, VERIFICATION, (IMPLICIT_LE,)),),
            UserInformation(0),
        ),
        AssociateRQ(
            "SCP", "SCU", APP_CONTEXT, (PresentationContextRQ(1, VERIFICATION, ()),), UserInformation(0)
        ),
        AssociateRQ(
            "SCP",
            "SCU",
            APP_CONTEXT,
            (PresentationContextRQ(1, VERIFICATION, (IMPLICIT_LE,)),),
            UserInformation(),
        ),
        AssociateRQ("SCP", "SCU", APP_CONTEXT, (), UserInformation(0, async_ops=(1, 70000))),
        AssociateRQ(
            "SCP",
            "SCU",
            APP_CONTEXT,
            (),
            UserInformation(0, extended_negotiations=(ExtendedNegotiation("1", bytes(70000)),)),
        ),
        Abort(0, 256),
    ],
)
def test_encode_refuses_what_cannot_go_on_the_wire(bad: pdu.PDU) -> None:
    with pytest.raises(ValueError):
        pdu.encode(bad)


# -------------------------------------------------------------------------------- pynetdicom


def pynetdicom_user_items() -> list[object]:
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = 32768
    class_uid = ImplementationClassUIDNotification()
    class_uid.implementation_class_uid = "1.2.826.0.1.3680043.9.3811.3.0.4"
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = "PYNETDICOM_304"
    window = AsynchronousOperationsWindowNegotiation()
    window.maximum_number_operations_invoked = 5
    window.maximum_number_operations_performed = 3
    role = SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid = CT_STORAGE
    role.scu_role = False
    role.scp_role = True
    ext = SOPClassExtendedNegotiation()
    ext.sop_class_uid = CT_STORAGE
    ext.service_class_application_information = b"\x02\x00\x01"
    common = SOPClassCommonExtendedNegotiation()
    common.sop_class_uid = CT_STORAGE
    common.service_class_uid = "1.2.840.10008.4.2"
    common.related_general_sop_class_identification = ["1.2.840.10008.5.1.4.1.1.2.1"]
    ident = UserIdentityNegotiation()
    ident.user_identity_type = 2
    ident.positive_response_requested = True
    ident.primary_field = b"alice"
    ident.secondary_field = b"secret"
    return [max_length, class_uid, version, window, role, ext, common, ident]


def pynetdicom_context(context_id: int, abstract: str, syntaxes: list[str]) -> PresentationContext:
    ctx = PresentationContext()
    ctx.context_id = context_id
    ctx.abstract_syntax = abstract
    ctx.transfer_syntax = syntaxes  # type: ignore[assignment]
    return ctx


def test_decode_pynetdicom_associate_rq() -> None:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = APP_CONTEXT
    primitive.calling_ae_title = "STORESCU"
    primitive.called_ae_title = "LIGHTBOX"
    primitive.presentation_context_definition_list = [
        pynetdicom_context(1, CT_STORAGE, [EXPLICIT_LE, IMPLICIT_LE]),
        pynetdicom_context(3, VERIFICATION, [IMPLICIT_LE]),
    ]
    primitive.user_information = pynetdicom_user_items()  # type: ignore[assignment]
    data = pyn.A_ASSOCIATE_RQ(primitive).encode()
    pdu_type, length = pdu.parse_header(data[:6])
    assert (pdu_type, length) == (pdu.A_ASSOCIATE_RQ, len(data) - 6)
    rq = pdu.decode(pdu_type, memoryview(data)[6:])
    assert rq == AssociateRQ(
        "LIGHTBOX",
        "STORESCU",
        APP_CONTEXT,
        (
            PresentationContextRQ(1, CT_STORAGE, (EXPLICIT_LE, IMPLICIT_LE)),
            PresentationContextRQ(3, VERIFICATION, (IMPLICIT_LE,)),
        ),
        UserInformation(
            max_pdu_length=32768,
            implementation_class_uid="1.2.826.0.1.3680043.9.3811.3.0.4",
            implementation_version_name="PYNETDICOM_304",
            async_ops=(5, 3),
            role_selections=(RoleSelection(CT_STORAGE, False, True),),
            extended_negotiations=(ExtendedNegotiation(CT_STORAGE, b"\x02\x00\x01"),),
            common_extended_negotiations=(
                CommonExtendedNegotiation(CT_STORAGE, "1.2.840.10008.4.2", ("1.2.840.10008.5.1.4.1.1.2.1",)),
            ),
            user_identity=UserIdentityRQ(2, True, b"alice", b"secret"),
        ),
    )


FULL_USER = UserInformation(
    max_pdu_length=65536,
    implementation_class_uid="1.2.826.0.1.3680043.9.1",
    implementation_version_name="LIGHTBOX_1",
    async_ops=(4, 2),
    role_selections=(RoleSelection(CT_STORAGE, True, False),),
    extended_negotiations=(ExtendedNegotiation(CT_STORAGE, b"\x01"),),
    common_extended_negotiations=(
        CommonExtendedNegotiation(CT_STORAGE, "1.2.840.10008.4.2", ("1.2.3", "1.2.4")),
    ),
    user_identity=UserIdentityRQ(1, False, b"bob"),
)


def test_pynetdicom_decodes_our_associate_rq() -> None:
    ours = AssociateRQ(
        "PEER",
        "LIGHTBOX",
        APP_CONTEXT,
        (
            PresentationContextRQ(1, CT_STORAGE, (EXPLICIT_LE, IMPLICIT_LE)),
            PresentationContextRQ(255, VERIFICATION, (IMPLICIT_LE,)),
        ),
        FULL_USER,
    )
    theirs = pyn.A_ASSOCIATE_RQ()
    theirs.decode(pdu.encode(ours))
    assert (theirs.called_ae_title, theirs.calling_ae_title) == ("PEER", "LIGHTBOX")
    assert theirs.application_context_name == APP_CONTEXT
    contexts = [(c.context_id, c.abstract_syntax, c.transfer_syntax) for c in theirs.presentation_context]
    assert contexts == [(1, CT_STORAGE, [EXPLICIT_LE, IMPLICIT_LE]), (255, VERIFICATION, [IMPLICIT_LE])]
    user = theirs.user_information
    assert user is not None
    assert user.maximum_length == 65536
    assert user.implementation_class_uid == "1.2.826.0.1.3680043.9.1"
    assert user.implementation_version_name == "LIGHTBOX_1"
    window = user.async_ops_window
    assert window is not None
    assert (window.maximum_number_operations_invoked, window.maximum_number_operations_performed) == (4, 2)
    role = user.role_selection[UID(CT_STORAGE)]
    assert (role.scu_role, role.scp_role) == (1, 0)
    assert [(e.sop_class_uid, e.service_class_application_information) for e in user.ext_neg] == [
        (CT_STORAGE, b"\x01")
    ]
    [common] = user.common_ext_neg
    assert common.related_general_sop_class_identification == ["1.2.3", "1.2.4"]
    identity = user.user_identity
    assert isinstance(identity, UserIdentitySubItemRQ)
    assert (identity.user_identity_type, identity.primary_field, identity.secondary_field) == (1, b"bob", b"")


def test_associate_ac_interop_both_ways() -> None:
    ours = AssociateAC(
        "LIGHTBOX",
        "STORESCU",
        APP_CONTEXT,
        (
            PresentationContextAC(1, pdu.CONTEXT_ACCEPTANCE, EXPLICIT_LE),
            PresentationContextAC(3, pdu.CONTEXT_ABSTRACT_SYNTAX_NOT_SUPPORTED, IMPLICIT_LE),
        ),
        UserInformation(16384, "1.2.3", "V1", user_identity_response=b"token"),
    )
    theirs = pyn.A_ASSOCIATE_AC()
    theirs.decode(pdu.encode(ours))
    assert [(c.context_id, c.result, c.transfer_syntax) for c in theirs.presentation_context] == [
        (1, 0, EXPLICIT_LE),
        (3, 3, IMPLICIT_LE),
    ]
    assert theirs.user_information is not None
    assert theirs.user_information.maximum_length == 16384
    response = theirs.user_information.user_identity
    assert isinstance(response, UserIdentitySubItemAC)
    assert response.server_response == b"token"
    # and back: pynetdicom's re-encoding decodes to what we sent
    data = theirs.encode()
    assert pdu.decode(data[0], data[6:]) == ours


def test_pynetdicom_decodes_our_pdata() -> None:
    theirs = pyn.P_DATA_TF()
    theirs.decode(pdu.encode_pdata(7, True, True, b"\x01\x02\x03"))
    [pdv] = theirs.presentation_data_value_items
    assert pdv.presentation_context_id == 7
    assert pdv.presentation_data_value == b"\x03\x01\x02\x03"  # control byte then the fragment


# -------------------------------------------------------------------------------- P-DATA


@pytest.mark.parametrize(
    ("is_command", "is_last", "control"),
    [(False, False, 0), (True, False, 1), (False, True, 2), (True, True, 3)],
)
def test_control_byte(is_command: bool, is_last: bool, control: int) -> None:
    # PS3.8 E.2: bit 0 command (1) or data set (0), bit 1 last fragment
    data = pdu.encode_pdata(9, is_command, is_last, b"abc")
    assert data == bytes([0x04, 0]) + struct.pack(">IIBB", 9, 5, 9, control) + b"abc"
    assert [(c, h, bytes(f)) for c, h, f in pdu.iter_pdvs(memoryview(data)[6:])] == [(9, control, b"abc")]


def test_iter_pdvs_several_pdvs_without_copying() -> None:
    body = bytearray(struct.pack(">IBB", 4, 1, 1) + b"ab" + struct.pack(">IBB", 2, 3, 2))
    pdvs = list(pdu.iter_pdvs(memoryview(body)))
    assert [(c, h, bytes(f)) for c, h, f in pdvs] == [(1, 1, b"ab"), (3, 2, b"")]
    body[6] = ord("z")
    assert bytes(pdvs[0][2]) == b"zb"  # a view into the received body, not a copy


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00\x00\x00", struct.pack(">IBB", 1, 1, 1), struct.pack(">IBB", 9, 1, 1) + b"abc"],
    ids=["empty", "truncated header", "length below 2", "overrun"],
)
def test_iter_pdvs_malformed(body: bytes) -> None:
    with pytest.raises(PDUError) as info:
        list(pdu.iter_pdvs(body))
    assert info.value.reason == pdu.ABORT_INVALID_PDU_PARAMETER_VALUE


@given(
    data=st.binary(max_size=5000),
    max_pdu_length=st.integers(7, 2000) | st.just(0),
    is_command=st.booleans(),
    context_id=st.integers(0, 127).map(lambda i: 2 * i + 1),
)
def test_fragment_reassembles(data: bytes, max_pdu_length: int, is_command: bool, context_id: int) -> None:
    pdus = list(pdu.fragment(context_id, is_command, data, max_pdu_length))
    parts = []
    for index, raw in enumerate(pdus):
        pdu_type, length = pdu.parse_header(raw[:6])
        assert pdu_type == pdu.P_DATA_TF and length == len(raw) - 6
        assert max_pdu_length == 0 or length <= max_pdu_length  # PS3.8 D.1: the variable field fits
        [(cid, control, fragment)] = list(pdu.iter_pdvs(memoryview(raw)[6:]))
        assert cid == context_id
        assert control == (1 if is_command else 0) | (2 if index == len(pdus) - 1 else 0)
        parts.append(bytes(fragment))
    assert b"".join(parts) == data
    if max_pdu_length:
        assert len(pdus) == max(1, -(-len(data) // (max_pdu_length - 6)))  # every PDU but the last is full


def test_fragment_exact_fit_and_refusals() -> None:
    assert [len(p) for p in pdu.fragment(1, False, bytes(20), 16)] == [22, 22]  # 10 bytes each, 6 of framing
    assert len(list(pdu.fragment(1, False, memoryview(bytes(100)), 0))) == 1
    with pytest.raises(ValueError):
        list(pdu.fragment(1, False, b"x", 6))


# -------------------------------------------------------------------------------- fuzz

ALL_TYPES = st.integers(0, 255)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(pdu_type=ALL_TYPES, body=st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(pdu_type: int, body: bytes) -> None:
    with contextlib.suppress(PDUError):
        pdu.decode(pdu_type, body)
    with contextlib.suppress(PDUError):
        list(pdu.iter_pdvs(body))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[int, bytes]:
    """A valid PDU body with bit flips, a truncation, an overwritten length field or spliced bytes."""
    data = pdu.encode(draw(any_pdu))
    pdu_type, body = data[0], bytearray(data[6:])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "length", "insert", "type"]))
        if kind == "type":
            pdu_type = draw(st.sampled_from([1, 2, 3, 5, 6, 7]))
        elif not body:
            continue
        elif kind == "flip":
            pos = draw(st.integers(0, len(body) - 1))
            body[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del body[draw(st.integers(0, len(body) - 1)) :]
        elif kind == "length":  # overwrite two bytes where an item length may sit
            pos = draw(st.integers(0, max(0, len(body) - 2)))
            body[pos : pos + 2] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
        else:
            pos = draw(st.integers(0, len(body)))
            body[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return pdu_type, bytes(body)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fuzz_mutated_valid_pdus(case: tuple[int, bytes]) -> None:
    pdu_type, body = case
    try:
        decoded = pdu.decode(pdu_type, body)
    except PDUError as exc:
        assert exc.reason in (1, 2, 4, 5, 6)
    else:
        assert isinstance(decoded, (AssociateRQ, AssociateAC, AssociateRJ, ReleaseRQ, ReleaseRP, Abort))
