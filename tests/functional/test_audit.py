"""The audit trail of a running ``lightbox serve``: logins, stores, queries, retrievals, views and deletes
made by real clients over DICOMweb, the REST API and DIMSE are recorded with the user or AE, the client's
address, the patient and the study; administrators read them with filters (GET /api/audit, ``lightbox
audit list``); ``lightbox audit verify`` finds an edited record."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelFind

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from tests.support.dcmtk import retrieve_study
from tests.support.dicom import part10
from tests.support.server import TEST_USER, RunningServer, lightbox_command, running_server

PASSWORD = "correct horse battery staple"
WEB_STUDY, DIMSE_STUDY = generate_uid(), generate_uid()
FIND = StudyRootQueryRetrieveInformationModelFind


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    """The server (audit records written at most 0.2 s apart) and a token of rita, a radiologist."""
    data = tmp_path_factory.mktemp("audit") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.accounts.add_user("rita", Role.RADIOLOGIST, PASSWORD)
    token, _ = archive.accounts.create_token("rita", "workstation")
    archive.close()
    env = {"LIGHTBOX_AUDIT_FLUSH_SECONDS": "0.2"}
    with running_server(data, env=env, aes=["FINDSCU", "GETSCU"]) as running:
        yield running, token


def _audit(server: RunningServer, **params: Any) -> list[dict[str, Any]]:
    answer = httpx.get(server.base_url + "/api/audit", params=params, headers=server.headers, timeout=30)
    assert answer.status_code == 200, answer.text
    records: list[dict[str, Any]] = answer.json()["records"]
    return records


def _stow(server: RunningServer, token: str, blob: bytes) -> None:
    boundary = "audit-test"
    body = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + blob
    body += f"\r\n--{boundary}--\r\n".encode()
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json",
    }
    answer = httpx.post(server.base_url + "/dicom-web/studies", content=body, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text


def test_each_kind_of_act_is_recorded_with_who_where_and_which_patient(
    server: tuple[RunningServer, str],
) -> None:
    running, token = server
    rita = {"Authorization": f"Bearer {token}"}
    base = running.base_url
    started = datetime.now(UTC) - timedelta(seconds=1)

    # logins: one refused, one accepted
    assert httpx.post(base + "/api/login", json={"username": "rita", "password": "wrong"}).status_code == 401
    assert httpx.post(base + "/api/login", json={"username": "rita", "password": PASSWORD}).status_code == 200
    # a bad bearer token
    assert (
        httpx.get(base + "/dicom-web/studies", headers={"Authorization": "Bearer lbx_nope"}).status_code
        == 401
    )

    # DICOMweb as rita: store two objects, search, retrieve, view the metadata
    for n in (1, 2):
        _stow(running, token, part10(StudyInstanceUID=WEB_STUDY, PatientID="WEB-1", InstanceNumber=n))
    found = httpx.get(base + "/dicom-web/studies", params={"PatientID": "WEB-1"}, headers=rita)
    assert found.status_code == 200 and len(found.json()) == 1
    objects = httpx.get(
        base + f"/dicom-web/studies/{WEB_STUDY}",
        headers={**rita, "Accept": "multipart/related; type=application/dicom"},
    )
    assert objects.status_code == 200
    assert httpx.get(base + f"/dicom-web/studies/{WEB_STUDY}/metadata", headers=rita).status_code == 200

    # DIMSE: a modality stores (an unknown AE may), a registered workstation searches
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", running.dicom_port, ae_title="LIGHTBOX")
    ds = dcmread(io.BytesIO(part10(StudyInstanceUID=DIMSE_STUDY, PatientID="DIMSE-1")))
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    finder = AE(ae_title="FINDSCU")
    finder.add_requested_context(FIND)
    assoc = finder.associate("127.0.0.1", running.dicom_port, ae_title="LIGHTBOX")
    query = Dataset()
    query.QueryRetrieveLevel, query.PatientID, query.StudyInstanceUID = "STUDY", "DIMSE-1", ""
    assert [s.Status for s, _ in assoc.send_c_find(query, FIND)][-1] == 0
    assoc.release()

    # getscu retrieves the modality's study into a folder
    with tempfile.TemporaryDirectory() as folder:
        got = retrieve_study("getscu", running.dicom_port, DIMSE_STUDY, "-aet", "GETSCU", "-od", folder)
        assert got.returncode == 0, got.stderr
    # the modality sends the object again with other content: a replacement (the default duplicate policy)
    assoc = ae.associate("127.0.0.1", running.dicom_port, ae_title="LIGHTBOX")
    ds.InstitutionName = "changed"
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    # an administrator adds a user on the command line
    data = str(running.data_dir)
    add = subprocess.run(
        lightbox_command("user", "add", "nina", "--role", "viewer", "--no-password", "--data-dir", data),
        capture_output=True,
        text=True,
    )
    assert add.returncode == 0, add.stderr

    # the REST API: an administrator deletes the web study
    deleted = httpx.delete(base + f"/api/studies/{WEB_STUDY}", headers=running.headers)
    assert deleted.status_code == 200, deleted.text

    records = [r for r in reversed(_audit(running, since=started.isoformat(), limit=1000))]
    seen = {
        (r["action"], r["outcome"], r["protocol"], r["user"] or r["ae_title"], r["patient_id"])
        for r in records
    }
    assert {
        ("login", "failure", "http", "rita", None),
        ("login", "success", "http", "rita", None),
        ("login", "failure", "http", None, None),
        ("store", "success", "stow", "rita", "WEB-1"),
        ("query", "success", "qido", "rita", "WEB-1"),
        ("retrieve", "success", "wado", "rita", "WEB-1"),
        ("view", "success", "wado", "rita", "WEB-1"),
        ("store", "success", "dimse", "MODALITY", "DIMSE-1"),
        ("query", "success", "dimse", "FINDSCU", "DIMSE-1"),
        ("delete", "success", "api", TEST_USER, "WEB-1"),
        ("retrieve", "success", "dimse", "GETSCU", "DIMSE-1"),
        ("modify", "success", "dimse", "MODALITY", "DIMSE-1"),
        ("admin", "success", "cli", None, None),
    } <= seen, records
    stored = [r for r in records if r["action"] == "store" and r["protocol"] == "stow"]
    assert sum(r["instances"] for r in stored) == 2 and {r["study_instance_uid"] for r in stored} == {
        WEB_STUDY
    }
    assert all(r["address"] == "127.0.0.1" for r in records if r["protocol"] != "cli")
    assert (
        "wrong password"
        in next(r for r in records if r["outcome"] == "failure" and r["user"] == "rita")["detail"]
    )

    # filters
    assert {r["patient_id"] for r in _audit(running, patient="DIMSE-1")} == {"DIMSE-1"}
    assert {r["action"] for r in _audit(running, action="login")} == {"login"}
    assert {r["user"] for r in _audit(running, user="rita")} == {"rita"}
    assert {r["ae_title"] for r in _audit(running, ae="MODALITY")} == {"MODALITY"}
    assert _audit(running, until=started.isoformat(), action="view") == []
    page = _audit(running, limit=2)
    older = _audit(running, limit=2, before=page[-1]["seq"])
    assert [r["seq"] for r in page + older] == sorted((r["seq"] for r in page + older), reverse=True)


def test_only_administrators_read_the_trail(server: tuple[RunningServer, str]) -> None:
    running, token = server
    answer = httpx.get(running.base_url + "/api/audit", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403
    assert httpx.get(running.base_url + "/api/audit").status_code == 401
    bad = httpx.get(running.base_url + "/api/audit", params={"since": "yesterday"}, headers=running.headers)
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    assert (
        httpx.get(running.base_url + "/api/audit", params={"limit": 0}, headers=running.headers).status_code
        == 400
    )


def test_verify_finds_an_edited_record(server: tuple[RunningServer, str]) -> None:
    running, _ = server
    _audit(running)  # what is pending is written before a listing
    data = str(running.data_dir)
    intact = subprocess.run(
        lightbox_command("audit", "verify", "--data-dir", data), capture_output=True, text=True
    )
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.startswith("audit trail intact:")
    listed = subprocess.run(
        lightbox_command("audit", "list", "--data-dir", data, "--action", "store", "--json"),
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0 and '"action":"store"' in listed.stdout

    # someone with the database file hides that the modality's study was stored
    target = next(r for r in _audit(running, ae="MODALITY", action="store"))
    with sqlite3.connect(running.data_dir / "index.db") as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_log SET patient_id = 'NOBODY' WHERE seq = ?", (target["seq"],))
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET patient_id = 'NOBODY' WHERE seq = ?", (target["seq"],))
    broken = subprocess.run(
        lightbox_command("audit", "verify", "--data-dir", data), capture_output=True, text=True
    )
    assert broken.returncode == 1
    assert f"BROKEN at record {target['seq']}" in broken.stderr
