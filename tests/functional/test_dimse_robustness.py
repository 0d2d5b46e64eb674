"""A running server against hostile and excessive peers: it answers with A-ABORT or A-ASSOCIATE-RJ, loses
nothing, and keeps serving."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

from pynetdicom import AE

from lightbox.dicomnet import dimse, pdu
from tests.support.server import RunningServer, running_server

VERIFICATION = "1.2.840.10008.1.1"


def _echo_works(server: RunningServer) -> bool:
    ae = AE(ae_title="CHECK")
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
    ok = assoc.is_established and assoc.send_c_echo().Status == 0
    assoc.release()
    return bool(ok)


def _valid_pdus() -> list[bytes]:
    context = pdu.PresentationContextRQ(1, VERIFICATION, ("1.2.840.10008.1.2",))
    user = pdu.UserInformation(max_pdu_length=16384, implementation_class_uid="1.2.3.4")
    rq = pdu.encode(pdu.AssociateRQ("LIGHTBOX", "FUZZ", "1.2.840.10008.3.1.1.1", (context,), user))
    echo = pdu.encode_pdata(1, True, True, dimse.encode_command(dimse.c_echo_rq(1)))
    return [rq, echo, pdu.encode(pdu.ReleaseRQ())]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0 and b:
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == 1 and b:
        b = b[: rng.randrange(len(b))]
    elif kind == 2 and len(b) >= 6:
        b[2:6] = rng.randrange(1 << 32).to_bytes(4, "big")  # a lying PDU length
    else:
        b = bytearray(rng.randbytes(rng.randint(1, 300)))
    return bytes(b)


def test_fuzzed_pdus_never_stop_the_server(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    with running_server(tmp_path / "data", env={"LIGHTBOX_NETWORK_IDLE_TIMEOUT": "2"}) as server:
        for _ in range(300):
            sequence = _valid_pdus()
            cut = rng.randrange(len(sequence))
            payload = b"".join(sequence[:cut]) + _mutate(sequence[cut], rng)
            with socket.create_connection(("127.0.0.1", server.dicom_port), timeout=5) as s:
                s.sendall(payload)
                s.settimeout(0.2)
                with contextlib.suppress(TimeoutError, ConnectionResetError):
                    s.recv(65536)
        assert _echo_works(server)
        assert server.process.poll() is None
        assert "Traceback" not in server.log()


def test_associations_beyond_the_limit_are_refused(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", env={"LIGHTBOX_NETWORK_MAX_ASSOCIATIONS": "2"}) as server:
        ae = AE(ae_title="MANY")
        ae.add_requested_context(VERIFICATION)
        held = [ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX") for _ in range(2)]
        assert all(a.is_established for a in held)
        third = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
        assert third.is_rejected
        for a in held:
            a.release()
        assert _echo_works(server)  # the slots come back
