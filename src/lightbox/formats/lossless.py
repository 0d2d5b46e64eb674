"""Lossless re-encoding of uncompressed pixel data, proven pixel for pixel before it may replace anything.

JPEG-LS and JPEG 2000 go through pydicom's own encoders (CharLS and OpenJPEG); HTJ2K through imagecodecs
(OpenJPH), since pydicom has no HTJ2K encoder. ``compress`` returns the new object's bytes only when
decoding them gives back exactly the stored pixel bytes, bit for bit (unused high bits included: an
overlay hidden there would otherwise be lost); any doubt raises ``KeptAsIs`` with the reason.
"""

from __future__ import annotations

import io

import numpy as np
from pydicom import Dataset, dcmread, dcmwrite
from pydicom.encaps import encapsulate
from pydicom.pixels import pixel_array
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
)

from lightbox.domain.compression import Codec

TRANSFER_SYNTAX: dict[Codec, UID] = {
    Codec.JPEG_LS: JPEGLSLossless,
    Codec.J2K: JPEG2000Lossless,
    Codec.HTJ2K: HTJ2KLossless,
}
# What is re-encoded: the native little endian syntaxes (big endian and deflated objects are rare: kept)
UNCOMPRESSED = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})
# Decoded, encoded and decoded again in memory: larger pixel data stays as it is
MAX_PIXEL_BYTES = 512 << 20
# CharLS for JPEG-LS, as the archive sets it (formats.codecs), also when this runs without the archive
_DECODER = {JPEGLSLossless: "pyjpegls"}
_MONOCHROME = frozenset({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"})


class KeptAsIs(Exception):
    """The object is not compressed; the message says why."""


def compress(data: bytes, codec: Codec) -> bytes:
    """The Part 10 object ``data`` with its pixel data re-encoded losslessly with ``codec``."""
    if codec is Codec.NONE:
        raise KeptAsIs("compression is off")
    ds = dcmread(io.BytesIO(data))
    original = _native_pixels(ds, codec)
    try:
        if codec is Codec.HTJ2K:
            _encode_htj2k(ds)
        else:
            ds.compress(TRANSFER_SYNTAX[codec], generate_instance_uid=False)
    except (ValueError, RuntimeError, NotImplementedError, TypeError) as exc:
        raise KeptAsIs(f"the {codec.value} encoder refused it: {exc}") from exc
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=False)
    compressed = out.getvalue()
    _verify(compressed, original)
    return compressed


def _native_pixels(ds: Dataset, codec: Codec) -> bytes:
    """The stored pixel bytes, after checking the object is one the codec can carry exactly."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax not in UNCOMPRESSED:
        raise KeptAsIs(f"transfer syntax {syntax} is not native little endian")
    if "PixelData" not in ds:
        raise KeptAsIs("no pixel data")
    bits = ds.get("BitsAllocated")
    samples = ds.get("SamplesPerPixel", 1)
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if bits not in (8, 16):
        raise KeptAsIs(f"{bits} bits allocated")
    if samples == 3 and (codec is Codec.HTJ2K or photometric != "RGB" or ds.get("PlanarConfiguration", 0)):
        raise KeptAsIs(f"{photometric} colour with {codec.value}")
    if samples == 1 and photometric not in _MONOCHROME:
        raise KeptAsIs(f"photometric interpretation {photometric!r}")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    expected = ds.Rows * ds.Columns * samples * frames * bits // 8
    pixels: bytes = ds.PixelData
    if expected > MAX_PIXEL_BYTES:
        raise KeptAsIs(f"{expected} bytes of pixel data, above {MAX_PIXEL_BYTES}")
    if len(pixels) < expected:
        raise KeptAsIs("pixel data shorter than its rows, columns and frames")
    return pixels[:expected]


def _encode_htj2k(ds: Dataset) -> None:
    import imagecodecs

    frames = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) == 1:
        frames = frames[np.newaxis]
    ds.PixelData = encapsulate([bytes(imagecodecs.htj2k_encode(frame)) for frame in frames])
    element = ds["PixelData"]
    element.VR = "OB"
    element.is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = HTJ2KLossless
    ds.LossyImageCompression = ds.get("LossyImageCompression", "00")


def _verify(compressed: bytes, original: bytes) -> None:
    """Decode the new object as a reader will, and compare with the stored pixel bytes, bit for bit."""
    ds = dcmread(io.BytesIO(compressed))
    decoded = pixel_array(ds, decoding_plugin=_DECODER.get(ds.file_meta.TransferSyntaxUID, ""))
    dtype = np.dtype(f"<{'i' if ds.PixelRepresentation else 'u'}{ds.BitsAllocated // 8}")
    if np.ascontiguousarray(decoded, dtype=dtype).tobytes() != original:
        raise KeptAsIs("decoding the compressed object does not give back the stored pixels")
