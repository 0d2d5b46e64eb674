"""What each calling AE may ask of ``lightbox serve``: a registered AE what it was registered with (``lightbox
ae add --allow``), an unknown one echo and store by default (``network.unknown_ae_permissions``). A context
the AE may not use is refused as a user rejection (PS3.8 9.3.3.2), with pynetdicom and dcmtk as peers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role
from pynetdicom.sop_class import (
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dcmtk import ENV, require
from tests.support.dicom import part10
from tests.support.server import lightbox_command, running_server

FIND = StudyRootQueryRetrieveInformationModelFind
GET = StudyRootQueryRetrieveInformationModelGet
MOVE = PatientRootQueryRetrieveInformationModelMove
CONTEXTS = [Verification, CTImageStorage, FIND, GET, MOVE]
USER_REJECTION = 0x01
ADD = ("ae", "add", "--port", "104")


def _register(data: Path, title: str, allow: str) -> str:
    done = subprocess.run(
        lightbox_command(*ADD, title, "--host", "127.0.0.1", "--allow", allow, "--data-dir", str(data)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _negotiate(port: int, calling_ae: str) -> tuple[set[str], dict[str, int]]:
    """The contexts accepted for ``calling_ae``, and the results of the rejected ones, by abstract syntax."""
    ae = AE(ae_title=calling_ae)
    for sop_class in CONTEXTS:
        ae.add_requested_context(sop_class)
    role = build_role(CTImageStorage, scp_role=True)  # as a C-GET SCU does
    assoc = ae.associate("127.0.0.1", port, ae_title="LIGHTBOX", ext_neg=[role])
    assert assoc.is_established
    accepted = {str(c.abstract_syntax) for c in assoc.accepted_contexts}
    rejected = {str(c.abstract_syntax): int(c.result) for c in assoc.rejected_contexts}
    assoc.release()
    return accepted, rejected


def _find(port: int, calling_ae: str) -> list[int]:
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(FIND)
    assoc = ae.associate("127.0.0.1", port, ae_title="LIGHTBOX")
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    statuses = [int(status.Status) for status, _ in assoc.send_c_find(query, FIND) if status]
    assoc.release()
    return statuses


def test_each_ae_gets_what_it_may(tmp_path: Path) -> None:
    data = tmp_path / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.ingest.ingest([part10()], "t")
    archive.close()
    assert "allowed echo,find" in _register(data, "READER", "echo,find")
    _register(data, "WORKSTATION", "all")
    _register(data, "GETTER", "get")
    listed = subprocess.run(
        lightbox_command("ae", "list", "--data-dir", str(data)), capture_output=True, text=True, check=True
    ).stdout
    assert "READER       127.0.0.1:104  echo,find" in listed
    assert "WORKSTATION  127.0.0.1:104  echo,store,find,get,move" in listed
    with running_server(data) as server:
        port = server.dicom_port
        everything = {str(c) for c in CONTEXTS}

        accepted, rejected = _negotiate(port, "WORKSTATION")
        assert accepted == everything and rejected == {}

        accepted, rejected = _negotiate(port, "STRANGER")  # unknown: echo and store only
        assert accepted == {str(Verification), str(CTImageStorage)}
        assert rejected == {str(FIND): USER_REJECTION, str(GET): USER_REJECTION, str(MOVE): USER_REJECTION}

        accepted, rejected = _negotiate(port, "READER")
        assert accepted == {str(Verification), str(FIND)}
        assert set(rejected) == {str(CTImageStorage), str(GET), str(MOVE)}

        # get alone: the storage context in which it receives its sub-operations comes with it
        accepted, _ = _negotiate(port, "GETTER")
        assert accepted == {str(GET), str(CTImageStorage)}

        assert _find(port, "READER") == [0xFF00, 0x0000]

        query = ["-S", "-aet", "STRANGER", "-aec", "LIGHTBOX", "-k", "QueryRetrieveLevel=STUDY"]
        findscu = subprocess.run(
            [require("findscu"), *query, "-k", "StudyInstanceUID", "127.0.0.1", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=ENV,
        )
        assert findscu.returncode != 0
        assert "No Acceptable Presentation Contexts" in findscu.stdout + findscu.stderr


def test_unknown_aes_refused_when_they_may_do_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _register(data, "KNOWN", "echo")
    with running_server(data, env={"LIGHTBOX_NETWORK_UNKNOWN_AE_PERMISSIONS": "[]"}) as server:
        echo = [require("echoscu"), "-aec", "LIGHTBOX", "127.0.0.1", str(server.dicom_port)]
        stranger = subprocess.run([*echo, "-aet", "STRANGER"], capture_output=True, text=True, env=ENV)
        assert stranger.returncode != 0
        assert "Calling AE Title Not Recognized" in stranger.stdout + stranger.stderr
        assert subprocess.run([*echo, "-aet", "KNOWN"], capture_output=True, env=ENV).returncode == 0


def test_bad_permissions_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = subprocess.run(
        lightbox_command(*ADD, "X", "--host", "h", "--allow", "echo,delete", "--data-dir", str(data)),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "each one of echo, store, find, get, move" in done.stderr
