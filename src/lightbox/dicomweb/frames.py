"""Frames of a stored object (PS3.18 10.4.1.1.6), read without loading the object.

The header is parsed up to the pixel data (``part10.parse(..., stop_at_pixel_data=True)``); then a native
frame is read at its offset (Rows x Columns x Samples per Pixel x Bits Allocated a frame, PS3.5 8.1.1), and
an encapsulated frame is the join of its fragments (PS3.5 A.4), found through the Extended or Basic Offset
Table when there is one and by walking the item headers otherwise (pydicom's ``get_frame``). A frame asked
for in native form from compressed pixel data is decoded by pydicom and its plugins. Objects this path does
not read directly go through pydicom: big endian ones a frame at a time, deflated ones whole, and
encapsulated ones whole too, their frames cut out as stored unless decoding is asked for. Every function
here blocks: run them in the executor.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.encaps import get_frame
from pydicom.pixels import pack_bits, pixel_array

from lightbox.domain.errors import LightboxError, NotFound
from lightbox.formats import part10
from lightbox.formats.dicom_json import JsonDataset
from lightbox.formats.encoding import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    LONG_VRS,
    UNDEFINED_LENGTH,
)

# Header values decoded in the parse: large enough for an Extended Offset Table (8 bytes a frame) inline
_HEADER_VALUES = 1 << 20
# The only header values the layout needs; the parse steps over the others (a viewer asks for every frame
# of a series, each its own request: decoding a whole CT header for these took longer than the rest)
_LAYOUT_TAGS = frozenset(
    (0x00280002, 0x00280004, 0x00280008, 0x00280010, 0x00280011, 0x00280100, 0x7FE00001, 0x7FE00002)
)


class NoPixelData(NotFound):
    """The object has no pixel data, hence no frames."""


class DamagedPixelData(LightboxError):
    """The pixel data does not hold the frames its header announces."""


@dataclass(frozen=True, slots=True)
class PixelData:
    """Where the frames of an object are and how to cut them."""

    transfer_syntax: str
    number_of_frames: int
    bits_allocated: int
    frame_bits: int  # of a native frame
    encapsulated: bool
    value_offset: int = 0  # first byte of the Pixel Data value (the Basic Offset Table item, encapsulated)
    extended_offsets: tuple[bytes, bytes] | None = None
    direct: bool = True  # False: read through pydicom (deflated, big endian, framing part10 does not take)


def pixel_data(f: BinaryIO) -> PixelData:
    """Where the frames are in the Part 10 object ``f``. Raises NoPixelData or DamagedPixelData."""
    try:
        header = part10.parse(f, bulk_threshold=_HEADER_VALUES, stop_at_pixel_data=True, only=_LAYOUT_TAGS)
    except part10.NotHandled:
        return _through_pydicom(f)
    except part10.Truncated as exc:
        raise DamagedPixelData(f"the object is cut short: {exc}") from exc
    if header.pixel_data_offset is None:
        raise NoPixelData("the object has no pixel data, hence no frames")
    ds = header.dataset
    frames = _number(ds, "00280008", 1)
    bits = _number(ds, "00280100", 8)
    frame_bits = _frame_bits(ds, bits)
    if header.transfer_syntax_uid == EXPLICIT_VR_BIG_ENDIAN:
        # frames go out little endian (PS3.18 8.7.3.3.1): pydicom swaps the words
        return PixelData(header.transfer_syntax_uid, frames, bits, frame_bits, False, direct=False)
    start, length = _value_position(f, header)
    if length == UNDEFINED_LENGTH:
        offsets = _extended_offsets(ds)
        return PixelData(header.transfer_syntax_uid, frames, bits, frame_bits, True, start, offsets)
    if frames * frame_bits > length * 8:
        raise DamagedPixelData(f"{frames} frames announced, the pixel data holds {length} bytes")
    return PixelData(header.transfer_syntax_uid, frames, bits, frame_bits, False, start)


def read_frame(f: BinaryIO, layout: PixelData, index: int, *, decode: bool = False) -> bytes:
    """Frame ``index`` (from 0): native bytes, or with encapsulated pixel data its compressed bytes unless
    ``decode`` asks for them decompressed to native little endian bytes."""
    if not 0 <= index < layout.number_of_frames:
        raise NotFound(f"frame {index + 1} is out of range: the object has {layout.number_of_frames}")
    if layout.encapsulated and not decode and not layout.direct:
        return _stored_through_pydicom(f, layout, index)
    if decode or not layout.direct:
        return _decoded(f, layout, index)
    if layout.encapsulated:
        f.seek(layout.value_offset)
        try:
            return get_frame(
                f,
                index,
                extended_offsets=layout.extended_offsets,
                number_of_frames=layout.number_of_frames,
            )
        except (ValueError, EOFError) as exc:  # item tags or offsets that do not add up
            raise DamagedPixelData(f"frame {index + 1} cannot be found: {exc}") from exc
    return _native(f, layout, index)


def _native(f: BinaryIO, layout: PixelData, index: int) -> bytes:
    first_bit = index * layout.frame_bits
    end_bit = first_bit + layout.frame_bits
    size = (end_bit + 7) // 8 - first_bit // 8
    f.seek(layout.value_offset + first_bit // 8)
    data = f.read(size)
    if len(data) < size:
        raise DamagedPixelData(f"frame {index + 1} is cut short")
    if first_bit % 8 == 0 and end_bit % 8 == 0:
        return data
    # 1-bit frames need not start on a byte (PS3.5 8.1.1): shift this one to start on the first bit
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    shifted = bits[first_bit % 8 : first_bit % 8 + layout.frame_bits]
    return np.packbits(shifted, bitorder="little").tobytes()


def _decoded(f: BinaryIO, layout: PixelData, index: int) -> bytes:
    """The frame as native little endian bytes, decoded by pydicom (reading only that frame of ``f``)."""
    f.seek(0)
    try:
        # pydicom reads a frame straight from a file, but a deflated data set only once inflated whole
        source = pydicom.dcmread(f) if layout.transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN else f
        arr = pixel_array(source, index=index)
    except Exception as exc:  # missing decoder plugin, damaged codestream
        raise DamagedPixelData(f"frame {index + 1} cannot be decoded: {exc}") from exc
    if layout.bits_allocated == 1:
        return pack_bits(arr, pad=False)
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()


def _stored_through_pydicom(f: BinaryIO, layout: PixelData, index: int) -> bytes:
    """An encapsulated frame as stored, from an object read through pydicom: its label says compressed."""
    f.seek(0)
    try:
        ds = pydicom.dcmread(f)
        return get_frame(ds.PixelData, index, number_of_frames=layout.number_of_frames)
    except Exception as exc:  # item tags or offsets that do not add up
        raise DamagedPixelData(f"frame {index + 1} cannot be found: {exc}") from exc


def _through_pydicom(f: BinaryIO) -> PixelData:
    """The layout facts pydicom gives, for objects read through it (deflated, unusual framing)."""
    f.seek(0)
    try:
        ds = pydicom.dcmread(f, defer_size=1024)  # large values stay in the file until asked for
    except Exception as exc:
        raise DamagedPixelData(f"the object cannot be read: {exc}") from exc
    if not any(keyword in ds for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise NoPixelData("the object has no pixel data, hence no frames")
    syntax = ds.file_meta.TransferSyntaxUID
    frames, bits = int(ds.get("NumberOfFrames") or 1), int(ds.get("BitsAllocated", 8))
    return PixelData(str(syntax), frames, bits, 0, syntax.is_encapsulated, direct=False)


def _value_position(f: BinaryIO, header: part10.Header) -> tuple[int, int]:
    """The first byte and the length of the pixel data element's value (PS3.5 7.1.2, 7.1.3)."""
    assert header.pixel_data_offset is not None
    order = "<" if header.little_endian else ">"
    f.seek(header.pixel_data_offset)
    head = f.read(12)
    if len(head) < 8:
        raise DamagedPixelData("the pixel data element is cut short")
    if header.explicit_vr and head[4:6] in LONG_VRS:
        if len(head) < 12:
            raise DamagedPixelData("the pixel data element is cut short")
        return header.pixel_data_offset + 12, struct.unpack_from(order + "I", head, 8)[0]
    if header.explicit_vr:
        return header.pixel_data_offset + 8, struct.unpack_from(order + "H", head, 6)[0]
    return header.pixel_data_offset + 8, struct.unpack_from(order + "I", head, 4)[0]


