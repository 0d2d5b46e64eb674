"""The acceptor against real peers: dcmtk's echoscu and pynetdicom, on a loopback port."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest

from lightbox.dicomnet import dimse, pdu, status
from lightbox.dicomnet.association import (
    AcceptorHandler,
    AcceptorSettings,
    Association,
    Message,
    Rejection,
    serve_acceptor,
)
from tests.support.dcmtk import ENV, require

VERIFICATION = "1.2.840.10008.1.1"
REFUSED = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root C-FIND: refused by permission in these tests
EXPLICIT_LE, IMPLICIT_LE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"


class EchoHandler(AcceptorHandler):
    async def check(self, request: pdu.AssociateRQ, peer: tuple[str, int]) -> Rejection | None:
        if request.called_ae != "LIGHTBOX":
            return Rejection(pdu.RJ_PERMANENT, pdu.RJ_SOURCE_USER, pdu.RJ_CALLED_AE_NOT_RECOGNIZED)
        return None

    def data_sink(self, association: Association, context_id: int, command: Any) -> None:
        return None

    def permits(self, abstract_syntax: str, peer_scp_role: bool) -> bool:
        return abstract_syntax != REFUSED  # a context this peer may not use

    def identity_response(self) -> bytes | None:
        return None

    def transfer_syntax(
        self, abstract_syntax: str, offered: Sequence[str], peer_scp_role: bool
    ) -> str | None:
        if abstract_syntax != VERIFICATION:
            return None
        for preferred in (EXPLICIT_LE, IMPLICIT_LE):
            if preferred in offered:
                return preferred
        return None

    async def handle(self, association: Association, message: Message) -> None:
        assert dimse.command_field(message.command) == dimse.C_ECHO_RQ
        association.send(
            message.context_id, dimse.c_echo_rsp(dimse.message_id(message.command), status.SUCCESS)
        )


@pytest.fixture
def acceptor() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        settings = AcceptorSettings("LIGHTBOX", artim_timeout=5, idle_timeout=10)
        holder["server"] = await serve_acceptor(settings, EchoHandler, "127.0.0.1", port)
        started.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(main()), loop.run_forever()), daemon=True
    )
    thread.start()
    assert started.wait(10)
    yield port
    loop.call_soon_threadsafe(holder["server"].close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_echoscu(acceptor: int) -> None:
    echoscu = require("echoscu")
    ok = subprocess.run(
        [echoscu, "-aec", "LIGHTBOX", "127.0.0.1", str(acceptor)],
        capture_output=True,
        text=True,
        timeout=30,
        env=ENV,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    refused = subprocess.run(
        [echoscu, "-aec", "SOMEONE", "127.0.0.1", str(acceptor)],
        capture_output=True,
        text=True,
        timeout=30,
        env=ENV,
    )
    assert refused.returncode != 0
    assert "Called AE Title Not Recognized" in refused.stdout + refused.stderr


def test_pynetdicom_echo_many_times_on_one_association(acceptor: int) -> None:
    from pynetdicom import AE

    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("127.0.0.1", acceptor, ae_title="LIGHTBOX")
    assert assoc.is_established
    assert assoc.acceptor.maximum_length > 0
    for _ in range(20):
        assert assoc.send_c_echo().Status == 0
    assoc.release()
    assert assoc.is_released


def test_unsupported_context_is_refused_not_fatal(acceptor: int) -> None:
    from pynetdicom import AE

    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")  # CT Image Storage: not offered by this handler
    assoc = ae.associate("127.0.0.1", acceptor, ae_title="LIGHTBOX")
    assert assoc.is_established
    assert [c.abstract_syntax for c in assoc.accepted_contexts] == [VERIFICATION]
    assert assoc.send_c_echo().Status == 0
    assoc.release()


def test_context_the_handler_does_not_permit_is_a_user_rejection(acceptor: int) -> None:
    """PS3.8 9.3.3.2: result 1 (user-rejection) for a context the peer may not use; 3 for one not offered."""
    from pynetdicom import AE

    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(REFUSED)
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
    assoc = ae.associate("127.0.0.1", acceptor, ae_title="LIGHTBOX")
    assert assoc.is_established
    results = {c.abstract_syntax: c.result for c in assoc.rejected_contexts}
    assert results == {REFUSED: 0x01, "1.2.840.10008.5.1.4.1.1.2": 0x03}
    assoc.release()


@pytest.mark.parametrize(
    "garbage",
    [b"\x09\x00\x00\x00\x00\x04abcd", b"\x04\x00\x00\x00\x00\x06\x00\x00\x00\x02\x01\x03", b"\x01" * 3],
    ids=["unknown-type", "data-before-association", "short"],
)
def test_garbage_gets_an_abort_and_the_server_keeps_serving(acceptor: int, garbage: bytes) -> None:
    with socket.create_connection(("127.0.0.1", acceptor), timeout=5) as s:
        s.sendall(garbage)
        if len(garbage) >= 6:
            reply = s.recv(64)
            assert reply[:1] == bytes([pdu.A_ABORT])
    # still serving: dcmtk's echoscu (pynetdicom's own reactor can swallow a response on a loaded machine)
    echo = subprocess.run(
        [require("echoscu"), "-aec", "LIGHTBOX", "127.0.0.1", str(acceptor)],
        capture_output=True,
        text=True,
        timeout=30,
        env=ENV,
    )
    assert echo.returncode == 0, echo.stdout + echo.stderr


class SlowEchoHandler(EchoHandler):
    """Answers each C-ECHO after a pause, counting how many it serves at once; keeps the user identity."""

    running = 0
    most_at_once = 0
    identities: list[pdu.UserIdentityRQ | None] = []

    async def handle(self, association: Association, message: Message) -> None:
        cls = SlowEchoHandler
        cls.identities.append(association.user_identity)
        cls.running += 1
        cls.most_at_once = max(cls.most_at_once, cls.running)
        try:
            await asyncio.sleep(0.05)
        finally:
            cls.running -= 1
        await super().handle(association, message)


def _run_acceptor_and(client: Any) -> Any:
    """Serve SlowEchoHandler (a window of 3 at most) and run ``client(port)`` in the same event loop."""

    async def main() -> Any:
        SlowEchoHandler.running = SlowEchoHandler.most_at_once = 0
        SlowEchoHandler.identities = []
        settings = AcceptorSettings("LIGHTBOX", artim_timeout=5, idle_timeout=10, max_async_operations=3)
        server = await serve_acceptor(settings, SlowEchoHandler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await client(port)
        finally:
            server.close()

    return asyncio.run(main())


@pytest.mark.parametrize(("asked", "expected_at_once"), [(None, 1), (8, 3), (0, 3), (2, 2)])
def test_requests_beyond_the_async_window_wait(asked: int | None, expected_at_once: int) -> None:
    """PS3.7 D.3.3.3: without a window, one request at a time; with one, at most what both agreed."""
    from lightbox.dicomnet.association import associate

    async def client(port: int) -> list[int]:
        association, link = await associate(
            "127.0.0.1",
            port,
            AcceptorSettings("REQUESTOR"),
            "LIGHTBOX",
            [(VERIFICATION, [EXPLICIT_LE])],
            async_operations=asked,
        )
        context_id = next(iter(association.contexts))
        requests = [
            association.request(context_id, dimse.c_echo_rq(association.new_message_id())) for _ in range(6)
        ]
        responses = await asyncio.gather(*requests)
        await link.release()
        return [int(r["Status"]) for r in responses]

    assert _run_acceptor_and(client) == [0] * 6
    assert SlowEchoHandler.most_at_once == expected_at_once


def test_async_window_reply_and_user_identity_with_pynetdicom() -> None:
    from pynetdicom import AE
    from pynetdicom.pdu_primitives import AsynchronousOperationsWindowNegotiation, UserIdentityNegotiation

    async def client(port: int) -> tuple[Any, int]:
        def run() -> tuple[Any, int]:
            window = AsynchronousOperationsWindowNegotiation()
            window.maximum_number_operations_invoked = 5
            window.maximum_number_operations_performed = 5
            identity = UserIdentityNegotiation()
            identity.user_identity_type = 2
            identity.primary_field = b"radiologist"
            identity.secondary_field = b"secret"
            ae = AE(ae_title="PYNETDICOM")
            ae.add_requested_context(VERIFICATION)
            assoc = ae.associate("127.0.0.1", port, ae_title="LIGHTBOX", ext_neg=[window, identity])
            assert assoc.is_established
            reply = assoc.acceptor.asynchronous_operations
            status_code = int(assoc.send_c_echo().Status)
            assoc.release()
            return reply, status_code

        return await asyncio.to_thread(run)

    reply, status_code = _run_acceptor_and(client)
    assert status_code == 0
    assert tuple(reply) == (1, 3)  # we invoke one at a time; we perform up to our bound of 3
    identity = SlowEchoHandler.identities[0]
    assert identity is not None and identity.type == 2
    assert identity.primary == b"radiologist" and identity.secondary == b"secret"


def test_a_data_set_that_breaks_off_aborts_the_association() -> None:
    """Half a data set cannot be taken back (PS3.8): the sender aborts; one that fails before its first
    byte fails alone, and the association goes on."""
    from lightbox.dicomnet.association import associate

    async def broken(after_first: bool) -> AsyncIterator[bytes]:
        if after_first:
            yield b"\x08\x00\x16\x00\x02\x00\x00\x00"
        raise OSError("the disk went away")

    async def client(port: int) -> tuple[str, str, int]:
        association, link = await associate(
            "127.0.0.1", port, AcceptorSettings("REQUESTOR"), "LIGHTBOX", [(VERIFICATION, [EXPLICIT_LE])]
        )
        context_id = next(iter(association.contexts))
        store = dimse.c_store_rq(association.new_message_id(), VERIFICATION, "1.2.3")
        with pytest.raises(OSError) as before:
            await association.request(context_id, store, broken(after_first=False))
        echo = await association.request(context_id, dimse.c_echo_rq(association.new_message_id()))
        store = dimse.c_store_rq(association.new_message_id(), VERIFICATION, "1.2.4")
        with pytest.raises(ConnectionError) as midway:
            await association.request(context_id, store, broken(after_first=True))
        await asyncio.wait_for(link.released, 5)  # the connection is closed
        return type(before.value).__name__, type(midway.value).__name__, int(echo["Status"])

    assert _run_acceptor_and(client) == ("OSError", "ConnectionError", 0)


def test_requestor_receives_every_pending_response_from_pynetdicom() -> None:
    """C-FIND as an SCU: pynetdicom's SCP answers three matches, then success; each match comes with its
    identifier, the final response last."""
    from pydicom import dcmread
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as StudyRootFind

    from lightbox.dicomnet.association import associate

    def matches(event: Any) -> Iterator[tuple[int, Dataset]]:
        for n in range(3):
            match = Dataset()
            match.QueryRetrieveLevel = "STUDY"
            match.StudyInstanceUID = f"1.2.3.{n}"
            yield 0xFF00, match

    ae = AE(ae_title="LIGHTBOX")
    ae.add_supported_context(StudyRootFind, [EXPLICIT_LE])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_FIND, matches)])

    async def client() -> list[tuple[int, str | None]]:
        association, link = await associate(
            "127.0.0.1",
            port,
            AcceptorSettings("REQUESTOR"),
            "LIGHTBOX",
            [(str(StudyRootFind), [EXPLICIT_LE])],
        )
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = True, False
        write_dataset(buffer, query)
        context_id = next(iter(association.contexts))
        request = dimse.c_find_rq(association.new_message_id(), str(StudyRootFind))
        seen: list[tuple[int, str | None]] = []
        async for response, identifier in association.request_all(context_id, request, buffer.getvalue()):
            uid = None
            if identifier is not None:
                uid = dcmread(DicomBytesIO(identifier), force=True).StudyInstanceUID
            seen.append((int(response["Status"]), uid))
        await link.release()
        return seen

    try:
        seen = asyncio.run(client())
    finally:
        server.shutdown()
    assert seen == [(0xFF00, "1.2.3.0"), (0xFF00, "1.2.3.1"), (0xFF00, "1.2.3.2"), (0x0000, None)]
