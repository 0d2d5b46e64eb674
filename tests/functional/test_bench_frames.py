"""The benchmark's frame-request part against ``lightbox serve``: every instance's frame asked for in each
pass, the server's CPU counted, and the report's lines; a series that cannot be listed stops the part."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from bench import dicomweb_frames
from bench.report_dicomweb import dicomweb_lines
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dicom import part10
from tests.support.server import running_server


def test_frame_requests_are_timed_and_reported(tmp_path: Path) -> None:
    data = tmp_path / "data"
    study, series = generate_uid(), generate_uid()
    archive = build_archive(load_settings(data_dir=data))
    for number in (1, 2, 3):
        archive.ingest.ingest(
            [part10(StudyInstanceUID=study, SeriesInstanceUID=series, InstanceNumber=number)], "t"
        )
    archive.close()
    with running_server(data) as server:
        frames = dicomweb_frames.run(server.base_url, server.headers, (study, series), server.process.pid)
        assert frames["instances"] == 3
        assert frames["requests"] == 3 * (dicomweb_frames.PASSES - 1)
        assert 0 < frames["median_ms"] <= frames["p95_ms"] and frames["requests_per_s"] > 0
        assert frames["server_cpu_ms"] >= 0
        with pytest.raises(RuntimeError, match="has no instances"):
            dicomweb_frames.run(server.base_url, server.headers, (study, generate_uid()), server.process.pid)
        refused = {"Authorization": "Bearer lbx_not_a_token"}
        with pytest.raises(httpx.HTTPStatusError):
            dicomweb_frames.run(server.base_url, refused, (study, series), server.process.pid)
    lines = dicomweb_lines({"frames": frames}, quick=False)
    assert lines[0].startswith("DICOMweb WADO-RS frames, one request at a time")
    assert f"server CPU {frames['server_cpu_ms']:.2f} ms a request" in lines[1]
    failed = dicomweb_lines({"frames": {"error": "RuntimeError: frame request answered 500"}}, quick=False)
    assert failed[0] == "DICOMweb WADO-RS frames: FAILED (RuntimeError: frame request answered 500)"
