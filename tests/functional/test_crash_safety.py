"""``lightbox serve`` killed with SIGKILL in the middle of ingest, of lossless compression and of a move
between storage tiers: after a restart nothing acknowledged is lost, no object is missing, damaged or
orphaned, and the interrupted work resumes and finishes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from lightbox.app import Archive, build_archive
from lightbox.config import load_settings
from lightbox.formats import lossless
from tests.contract.test_compression import ct_image
from tests.support.integrity import check_archive
from tests.support.server import RunningServer, lightbox_command, running_server, server_environment


def _kill(server: RunningServer) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)


def _until(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _store_all(server: RunningServer, objects: list[bytes]) -> None:
    ae = AE(ae_title="CRASHTEST")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
    assert assoc.is_established
    for data in objects:
        assert assoc.send_c_store(pydicom.dcmread(io.BytesIO(data))).Status == 0x0000
    assoc.release()


def test_a_kill_during_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acknowledged: list[str] = []
    with running_server(data) as server:
        stop = threading.Event()

        def send() -> None:
            ae = AE(ae_title="CRASHTEST")
            ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
            assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
            while assoc.is_established and not stop.is_set():
                ds = pydicom.dcmread(io.BytesIO(ct_image(rows=128, SOPInstanceUID=generate_uid())))
                try:
                    status = assoc.send_c_store(ds)
                except RuntimeError:  # the server went away between the check and the request
                    return
                if getattr(status, "Status", None) == 0x0000:
                    acknowledged.append(str(ds.SOPInstanceUID))

        sender = threading.Thread(target=send)
        sender.start()
        _until(lambda: len(acknowledged) >= 30)
        _kill(server)  # mid-stream: an object is nearly always on its way
        stop.set()
        sender.join(30)
    with running_server(data):  # the restart recovers what the crash left
        pass
    report = check_archive(data)
    assert set(acknowledged) <= set(report.instances)
    assert report.clean, report
    _verify_is_clean(data)


def test_a_kill_during_compression_resumes_and_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"LIGHTBOX_STORAGE_COMPRESSION": "jpeg-ls"}
    study = generate_uid()
    originals = {}
    for n in range(60):
        sop = generate_uid()
        originals[sop] = ct_image(rows=256, StudyInstanceUID=study, SOPInstanceUID=sop, InstanceNumber=n)
    with running_server(data, env={"LIGHTBOX_STORAGE_COMPRESSION": "none"}) as server:
        _store_all(server, list(originals.values()))
    with running_server(data, env=env) as server:
        _until(lambda: 0 < _compressed(data) < len(originals), seconds=120)
        _kill(server)
    assert _compressed(data) < len(originals)
    with running_server(data, env=env):
        _until(lambda: _compressed(data) == len(originals), seconds=120)  # the job resumes
    report = check_archive(data)
    assert set(report.instances) == set(originals) and report.clean, report
    _verify_is_clean(data)
    archive_pixels = _pixels_by_uid(data, originals)
    for sop, original in originals.items():
        assert np.array_equal(archive_pixels[sop], pydicom.dcmread(io.BytesIO(original)).pixel_array)


def test_a_kill_during_a_tier_move_resumes_and_loses_nothing(tmp_path: Path) -> None:
    data, cold = tmp_path / "data", tmp_path / "cold"
    env = {
        "LIGHTBOX_STORAGE_TIERS": json.dumps({"cold": f"file://{cold}"}),
        "LIGHTBOX_STORAGE_LIFECYCLE": json.dumps([{"to": "cold", "older_than_days": 0}]),
        "LIGHTBOX_STORAGE_LIFECYCLE_INTERVAL_MINUTES": "0.01",
    }
    objects = [ct_image(rows=512, StudyInstanceUID=generate_uid()) for _ in range(120)]
    with running_server(data, env={"LIGHTBOX_STORAGE_TIERS": env["LIGHTBOX_STORAGE_TIERS"]}) as server:
        _store_all(server, objects)
    with running_server(data, env=env) as server:
        _until(lambda: 0 < _in_cold(data, env) < len(objects), seconds=120)
        _kill(server)
    assert _in_cold(data, env) < len(objects)
    with running_server(data, env=env):
        _until(lambda: _in_cold(data, env) == len(objects), seconds=120)  # the moves resume
    report = check_archive(data, env)
    assert len(report.instances) == len(objects) and report.clean, report
    _verify_is_clean(data, env)


def _verify_is_clean(data: Path, env: dict[str, str] | None = None) -> None:
    """``lightbox verify``, the administrators' own check, finds nothing either."""
    done = subprocess.run(
        lightbox_command("verify", "--data-dir", str(data)),
        capture_output=True,
        text=True,
        timeout=300,
        env=server_environment(env),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _compressed(data: Path) -> int:
    """Instances whose objects are compressed by now (every test object can be)."""
    with _opened(data) as archive:
        uncompressed = archive.index.compression_candidates(lossless.UNCOMPRESSED, 0, 10_000)
        total = sum(n for n, _ in archive.index.tier_usage().values())
        return total - len(uncompressed)


def _in_cold(data: Path, env: dict[str, str]) -> int:
    with _opened(data, env) as archive:
        return archive.lifecycle.usage()["cold"][0]


@contextlib.contextmanager
def _opened(data: Path, env: dict[str, str] | None = None) -> Iterator[Archive]:
    """The archive a running server serves, opened beside it to look (SQLite allows readers meanwhile)."""
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        archive = build_archive(load_settings(data_dir=data), migrate=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield archive
    finally:
        archive.close()


def _pixels_by_uid(data: Path, uids: Iterable[str]) -> dict[str, np.ndarray]:
    pixels = {}
    with _opened(data) as archive:
        for sop in uids:
            with archive.retrieve.open(archive.retrieve.instance(sop)) as f:
                pixels[sop] = pydicom.dcmread(f).pixel_array
    return pixels
