"""CORS for browser clients on other origins, and gzip for JSON only (never for DICOM streams)."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dicom import part10
from tests.support.server import running_server

VIEWER = "https://viewer.example.org"


def test_cors_and_gzip(tmp_path: Path) -> None:
    data = tmp_path / "data"
    study = generate_uid()
    archive = build_archive(load_settings(data_dir=data))
    for number in range(20):  # enough metadata to be worth compressing
        archive.ingest.ingest([part10(StudyInstanceUID=study, InstanceNumber=number)], "t")
    archive.close()
    env = {"LIGHTBOX_DICOMWEB_CORS_ORIGINS": f'["{VIEWER}"]'}
    with running_server(data, env=env) as server:
        base = f"{server.base_url}/dicom-web"
        preflight = httpx.options(
            f"{base}/studies",
            headers={"Origin": VIEWER, "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == VIEWER
        other = httpx.get(
            f"{base}/studies", headers={**server.headers, "Origin": "https://elsewhere.example.org"}
        )
        assert "access-control-allow-origin" not in other.headers
        metadata = httpx.get(
            f"{base}/studies/{study}/metadata",
            headers={**server.headers, "Origin": VIEWER, "Accept-Encoding": "gzip"},
        )
        assert metadata.headers["content-encoding"] == "gzip"
        assert metadata.headers["access-control-allow-origin"] == VIEWER
        assert "ETag" in metadata.headers["access-control-expose-headers"]
        assert len(metadata.json()) == 20  # httpx inflates it
        objects = httpx.get(
            f"{base}/studies/{study}",
            headers={
                **server.headers,
                "Accept": 'multipart/related; type="application/dicom"',
                "Accept-Encoding": "gzip",
            },
        )
        assert objects.status_code == 200 and "content-encoding" not in objects.headers
        # A refusal carries the CORS headers too, so that the viewer can read why
        refused = httpx.get(f"{base}/studies", headers={"Origin": VIEWER})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == VIEWER
    with running_server(tmp_path / "plain") as server:  # no origins configured: no CORS headers at all
        answer = httpx.get(f"{server.base_url}/api/health", headers={"Origin": VIEWER})
        assert "access-control-allow-origin" not in answer.headers
