"""DICOM JSON (PS3.18 F.2) back to a DICOM data set's bytes (PS3.5 7), for C-FIND identifiers.

A C-FIND answer is one small data set per match. Building each through pydicom (``Dataset.from_json``, then
``write_dataset``) cost about half a millisecond a match, most of the time a large search took. This writes
the bytes straight from the JSON: elements in tag order, values padded to even length, text in UTF-8 (the
caller declares Specific Character Set ISO_IR 192), sequences and items with defined lengths.
"""

from __future__ import annotations

import base64
import functools
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from lightbox.formats.encoding import LONG_VRS

_NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_LONG = frozenset(vr.decode() for vr in LONG_VRS)
_ITEM = (0xFFFE, 0xE000)
# The VRs whose values are written as they are, and their padding (PS3.5 6.2: UI with NUL, the rest space).
_TEXT_VRS = ("AE", "AS", "CS", "DA", "DT", "IS", "LO", "LT", "SH", "ST", "TM", "UC", "UR", "UT")
_STRING_PADS = {**dict.fromkeys(_TEXT_VRS, b" "), "UI": b"\x00"}


def encode_dataset(doc: Mapping[str, Any], *, implicit_vr: bool, little_endian: bool = True) -> bytes:
    """The data set ``doc`` (DICOM JSON) encoded in the given transfer syntax; bulk data URIs are not
    resolved (a C-FIND identifier never has any)."""
    order = "<" if little_endian else ">"
    parts: list[bytes] = []
    for key in sorted(doc):
        element = doc[key]
        vr = element.get("vr", "UN")
        value = _value(vr, element, order, implicit_vr)
        prefix, length = _header(key, vr, order, implicit_vr)
        parts += (prefix, length.pack(len(value)), value)
    return b"".join(parts)


@functools.lru_cache(maxsize=4096)
def _header(key: str, vr: str, order: str, implicit_vr: bool) -> tuple[bytes, struct.Struct]:
    """An element's header without its length, and the length's format: the same few tags recur in every
    match of a search, and packing them anew each time was a third of the encoding's cost."""
    tag = int(key, 16)
    group, element = tag >> 16, tag & 0xFFFF
    if implicit_vr:
        return struct.pack(order + "HH", group, element), struct.Struct(order + "I")
    if vr in _LONG:
        return struct.pack(order + "HH2s2x", group, element, vr.encode()), struct.Struct(order + "I")
    return struct.pack(order + "HH2s", group, element, vr.encode()), struct.Struct(order + "H")


def _value(vr: str, element: Mapping[str, Any], order: str, implicit_vr: bool) -> bytes:
    values: Sequence[Any] | None = element.get("Value")
    if values is not None:  # nearly every value of an identifier is text or a name: those first
        pad = _STRING_PADS.get(vr)
        if pad is not None:
            return _string(values, pad)
        if vr == "PN":
            return _names(values)
    values = values or ()
    if vr == "SQ":
        return b"".join(_item(item, order, implicit_vr) for item in values)
    if "InlineBinary" in element:
        return _even(base64.b64decode(element["InlineBinary"]), b"\x00")
    if vr in _NUMBER_FORMATS:
        return struct.pack(f"{order}{len(values)}{_NUMBER_FORMATS[vr]}", *values)
    if vr == "AT":
        return b"".join(struct.pack(order + "HH", int(v, 16) >> 16, int(v, 16) & 0xFFFF) for v in values)
    if vr in _BINARY_VRS:
        return b""  # bulk data by URI: never in an identifier
    if vr == "PN":
        return _names(values)
    if vr == "DS":
        return _even("\\".join(_decimal(v) for v in values).encode("utf-8"), b" ")
    return _string(values, _STRING_PADS.get(vr, b" "))


def _string(values: Sequence[Any], pad: bytes) -> bytes:
    """A string value (IS numbers too) in UTF-8, padded to even length; one value, the usual case,
    without a join."""
    if len(values) == 1:
        value = values[0]
        text = value if type(value) is str else "" if value is None else str(value)
    else:
        text = "\\".join("" if v is None else str(v) for v in values)
    data = text.encode("utf-8")
    return data + pad if len(data) % 2 else data


def _item(item: Mapping[str, Any], order: str, implicit_vr: bool) -> bytes:
    body = encode_dataset(item, implicit_vr=implicit_vr, little_endian=order == "<")
    return struct.pack(order + "HHI", *_ITEM, len(body)) + body


def _names(values: Sequence[Any]) -> bytes:
    text = _person_name(values[0]) if len(values) == 1 else "\\".join(_person_name(v) for v in values)
    return _even(text.encode("utf-8"), b" ")


def _person_name(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    groups = [value.get("Alphabetic", ""), value.get("Ideographic", ""), value.get("Phonetic", "")]
    return "=".join(groups).rstrip("=")


def _decimal(value: Any) -> str:
    """A Decimal String of at most 16 characters (PS3.5 6.2)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    text = str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
    precision = 15
    while len(text) > 16 and precision > 1:
        text = f"{float(value):.{precision}g}"
        precision -= 1
    return text


def _even(data: bytes, pad: bytes) -> bytes:
    return data + pad if len(data) % 2 else data
