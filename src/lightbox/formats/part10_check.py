"""Is a Part 10 object complete? Walk its element framing to the end without reading the values.

pydicom reads a header cut short without complaint, and ingest parses only the header, so an upload or an
association that broke off mid-object would otherwise be stored. Every element's length must fit in the
file, undefined-length sequences and encapsulated pixel data must reach their delimiters (PS3.5 7.5), and a
deflated data set (PS3.5 A.5) must decompress to its end.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

from lightbox.domain.errors import InvalidObject
from lightbox.formats import encoding as enc

_DEFLATED = enc.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
_IMPLICIT = enc.IMPLICIT_VR_LITTLE_ENDIAN
_BIG_ENDIAN = enc.EXPLICIT_VR_BIG_ENDIAN
_LONG_VRS = enc.LONG_VRS
_ALL_VRS = enc.ALL_VRS
_UNDEFINED = enc.UNDEFINED_LENGTH
_ITEM, _ITEM_END, _SEQUENCE_END = 0xE000, 0xE00D, 0xE0DD
_META_START = enc.PART10_PREAMBLE


class _Truncated(Exception):
    pass


_PIXEL_TAGS = frozenset({(0x7FE0, 0x0008), (0x7FE0, 0x0009), (0x7FE0, 0x0010)})


def check_complete(f: BinaryIO, transfer_syntax_uid: str) -> bool | None:
    """Raise InvalidObject when the object ends before its last element does.

    Returns whether the data set holds pixel data at its top level (None for a deflated data set, which is
    checked by decompressing it instead). A cut exactly between two elements leaves valid framing; the
    caller catches the common case of that, an image whose pixel data is missing.
    """
    end = f.seek(0, 2)
    f.seek(_META_START)
    seen: set[tuple[int, int]] = set()
    try:
        _walk(f, end, explicit=True, little=True, meta_only=True)
        if transfer_syntax_uid == _DEFLATED:
            _check_deflated(f)
            return None
        little = transfer_syntax_uid != _BIG_ENDIAN
        _walk(f, end, explicit=_looks_explicit(f, transfer_syntax_uid), little=little, seen=seen)
    except _Truncated as exc:
        raise InvalidObject(f"truncated object: {exc}") from None
    return bool(seen & _PIXEL_TAGS)


def _walk(
    f: BinaryIO,
    end: int,
    *,
    explicit: bool,
    little: bool,
    meta_only: bool = False,
    in_item: bool = False,
    seen: set[tuple[int, int]] | None = None,
) -> None:
    order = "<" if little else ">"
    while True:
        pos = f.tell()
        if pos >= end:
            if in_item:
                raise _Truncated("a sequence item has no end")
            return
        head = f.read(8)
        if len(head) < 8:
            raise _Truncated(f"element header at byte {pos} is cut")
        group, element = struct.unpack_from(order + "HH", head)
        if meta_only and group != 0x0002:
            f.seek(pos)
            return
        if seen is not None and group == 0x7FE0:
            seen.add((group, element))
        if group == 0xFFFE:
            if element == _ITEM_END and in_item:
                return
            raise _Truncated(f"unexpected delimiter ({group:04X},{element:04X}) at byte {pos}")
        if explicit and (meta_only or group != 0xFFFE):
            vr = head[4:6]
            if vr in _LONG_VRS:
                extra = f.read(4)
                if len(extra) < 4:
                    raise _Truncated(f"element ({group:04X},{element:04X}) header is cut")
                length = struct.unpack(order + "I", extra)[0]
            else:
                length, vr = struct.unpack_from(order + "H", head, 6)[0], vr
        else:
            vr, length = b"", struct.unpack_from(order + "I", head, 4)[0]
        if length == _UNDEFINED:
            # An undefined-length UN holds implicit VR little endian data (PS3.5 6.2.2).
            inner_explicit = explicit and vr != b"UN"
            _walk_sequence(f, end, explicit=inner_explicit, little=little if inner_explicit else True)
            continue
        if f.tell() + length > end:
            raise _Truncated(
                f"element ({group:04X},{element:04X}) needs {length} bytes, the object ends first"
            )
        f.seek(length, 1)


def _walk_sequence(f: BinaryIO, end: int, *, explicit: bool, little: bool) -> None:
    """Items up to the sequence delimiter; also serves encapsulated pixel data (fragments are items)."""
    order = "<" if little else ">"
    while True:
        pos = f.tell()
        head = f.read(8)
        if len(head) < 8:
            raise _Truncated(f"a sequence starting before byte {pos} has no end")
        group, element, length = struct.unpack(order + "HHI", head)
        if group != 0xFFFE:
            raise _Truncated(f"expected an item at byte {pos}, found ({group:04X},{element:04X})")
        if element == _SEQUENCE_END:
            return
        if element != _ITEM:
            raise _Truncated(f"unexpected delimiter ({group:04X},{element:04X}) at byte {pos}")
        if length == _UNDEFINED:
            _walk(f, end, explicit=explicit, little=little, in_item=True)
        elif f.tell() + length > end:
            raise _Truncated(f"an item needs {length} bytes, the object ends first")
        else:
            f.seek(length, 1)


def _looks_explicit(f: BinaryIO, transfer_syntax_uid: str) -> bool:
    """Explicit or implicit VR as the bytes say: some writers contradict their transfer syntax, and pydicom
    (which parsed the header) follows the bytes, so the walk must too."""
    pos = f.tell()
    head = f.read(6)
    f.seek(pos)
    if len(head) < 6:
        return transfer_syntax_uid != _IMPLICIT
    return head[4:6] in _ALL_VRS


def _check_deflated(f: BinaryIO) -> None:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    while chunk := f.read(1 << 20):
        try:
            inflater.decompress(chunk, 1 << 20)
            while inflater.unconsumed_tail:
                inflater.decompress(inflater.unconsumed_tail, 1 << 20)
        except zlib.error as exc:
            raise _Truncated(f"deflated data set is corrupt: {exc}") from None
    if not inflater.eof:
        raise _Truncated("deflated data set ends before its end")
