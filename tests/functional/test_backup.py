"""``lightbox backup`` and ``lightbox restore`` as real processes, while ``lightbox serve`` runs: the archive
destroyed and restored answers every query as before and returns every object byte for byte."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelFind

from tests.support.dicom import make_dataset, part10, to_part10
from tests.support.multipart import DICOM_MULTIPART, related_body, related_parts
from tests.support.postgres import create_database
from tests.support.server import RunningServer, lightbox_command, running_server

DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def _run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lightbox_command(*map(str, args)),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LIGHTBOX_LOG_LEVEL": "ERROR", **(env or {})},
    )


def _backup(data: Path, dest: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = _run("backup", "--data-dir", data, dest, "--json", env=env)
    assert result.returncode == 0, result.stderr
    manifest: dict[str, Any] = json.loads(result.stdout)
    return manifest


def _stow(server: RunningServer, files: list[bytes]) -> None:
    with server.client(timeout=60) as http:
        response = http.post(
            "/dicom-web/studies", content=related_body(files), headers={"Content-Type": DICOM_MULTIPART}
        )
    assert response.status_code == 200, response.text


def _study(patient: str, instances: int) -> list[bytes]:
    study, series = generate_uid(), generate_uid()
    return [
        part10(
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            PatientID=patient,
            PatientName=f"{patient}^Test",
            InstanceNumber=n,
            PixelData=bytes([n]) * 32,
        )
        for n in range(1, instances + 1)
    ]


def _sop(data: bytes) -> tuple[str, str, str]:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def _answers(server: RunningServer, studies: set[str]) -> dict[str, Any]:
    """What QIDO-RS and C-FIND say about the archive, with the server's own address taken out."""
    answers: dict[str, Any] = {}
    with server.client(timeout=60) as http:
        for path in ["/dicom-web/studies?includefield=all", "/dicom-web/studies?PatientID=B-*"]:
            response = http.get(path)
            assert response.status_code in (200, 204)  # 204: no match
            answers[path] = response.text or "[]"
        for study in sorted(studies):
            for path in [f"/dicom-web/studies/{study}/series", f"/dicom-web/studies/{study}/instances"]:
                response = http.get(path + "?includefield=all")
                assert response.status_code == 200
                answers[path] = response.text
    answers = {k: json.loads(v.replace(server.base_url, "BASE")) for k, v in answers.items()}
    assert len(answers["/dicom-web/studies?includefield=all"]) == len(studies)
    answers["c-find"] = _c_find(server)
    return answers


def _c_find(server: RunningServer) -> list[tuple[str, str, str]]:
    ae = AE(ae_title="FINDSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    query.PatientID = ""
    query.NumberOfStudyRelatedInstances = ""
    found = []
    for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
        if status.Status == 0xFF00:
            found.append(
                (
                    identifier.StudyInstanceUID,
                    identifier.PatientID,
                    str(identifier.NumberOfStudyRelatedInstances),
                )
            )
    assoc.release()
    assert found
    return sorted(found)


def test_back_up_twice_destroy_restore_and_everything_is_back(tmp_path: Path) -> None:
    original, dest, new = tmp_path / "original", tmp_path / "backup", tmp_path / "new"
    first = _study("A-1", 3) + _study("B-1", 2)
    second = _study("B-2", 2)
    with running_server(original, aes=["FINDSCU"]) as server:
        _stow(server, first)
        one = _backup(original, dest)
        assert one["copied"]["objects"] == 5 and one["already_there"] == 0
        assert one["content"]["instances"] == 5 and one["content"]["studies"] == 2

        _stow(server, second)
        _stow(server, [part10(StudyInstanceUID=_sop(first[0])[0], PatientID="A-1", InstanceNumber=9)])
        two = _backup(original, dest)
        assert two["copied"]["objects"] == 3 and two["already_there"] == 5  # only the new ones
        assert two["content"] == {**two["content"], "instances": 8, "studies": 3, "patients": 3}
        studies = {_sop(f)[0] for f in first + second}
        before = _answers(server, studies)
        token = server.token
        with server.client() as http:
            stored = {
                uid: http.get(f"/dicom-web/studies/{uid}", headers={"Accept": DICOM_ANY}) for uid in studies
            }
        files = {_sop(body)[2]: body for r in stored.values() for _, body in related_parts(r)}
        assert len(files) == 8

    shutil.rmtree(original)  # the archive is lost
    restored = _run("restore", dest, "--data-dir", new, "--json")
    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout)
    assert report["name"] == two["name"] and report["restored"] == report["instances"] == 8

    with running_server(new, account=False) as server:
        server.token = token  # the accounts came back with the archive: the old token works
        assert _answers(server, studies) == before
        with server.client() as http:
            for sop, body in files.items():
                study, series, _ = _sop(body)
                url = f"/dicom-web/studies/{study}/series/{series}/instances/{sop}"
                response = http.get(url, headers={"Accept": DICOM_ANY})
                assert response.status_code == 200
                ((_, retrieved),) = related_parts(response)
                assert retrieved == body
        assert first[0] in files.values() and second[-1] in files.values()

    older = _run("restore", dest, "--data-dir", tmp_path / "older", "--at", one["name"], "--json")
    assert older.returncode == 0, older.stderr
    assert json.loads(older.stdout)["instances"] == 5
    assert sum(1 for p in (tmp_path / "older" / "objects").rglob("*.dcm")) == 5


