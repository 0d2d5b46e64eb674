"""Ingest a 1 GiB multi-frame object from a generator; print the resident-memory growth (fresh process).

Run as ``python -m tests.support.big_object DATA_DIR``; prints ``growth_mb=<float> size=<int>``.
"""

from __future__ import annotations

import io
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dicom import make_dataset, to_part10

FRAMES = 2048
FRAME_BYTES = 512 * 512 * 2  # 2048 frames of 512x512 16-bit: exactly 1 GiB of pixel data


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def chunks() -> Iterator[bytes]:
    ds = make_dataset(Rows=512, Columns=512, NumberOfFrames=FRAMES, PixelData=None)
    header = to_part10(ds, ExplicitVRLittleEndian)
    yield header
    # PixelData (7FE0,0010) OW with a 32-bit length, explicit VR little endian (PS3.5 7.1.2)
    yield struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, FRAMES * FRAME_BYTES)
    frame = io.BytesIO(bytes(range(256)) * (FRAME_BYTES // 256)).getvalue()
    for _ in range(FRAMES):
        for i in range(0, FRAME_BYTES, 1 << 20):
            yield frame[i : i + (1 << 20)]


def main() -> None:
    archive = build_archive(load_settings(data_dir=Path(sys.argv[1])))
    before = _status_kb("VmRSS")
    result = archive.ingest.ingest(chunks(), "test:big")
    peak = _status_kb("VmHWM")
    archive.close()
    print(f"growth_mb={(peak - before) / 1024:.1f} size={result.size}")


if __name__ == "__main__":
    main()
