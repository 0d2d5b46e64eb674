"""A large multi-frame Part 10 file for storescu, written frame by frame so it is never held in memory.

The same object as ``tests/support/big_object.py`` (512x512 16-bit frames of a byte ramp, explicit VR
little endian) with a chosen number of frames: 2048 frames are 1 GiB of pixel data, as there.
"""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian
from tests.support.big_object import FRAME_BYTES
from tests.support.dicom import make_dataset, to_part10


def frames_for(mib: int) -> int:
    """Frames that make ``mib`` MiB of pixel data (two frames per MiB)."""
    return mib * (1 << 20) // FRAME_BYTES


def write(path: Path, frames: int) -> int:
    """Write the object with ``frames`` frames to ``path``; returns its size in bytes."""
    ds = make_dataset(Rows=512, Columns=512, NumberOfFrames=frames, PixelData=None)
    frame = (bytes(range(256)) * (FRAME_BYTES // 256))[:FRAME_BYTES]
    with open(path, "wb") as f:
        f.write(to_part10(ds, ExplicitVRLittleEndian))
        # PixelData (7FE0,0010) OW with a 32-bit length, explicit VR little endian (PS3.5 7.1.2)
        f.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, frames * FRAME_BYTES))
        for _ in range(frames):
            f.write(frame)
    return path.stat().st_size