def _c_store_until(server: RunningServer, stop: threading.Event, stored: list[str]) -> None:
    """C-STORE one new instance after another over one association until ``stop``."""
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
    assert assoc.is_established
    study = generate_uid()
    try:
        while not stop.is_set() or len(stored) < 5:
            ds = make_dataset(StudyInstanceUID=study, PatientID="LIVE", InstanceNumber=len(stored) + 1)
            ds = pydicom.dcmread(io.BytesIO(to_part10(ds)))
            status = assoc.send_c_store(ds)
            assert status.Status == 0x0000
            stored.append(str(ds.SOPInstanceUID))
    finally:
        assoc.release()


def test_backup_while_images_arrive_is_consistent_and_restores(tmp_path: Path) -> None:
    data, dest = tmp_path / "data", tmp_path / "backup"
    with running_server(data) as server:
        _stow(server, _study("BEFORE", 10))
        stop, stored = threading.Event(), []
        storing = threading.Thread(target=_c_store_until, args=(server, stop, stored))
        storing.start()
        try:
            while len(stored) < 3:  # the stores are under way when the backup starts
                threading.Event().wait(0.05)
            started_with = len(stored)
            during = _backup(data, dest)
            in_flight = len(stored)
        finally:
            stop.set()
            storing.join(timeout=60)
        after = _backup(data, dest)

    # Everything the snapshot indexed is in the backup, and stores went on while it ran
    assert during["problems"] == [] and during["objects"]["count"] == during["content"]["instances"]
    assert 10 + started_with <= during["content"]["instances"] <= 10 + in_flight
    assert in_flight > started_with  # images were stored while the backup ran
    total = 10 + len(stored)
    assert after["content"]["instances"] == total
    assert after["already_there"] == during["content"]["instances"]
    assert after["copied"]["objects"] == total - during["content"]["instances"]

    for name, expected in ((during["name"], during["content"]["instances"]), (after["name"], total)):
        target = tmp_path / f"restored-{name}"
        result = _run("restore", dest, "--data-dir", target, "--at", name, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["restored"] == expected
    with running_server(tmp_path / f"restored-{during['name']}", account=False) as server:
        status, health = server.get_json("/api/health")
        assert status == 200 and health["status"] == "ok"
        assert "recovery indexed" not in server.log()  # no object without its row, nor the reverse


def test_restore_refuses_a_non_empty_target_and_reports_a_damaged_object(tmp_path: Path) -> None:
    data, dest, source = tmp_path / "data", tmp_path / "backup", tmp_path / "in"
    source.mkdir()
    files = _study("DAMAGE", 3)
    for i, body in enumerate(files):
        (source / f"{i}.dcm").write_bytes(body)
    imported = _run("import", "--data-dir", data, source, "--quiet")
    assert imported.returncode == 0, imported.stderr
    manifest = _backup(data, dest)

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    refused = _run("restore", dest, "--data-dir", occupied)
    assert refused.returncode == 1 and "is not empty" in refused.stderr
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]

    damaged_sop = _sop(files[1])[2]
    (damaged,) = [p for p in (dest / "objects").rglob("*.dcm") if p.read_bytes() == files[1]]
    body = bytearray(damaged.read_bytes())
    body[-1] ^= 0xFF  # one bit of pixel data rots: same size, another checksum
    damaged.write_bytes(bytes(body))

    new = tmp_path / "new"
    result = _run("restore", dest, "--data-dir", new, "--json")
    assert result.returncode == 1
    assert f"error: {damaged_sop} (" in result.stderr and "damaged in the backup" in result.stderr
    report = json.loads(result.stdout)
    assert report["instances"] == report["restored"] == 2
    assert [p["sop_instance_uid"] for p in report["problems"]] == [damaged_sop]
    with running_server(new, account=False) as server:  # the rest is a working archive
        status, health = server.get_json("/api/health")
        assert status == 200 and health["status"] == "ok"

    index = dest / manifest["index"]["file"]
    index.write_bytes(index.read_bytes()[:-1] + b"\x01")
    refused = _run("restore", dest, "--data-dir", tmp_path / "newer")
    assert refused.returncode == 1 and "is damaged" in refused.stderr
    assert not (tmp_path / "newer").exists()


def test_backup_of_a_postgresql_archive_restores_into_sqlite_or_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    server_url = postgres_url.rsplit("/", 1)[0] + "/postgres"
    source = {"LIGHTBOX_DATABASE_URL": create_database(server_url, "lightbox_backup_source")}
    data, dest = tmp_path / "data", tmp_path / "backup"
    files = _study("PG-1", 3) + _study("B-PG", 2)
    studies = {_sop(f)[0] for f in files}
    with running_server(data, env=source, aes=["FINDSCU"]) as server:
        _stow(server, files)
        manifest = _backup(data, dest, env=source)
        before = _answers(server, studies)
        token = server.token
    assert manifest["index_engine"] == "postgresql" and manifest["content"]["instances"] == 5

    into_sqlite = _run("restore", dest, "--data-dir", tmp_path / "sqlite")
    assert into_sqlite.returncode == 0, into_sqlite.stderr
    target = create_database(server_url, "lightbox_backup_target")
    into_postgresql = _run("restore", dest, "--data-dir", tmp_path / "pg", "--database-url", target)
    assert into_postgresql.returncode == 0, into_postgresql.stderr
    assert not (tmp_path / "pg" / "index.db").exists()
    for restored, env in ((tmp_path / "sqlite", None), (tmp_path / "pg", {"LIGHTBOX_DATABASE_URL": target})):
        with running_server(restored, env=env, account=False) as server:
            server.token = token
            assert _answers(server, studies) == before
            _stow(server, _study("PG-3", 1))  # and it takes new images: the id sequences go on
