"""The lossless codecs stored objects may be compressed with (``storage.compression``)."""

from __future__ import annotations

import enum


class Codec(enum.StrEnum):
    NONE = "none"
    JPEG_LS = "jpeg-ls"  # JPEG-LS lossless (CharLS)
    J2K = "j2k"  # JPEG 2000 lossless (OpenJPEG)
    HTJ2K = "htj2k"  # High-Throughput JPEG 2000 lossless (OpenJPH)
