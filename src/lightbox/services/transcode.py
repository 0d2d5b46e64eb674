"""Transcode: the data set of a stored object in another transfer syntax.

A peer that does not accept an object's stored transfer syntax still gets the object, decompressed and in
explicit or implicit VR little endian (PS3.4 C.4.2, C.4.3). Protocol-free: the retrieve service runs it,
the DIMSE adapters only choose the transfer syntax. Pixel data is decoded with pydicom and the installed
plugins (pylibjpeg: JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE); a conversion holds one object, decoded, in memory.
Objects are otherwise kept as they are: same SOP Instance UID, same attributes, with the Image Pixel module
updated where decoding changes it (a YCbCr JPEG becomes RGB, as pydicom decodes it).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.pixels import get_decoder
from pydicom.uid import UID
from pydicom.valuerep import VR

from lightbox.domain.errors import LightboxError
from lightbox.formats.encoding import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN

# What a conversion produces, in the order a sender prefers them (PS3.5 A.2 and A.1)
TARGETS = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)

# Item size of the binary VRs whose values are words, to swap from big endian (PS3.5 7.3)
_WORD_SIZE: dict[str, int] = {VR.OW: 2, VR.OF: 4, VR.OL: 4, VR.OD: 8, VR.OV: 8}
_PIXEL_DATA = 0x7FE00010


class CannotConvert(LightboxError):
    """The object cannot be given in the transfer syntax asked for (no decoder, or its data is damaged)."""


def can_convert(source: str, target: str) -> bool:
    """Whether objects stored in ``source`` can be converted to ``target`` (one of ``TARGETS``)."""
    return target in TARGETS and (source == target or _decodable(source))


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


def convert(f: BinaryIO, target: str) -> bytes:
    """The data set of the Part 10 object in ``f`` (without its File Meta Information), in ``target``."""
    if target not in TARGETS:
        raise ValueError(f"cannot convert to {target}: only to {', '.join(TARGETS)}")
    try:
        ds = pydicom.dcmread(f)
        source = str(ds.file_meta.TransferSyntaxUID)
        if not can_convert(source, target):
            raise CannotConvert(f"no conversion from {UID(source).name} to {UID(target).name}")
        if UID(source).is_compressed:
            _decompress(ds, source)
        elif not ds.original_encoding[1]:
            _swap_to_little_endian(ds)
        return _encode(ds, implicit_vr=target == IMPLICIT_VR_LITTLE_ENDIAN)
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


def _encode(ds: Dataset, implicit_vr: bool) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = implicit_vr
    write_dataset(out, ds)
    return out.getvalue()
