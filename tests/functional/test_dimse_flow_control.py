"""A C-MOVE destination that stops reading holds the sending server back: what is sent waits on the peer's
pace instead of piling up in memory, and the server goes on serving when the destination goes away."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench import big_file
from bench.rss import status_kb
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove, Verification

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.dicomnet import pdu
from tests.support.server import running_server

OBJECT_MIB = 192  # far beyond what the sockets' buffers take in between the two processes
GROWTH_LIMIT_MIB = 48


class StalledDestination:
    """A storage SCP that accepts the association, then never reads again until it is closed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._connection: socket.socket | None = None

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        self._connection = connection
        head = _read_exactly(connection, 6)
        pdu_type, length = struct.unpack(">BxI", head)
        request = pdu.decode(pdu_type, _read_exactly(connection, length))
        assert isinstance(request, pdu.AssociateRQ)
        contexts = tuple(
            pdu.PresentationContextAC(c.context_id, pdu.CONTEXT_ACCEPTANCE, c.transfer_syntaxes[0])
            for c in request.contexts
        )
        user = pdu.UserInformation(max_pdu_length=16384, implementation_class_uid="1.2.826.0.1.3680043.10.1")
        accept = pdu.AssociateAC(
            request.called_ae, request.calling_ae, request.application_context, contexts, user
        )
        connection.sendall(pdu.encode(accept))
        self.accepted.set()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self.listener.close()


def _read_exactly(connection: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = connection.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


@pytest.fixture
def destination() -> Iterator[StalledDestination]:
    stalled = StalledDestination()
    try:
        yield stalled
    finally:
        stalled.close()


def test_a_destination_that_stops_reading_does_not_fill_the_memory(
    tmp_path: Path, destination: StalledDestination
) -> None:
    data = tmp_path / "data"
    source = tmp_path / "big.dcm"
    big_file.write(source, big_file.frames_for(OBJECT_MIB))
    archive = build_archive(load_settings(data_dir=data))
    study = str(archive.ingest.ingest_file(source).study_instance_uid)
    source.unlink()
    archive.manage.add_remote_ae("STALLED", "127.0.0.1", destination.port)
    archive.close()
    with running_server(data, aes=["PYNETDICOM"]) as server:
        pid = server.process.pid
        before = status_kb(pid, "VmRSS")
        finals: list[Dataset] = []

        def move() -> None:
            ae = AE(ae_title="PYNETDICOM")
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
            assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
            identifier = Dataset()
            identifier.QueryRetrieveLevel = "STUDY"
            identifier.StudyInstanceUID = study
            for status, _ in assoc.send_c_move(
                identifier, "STALLED", StudyRootQueryRetrieveInformationModelMove
            ):
                finals.append(status)
            assoc.release()

        mover = threading.Thread(target=move, daemon=True)
        mover.start()
        assert destination.accepted.wait(30)
        grown = 0
        deadline = time.monotonic() + 4  # the object is read from disk in well under this
        while time.monotonic() < deadline:
            grown = max(grown, status_kb(pid, "VmRSS") - before)
            time.sleep(0.05)
        assert grown < GROWTH_LIMIT_MIB * 1024, f"the server grew by {grown // 1024} MiB"

        destination.close()  # the sub-operation fails; the move ends and reports it
        mover.join(60)
        assert not mover.is_alive() and finals
        assert finals[-1].Status != 0x0000 and finals[-1].NumberOfFailedSuboperations == 1

        echo = AE(ae_title="PYNETDICOM")
        echo.add_requested_context(Verification)
        assoc = echo.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
        assert assoc.is_established and assoc.send_c_echo().Status == 0
        assoc.release()
