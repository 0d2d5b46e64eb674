"""``lightbox import`` as a real process: the summary it prints, its exit codes, and what it leaves stored."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom.data

from lightbox.app import build_archive
from lightbox.config import load_settings

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"
SAMPLES = ("CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "image_dfl.dcm", "SC_rgb_jpeg_dcmtk.dcm")
_COUNT = re.compile(r"^(stored|already present|replaced|kept existing|rejected) +(\d+)$", re.MULTILINE)


def _import(data: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lightbox.cli", "import", "--data-dir", str(data), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LIGHTBOX_LOG_LEVEL": "ERROR"},
    )


def _counts(stdout: str) -> dict[str, int]:
    return {name: int(n) for name, n in _COUNT.findall(stdout)}


def test_import_prints_the_summary_and_exits_by_outcome(tmp_path: Path) -> None:
    data, source = tmp_path / "data", tmp_path / "in" / "nested"
    source.mkdir(parents=True)
    for name in SAMPLES:
        shutil.copyfile(PYDICOM_FILES / name, source / name)
    readme = source.parent / "README.TXT"
    readme.write_text("Open the viewer on this disc.\n")

    first = _import(data, source.parent, "--quiet")
    assert first.returncode == 1, first.stderr
    assert _counts(first.stdout) == {
        "stored": 5,
        "already present": 0,
        "replaced": 0,
        "kept existing": 0,
        "rejected": 1,
    }
    assert "6 files, " in first.stdout
    assert f"rejected files:\n  {readme}: not a DICOM Part 10 object" in first.stdout
    assert "Traceback" not in first.stderr

    again = _import(data, source, "--quiet", "--workers", "1")
    assert again.returncode == 0, again.stderr
    assert _counts(again.stdout) == {
        "stored": 0,
        "already present": 5,
        "replaced": 0,
        "kept existing": 0,
        "rejected": 0,
    }
    assert "rejected files:" not in again.stdout

    archive = build_archive(load_settings(data_dir=data))
    try:
        assert archive.index.statistics().instances == 5
        for name in SAMPLES:
            uid = str(pydicom.dcmread(source / name, stop_before_pixels=True).SOPInstanceUID)
            stored = b"".join(archive.retrieve.chunks(archive.retrieve.instance(uid)))
            assert hashlib.sha256(stored).digest() == hashlib.sha256((source / name).read_bytes()).digest()
    finally:
        archive.close()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = _import(tmp_path / "data", tmp_path / "nowhere")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    result = _import(tmp_path / "data", PYDICOM_FILES / "CT_small.dcm", "--workers", "-1")
    assert result.returncode == 2
    assert "Invalid value for --workers: must be at least 1" in result.stderr
    assert not (tmp_path / "data").exists()  # refused before the archive was opened


def test_ctrl_c_stops_with_a_summary_and_exit_130(tmp_path: Path) -> None:
    data, source = tmp_path / "data", tmp_path / "in"
    source.mkdir()
    original = (PYDICOM_FILES / "CT_small.dcm").read_bytes()
    for number in range(3000):  # same object many times: each after the first is "already present"
        (source / f"{number:04d}.dcm").write_bytes(original)
    process = subprocess.Popen(
        [sys.executable, "-m", "lightbox.cli", "import", "--data-dir", str(data), str(source), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LIGHTBOX_LOG_LEVEL": "ERROR"},
    )
    objects = data / "objects"
    deadline = time.monotonic() + 60
    while not any(p.is_file() for p in objects.rglob("*") if ".tmp" not in p.parts):
        assert process.poll() is None and time.monotonic() < deadline, "the import never stored anything"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    match = re.search(r"^interrupted: (\d+) files not imported$", stdout, re.MULTILINE)
    assert match is not None, stdout
    counts = _counts(stdout)
    assert counts["stored"] == 1 and counts["rejected"] == 0
    assert 0 < int(match.group(1)) < 3000
    assert counts["already present"] + int(match.group(1)) == 3000 - 1
    assert "Traceback" not in stderr
