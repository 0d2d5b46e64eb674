"""``lightbox compress`` as a real process: every uncompressed object of the archive is re-encoded, what
cannot be is named as kept, and the archive's objects decode to the same pixels afterwards."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pydicom

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.contract.test_compression import ct_image
from tests.support.dicom import make_dataset, to_part10
from tests.support.server import lightbox_command, server_environment


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lightbox_command(*args), capture_output=True, text=True, timeout=120, env=server_environment()
    )


def test_compress_the_whole_archive(tmp_path: Path) -> None:
    data = tmp_path / "data"
    images = [ct_image(rows=128, InstanceNumber=n) for n in range(4)]
    archive = build_archive(load_settings(data_dir=data))
    try:
        uids = [archive.ingest.ingest([image], "t").sop_instance_uid for image in images]
        archive.ingest.ingest([to_part10(make_dataset(PixelData=None, Rows=None, Columns=None))], "t")
    finally:
        archive.close()

    refused = _run("compress", "--data-dir", str(data))  # the tests' servers and commands: compression off
    assert refused.returncode != 0 and "name a --codec" in refused.stderr

    done = _run("compress", "--data-dir", str(data), "--codec", "htj2k")
    assert done.returncode == 0, done.stderr
    assert "compressed 4 objects with htj2k" in done.stdout and "1 kept as they are" in done.stdout

    archive = build_archive(load_settings(data_dir=data))
    try:
        for uid, image in zip(uids, images, strict=True):
            location = archive.retrieve.instance(uid)
            assert location.transfer_syntax_uid == pydicom.uid.HTJ2KLossless
            with archive.retrieve.open(location) as f:
                stored = pydicom.dcmread(f)
            assert np.array_equal(stored.pixel_array, pydicom.dcmread(io.BytesIO(image)).pixel_array)
    finally:
        archive.close()
    again = _run("compress", "--data-dir", str(data), "--codec", "htj2k")
    assert "compressed 0 objects" in again.stdout and "0 kept" in again.stdout  # nothing is tried twice
