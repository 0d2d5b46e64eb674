"""Hostile UIDs and query parameters against ``lightbox serve``, authenticated as an admin: path traversal
and injection attempts get 400 (or, where the value is data, no match) and change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dicom import part10
from tests.support.server import RunningServer, running_server

STUDY = "1.2.826.0.1.3680043.8.498.1"

TRAVERSAL = ["..", "../../etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "1.2.3/../../4", "..%5c..%5cwindows"]
INJECTION = ["1' OR '1'='1", '1"; DROP TABLE instances;--', "1.2.3;SELECT 1", "1.2.3%00", "1" * 65, "1.2.03"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("hostile") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.ingest.ingest([part10(StudyInstanceUID=STUDY, PatientID="PID-1")], "t")
    archive.close()
    with running_server(data) as running:
        yield running


def _files(data: Path) -> set[Path]:
    return {p for p in data.rglob("*") if p.is_file() and p.suffix not in (".db-wal", ".db-shm")}


@pytest.mark.parametrize("uid", [*TRAVERSAL, *INJECTION])
def test_hostile_uids_are_400_and_change_nothing(server: RunningServer, uid: str) -> None:
    before = _files(server.data_dir)
    with server.client(timeout=30) as http:
        for path in (
            f"/dicom-web/studies/{uid}/metadata",
            f"/dicom-web/studies/{uid}/series/{uid}/instances/{uid}",
            f"/api/studies/{uid}",
        ):
            answer = http.get(path)
            assert answer.status_code in (400, 404), (path, answer.status_code)
            assert answer.headers["content-type"] == "application/problem+json"
        deleted = http.delete(f"/api/studies/{uid}")
        assert deleted.status_code in (400, 404)
        wado = http.get(
            "/wado", params={"requestType": "WADO", "studyUID": uid, "seriesUID": uid, "objectUID": uid}
        )
        assert wado.status_code == 400
        assert http.get("/api/statistics").json()["instances"] == 1
    assert _files(server.data_dir) == before


@pytest.mark.parametrize("value", [*INJECTION, "*' OR 1=1 --", "%", "_", "\\", "${jndi:ldap://x}"])
def test_hostile_query_values_are_data(server: RunningServer, value: str) -> None:
    """Matching values are values: never SQL, never a pattern beyond DICOM's own * and ?."""
    with server.client(timeout=30) as http:
        for params in ({"PatientID": value}, {"PatientName": value}, {"AccessionNumber": value}):
            answer = http.get("/dicom-web/studies", params=params)
            assert answer.status_code in (200, 204, 400), answer.text
            if answer.status_code == 200:
                assert all(m["00100020"]["Value"] == ["PID-1"] for m in answer.json())  # only real matches
        listed = http.get("/api/studies", params={"patient_id": value})
        assert listed.status_code in (200, 400)
        if listed.status_code == 200:
            assert listed.json()["items"] == []
        assert http.get("/api/statistics").json()["instances"] == 1


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/dicom-web/studies", {"limit": "-1"}),
        ("/dicom-web/studies", {"offset": "1e9999"}),
        ("/dicom-web/studies", {"includefield": "../../etc"}),
        ("/dicom-web/studies", {"00100010": "x", "fuzzymatching": "maybe"}),
        ("/api/studies", {"limit": "100000000"}),
        ("/api/studies", {"cursor": "'; DROP TABLE studies;--"}),
    ],
)
def test_hostile_parameters_are_400(server: RunningServer, path: str, params: dict[str, str]) -> None:
    with server.client(timeout=30) as http:
        answer = http.get(path, params=params)
        assert answer.status_code == 400, (path, params, answer.status_code)
        assert answer.json()["detail"]
