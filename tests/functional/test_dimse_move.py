"""``lightbox serve`` as a C-MOVE SCP (PS3.4 C.4.2), with dcmtk's storescp as the registered destination."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dcmtk import require, retrieve_study, storescp
from tests.support.dicom import data_set_bytes, part10
from tests.support.server import RunningServer, free_port, running_server

STUDY = generate_uid()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict[str, bytes], Path]]:
    base = tmp_path_factory.mktemp("move")
    received = base / "received"
    require("storescp")
    with storescp(received, ae_title="DEST") as dest_port:
        data = base / "data"
        archive = build_archive(load_settings(data_dir=data))
        objects = {}
        for i in range(4):
            blob = part10(StudyInstanceUID=STUDY, InstanceNumber=i)
            objects[archive.ingest.ingest([blob], "t").sop_instance_uid] = blob
        archive.manage.add_remote_ae("DEST", "127.0.0.1", dest_port)
        archive.close()
        with running_server(data, aes=["PYNETDICOM", "MOVESCU"]) as server:
            yield server, objects, received


def _move(server: RunningServer, destination: str) -> Dataset:
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = STUDY
    final = Dataset()
    for status, _ in assoc.send_c_move(ds, destination, StudyRootQueryRetrieveInformationModelMove):
        final = status
    assoc.release()
    return final


def test_move_to_a_registered_destination(setup: tuple[RunningServer, dict[str, bytes], Path]) -> None:
    server, objects, received = setup
    final = _move(server, "DEST")
    assert final.Status == 0 and final.NumberOfCompletedSuboperations == len(objects)
    files = list(received.iterdir())
    assert {data_set_bytes(f.read_bytes()) for f in files} == {data_set_bytes(b) for b in objects.values()}


def test_unknown_destination_is_refused(setup: tuple[RunningServer, dict[str, bytes], Path]) -> None:
    server, _, _ = setup
    assert _move(server, "NOBODY").Status == 0xA801


def test_movescu(setup: tuple[RunningServer, dict[str, bytes], Path]) -> None:
    server, objects, received = setup
    for f in received.iterdir():
        f.unlink()
    result = retrieve_study("movescu", server.dicom_port, STUDY, "-aem", "DEST")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list(received.iterdir())) == len(objects)


def test_move_to_pynetdicom_registered_while_serving(
    setup: tuple[RunningServer, dict[str, bytes], Path],
) -> None:
    from pynetdicom import AllStoragePresentationContexts, evt

    from tests.support.server import lightbox_command

    server, objects, _ = setup
    received: dict[str, bytes] = {}

    def on_store(event: evt.Event) -> int:
        received[str(event.request.AffectedSOPInstanceUID)] = event.request.DataSet.getvalue()
        return 0x0000

    port = free_port()
    scp = AE(ae_title="PYDEST")
    scp.supported_contexts = AllStoragePresentationContexts
    listener = scp.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        added = subprocess.run(
            lightbox_command(
                "ae",
                "add",
                "PYDEST",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(server.data_dir),
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        final = _move(server, "PYDEST")
    finally:
        listener.shutdown()
    assert final.Status == 0
    assert received == {uid: data_set_bytes(blob) for uid, blob in objects.items()}