def _frame_bits(ds: JsonDataset, bits_allocated: int) -> int:
    rows, columns = _number(ds, "00280010", 0), _number(ds, "00280011", 0)
    samples = _number(ds, "00280002", 1)
    if _text(ds, "00280004") == "YBR_FULL_422":
        samples = 2  # native YBR_FULL_422 keeps one Cb and one Cr for two pixels (PS3.3 C.7.6.3.1.2)
    return rows * columns * samples * bits_allocated


def _extended_offsets(ds: JsonDataset) -> tuple[bytes, bytes] | None:
    """The Extended Offset Table and its lengths (7FE0,0001-0002), when the object has them."""
    offsets, lengths = ds.get("7FE00001", {}), ds.get("7FE00002", {})
    if "InlineBinary" in offsets and "InlineBinary" in lengths:
        return base64.b64decode(offsets["InlineBinary"]), base64.b64decode(lengths["InlineBinary"])
    return None


def _number(ds: JsonDataset, tag: str, default: int) -> int:
    values: list[Any] = ds.get(tag, {}).get("Value") or []
    try:
        return int(values[0]) if values and values[0] is not None else default
    except (TypeError, ValueError):
        return default


def _text(ds: JsonDataset, tag: str) -> str:
    values: list[Any] = ds.get(tag, {}).get("Value") or []
    return str(values[0]).strip() if values and values[0] is not None else ""
