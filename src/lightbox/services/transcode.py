"""Transcode: the data set of a stored object in another transfer syntax.

A peer that does not accept an object's stored transfer syntax still gets the object, decompressed and in
explicit or implicit VR little endian (PS3.4 C.4.2, C.4.3). A web client may also ask for a lossless
compressed syntax (PS3.18 8.7.3.5.2): RLE, JPEG-LS or JPEG 2000 lossless, or deflated explicit VR little
endian. Protocol-free: the retrieve service runs it, the adapters only choose the transfer syntax. Pixel
data is decoded and encoded with pydicom and the installed plugins (pylibjpeg: JPEG, JPEG-LS, JPEG 2000,
HTJ2K, RLE; pyjpegls: JPEG-LS encoding); a conversion holds one object, decoded, in memory. Objects are
otherwise kept as they are: same SOP Instance UID, same attributes, with the Image Pixel module updated
where decoding changes it (a YCbCr JPEG becomes RGB, as pydicom decodes it). Nothing is ever compressed
lossily here: a lossy image stays as lossy as it was stored, never more.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.pixels import get_decoder, get_encoder, pixel_array
from pydicom.uid import UID
from pydicom.valuerep import VR

from lightbox.domain.errors import LightboxError
from lightbox.formats.encoding import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN

# What a conversion produces for a DICOM peer, in the order a sender prefers them (PS3.5 A.2 and A.1)
TARGETS = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
DEFLATED = "1.2.840.10008.1.2.1.99"  # explicit VR little endian, the whole data set deflated (PS3.5 A.5)
# Lossless compressed syntaxes an object can be re-encoded in, when their encoder is installed
COMPRESSED_TARGETS = (
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.5",  # RLE lossless
)

# Item size of the binary VRs whose values are words, to swap from big endian (PS3.5 7.3)
_WORD_SIZE: dict[str, int] = {VR.OW: 2, VR.OF: 4, VR.OL: 4, VR.OD: 8, VR.OV: 8}
_PIXEL_DATA = 0x7FE00010


class CannotConvert(LightboxError):
    """The object cannot be given in the transfer syntax asked for (no decoder, or its data is damaged)."""


def can_convert(source: str, target: str) -> bool:
    """Whether objects stored in ``source`` can be converted to ``target``: one of ``TARGETS``, or for
    the web ``DEFLATED`` and those ``COMPRESSED_TARGETS`` whose encoder is installed. An object can still
    fail to convert (``CannotConvert``): an encoder takes only some pixel layouts (JPEG 2000 none under
    a few pixels, RLE and JPEG-LS no 32-bit colour, none of them 1-bit or float data)."""
    if source == target:
        return True
    if target in TARGETS or target == DEFLATED:
        return _decodable(source)
    return target in COMPRESSED_TARGETS and _encodable(target) and _decodable(source)


@functools.cache
def _decodable(source: str) -> bool:
    uid = UID(source)
    if not uid.is_transfer_syntax:  # a private or unknown syntax: its encoding is unknown
        return False
    if not uid.is_compressed:  # implicit, explicit, big endian, deflated: pydicom reads them all
        return True
    try:
        return bool(get_decoder(uid).is_available)
    except NotImplementedError:  # video, JPIP, JPEG 2000 Part 2: no decoder in pydicom
        return False


@functools.cache
def _encodable(target: str) -> bool:
    try:
        return bool(get_encoder(UID(target)).is_available)
    except NotImplementedError:
        return False


def convert(f: BinaryIO, target: str) -> bytes:
    """The data set of the Part 10 object in ``f`` (without its File Meta Information), in ``target``."""
    if target not in (*TARGETS, DEFLATED, *COMPRESSED_TARGETS):
        raise ValueError(f"cannot convert to {target}: not a syntax Lightbox writes")
    try:
        ds = pydicom.dcmread(f)
        source = str(ds.file_meta.TransferSyntaxUID)
        if not can_convert(source, target):
            raise CannotConvert(f"no conversion from {UID(source).name} to {UID(target).name}")
        if source != target:
            if UID(source).is_compressed:
                _decompress(ds, source)
            elif not ds.original_encoding[1]:
                _swap_to_little_endian(ds)
            if target in COMPRESSED_TARGETS:
                _compress(ds, target)
        data = _encode(ds, implicit_vr=target == IMPLICIT_VR_LITTLE_ENDIAN)
        return _deflate(data) if target == DEFLATED else data
    except LightboxError:
        raise
    # pydicom and its plugins fail in many ways on damaged data: each is this object's failure, no more
    except Exception as exc:
        raise CannotConvert(f"the object cannot be converted: {exc}") from exc


def _decompress(ds: Dataset, source: str) -> None:
    """Decode the Pixel Data in place, and the encapsulated icons nested in sequences (PS3.5 A.4)."""
    if "PixelData" in ds:
        ds.decompress(generate_instance_uid=False)  # the same image in another encoding keeps its UID
    for item in _nested_items(ds):
        if "PixelData" in item and item["PixelData"].is_undefined_length:
            # pydicom decodes a data set by its file meta; an item has none of its own
            item.file_meta = FileMetaDataset()
            item.file_meta.TransferSyntaxUID = UID(source)
            item.decompress(generate_instance_uid=False)
            del item.file_meta


# Colour spaces that decoding leaves as they are: a frame of these re-encoded still matches the object's
# Photometric Interpretation, which a client reads from its metadata
_KEPT_BY_DECODING = frozenset({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB"})


def compress_frame(f: BinaryIO, index: int, target: str) -> bytes:
    """Frame ``index`` (from 0) of the Part 10 object in ``f``, re-encoded losslessly in ``target`` (one of
    ``COMPRESSED_TARGETS``): one frame decoded in memory. Raises CannotConvert."""
    if target not in COMPRESSED_TARGETS or not _encodable(target):
        raise ValueError(f"cannot encode frames in {target}")
    try:
        f.seek(0)
        header = pydicom.dcmread(f, stop_before_pixels=True)
        source = UID(header.file_meta.TransferSyntaxUID)
        colour = str(header.get("PhotometricInterpretation", ""))
        if source.is_encapsulated and colour not in _KEPT_BY_DECODING:
            raise CannotConvert(f"decoding changes its colour space ({colour}): ask for the frames as stored")
        if not _decodable(source):
            raise CannotConvert(f"no decoder for {source.name}")
        f.seek(0)
        arr = pixel_array(pydicom.dcmread(f) if source.is_deflated else f, index=index, as_rgb=False)
        encoded = get_encoder(UID(target)).encode(
            arr,
            rows=header.Rows,
            columns=header.Columns,
            number_of_frames=1,
            samples_per_pixel=header.SamplesPerPixel,
            bits_allocated=header.BitsAllocated,
            bits_stored=header.BitsStored,
            pixel_representation=header.PixelRepresentation,
            photometric_interpretation=colour,
            planar_configuration=0,  # an array is colour-by-pixel, whatever the stored planes
            use_mct=False,  # JPEG 2000: RGB stays RGB inside, as the metadata says
        )
        return bytes(encoded)  # pyjpegls gives a bytearray
    except LightboxError:
        raise
    except Exception as exc:  # the encoder refusing the layout, damaged data, a missing attribute
        raise CannotConvert(f"frame {index + 1} cannot be encoded in {UID(target).name}: {exc}") from exc


def _compress(ds: Dataset, target: str) -> None:
    if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:  # native only (PS3.5 8.2)
        raise CannotConvert("float pixel data cannot be compressed")
    if "PixelData" in ds:
        # pydicom reads the native pixels by the syntax in the file meta: little endian by now
        ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LITTLE_ENDIAN)
        ds.compress(target, generate_instance_uid=False)


def _nested_items(ds: Dataset) -> Iterator[Dataset]:
    """Every item of every sequence, depth first, parsing only the sequences themselves."""
    for tag in list(ds.keys()):
        if ds.get_item(tag).VR == VR.SQ:
            for item in ds[tag].value:
                yield item
                yield from _nested_items(item)


def _swap_to_little_endian(ds: Dataset) -> None:
    """pydicom re-encodes numbers and text itself, but not the words inside OW, OF, OL, OD and OV values."""
    for tag in list(ds.keys()):
        elem = ds[tag]
        if elem.VR == VR.SQ:
            for item in elem.value:
                _swap_to_little_endian(item)
            continue
        size = _pixel_sample_size(ds, elem.VR) if tag == _PIXEL_DATA else _WORD_SIZE.get(elem.VR, 0)
        if size > 1 and isinstance(elem.value, bytes) and elem.value:
            if len(elem.value) % size:
                raise CannotConvert(f"{elem.tag} is not a whole number of {size}-byte words")
            elem.value = np.frombuffer(elem.value, dtype=f"u{size}").byteswap().tobytes()


def _pixel_sample_size(ds: Dataset, vr: str) -> int:
    """Big endian pixel data (PS3.5 A.3) holds samples of Bits Allocated, 8-bit ones swapped in pairs when
    OW; read as pydicom reads it, whatever the VR (OB is seen for 16 and 32 bits too)."""
    bits = int(ds.get("BitsAllocated", 16))
    if bits == 8:
        return 2 if vr == VR.OW else 1
    return bits // 8 if bits in (16, 32, 64) else 1  # 1-bit data is a bit stream: no words


def _deflate(data: bytes) -> bytes:
    """Raw deflate, no zlib header (PS3.5 A.5: RFC 1951)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def _encode(ds: Dataset, implicit_vr: bool) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = implicit_vr
    write_dataset(out, ds)
    return out.getvalue()
