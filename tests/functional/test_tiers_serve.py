"""``lightbox serve`` with a hot and a cold tier: a rule moves what was stored to the cold tier in the
background, retrieval keeps answering byte for byte, and ``lightbox storage status`` shows the tiers."""

from __future__ import annotations

import io
import json
import subprocess
import time
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from tests.support.dicom import make_dataset, to_part10
from tests.support.multipart import related_parts
from tests.support.server import lightbox_command, running_server, server_environment


def _status(data: Path, env: dict[str, str]) -> dict[str, dict[str, object]]:
    done = subprocess.run(
        lightbox_command("storage", "status", "--data-dir", str(data), "--json"),
        capture_output=True,
        text=True,
        timeout=60,
        env=server_environment(env),
    )
    assert done.returncode == 0, done.stderr
    tiers: dict[str, dict[str, object]] = json.loads(done.stdout)["tiers"]
    return tiers


def test_studies_move_to_the_cold_tier_and_stay_retrievable(tmp_path: Path) -> None:
    data, cold = tmp_path / "data", tmp_path / "cold"
    env = {
        "LIGHTBOX_STORAGE_TIERS": json.dumps({"cold": f"file://{cold}"}),
        "LIGHTBOX_STORAGE_LIFECYCLE": json.dumps([{"to": "cold", "older_than_days": 0}]),
        "LIGHTBOX_STORAGE_LIFECYCLE_INTERVAL_MINUTES": "0.01",
    }
    study = generate_uid()
    sent = [to_part10(make_dataset(StudyInstanceUID=study, InstanceNumber=n)) for n in range(3)]
    with running_server(data, env=env) as server:
        result = server.dicomweb().store_instances([pydicom.dcmread(io.BytesIO(b)) for b in sent])
        assert "FailedSOPSequence" not in result
        deadline = time.monotonic() + 60
        while (tiers := _status(data, env))["cold"]["instances"] != 3:
            assert time.monotonic() < deadline, tiers
            time.sleep(0.3)
        assert tiers["hot"]["instances"] == 0 and tiers["cold"]["url"] == f"file://{cold}"
        answer = server.client().get(
            f"/dicom-web/studies/{study}",
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
        assert answer.status_code == 200
        received = sorted(body for _, body in related_parts(answer))
        assert received == sorted(pydicom_bytes(b) for b in sent)
    assert len(list(cold.rglob("*.dcm"))) == 3
    again = subprocess.run(
        lightbox_command("storage", "apply", "--data-dir", str(data)),
        capture_output=True,
        text=True,
        timeout=60,
        env=server_environment(env),
    )
    assert again.returncode == 0 and "moved: none; 0 failed" in again.stdout  # all in place already


def pydicom_bytes(data: bytes) -> bytes:
    """What dicomweb-client sent for these bytes (it writes each data set again with dcmwrite)."""
    out = io.BytesIO()
    pydicom.dcmwrite(out, pydicom.dcmread(io.BytesIO(data)))
    return out.getvalue()
