"""DICOM JSON (PS3.18 F.2) straight from pydicom's raw, unconverted elements.

Ingest turns every header into DICOM JSON (for the index and, later, precomputed metadata). pydicom's
``Dataset.to_json_dict`` converts each element through its full value machinery, about 15 ms for a CT header
here; decoding the raw bytes by VR directly takes a tenth of that. pydicom still parses the file and handles
character sets (``pydicom.charset.decode_bytes``); anything unusual falls back to pydicom's own conversion.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

from pydicom import charset
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from lightbox.formats.encoding import BULK_VRS as _BULK_VRS

JsonDataset = dict[str, dict[str, Any]]

_MULTI_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "SH", "TM", "UC", "UI"})
_TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})  # single-valued: a backslash is text (PS3.5 6.2)
_CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})  # PS3.5 6.1.2.3
_BINARY_NUMBERS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
_PN_DELIMS = {0x5C, 0x3D, 0x5E}  # backslash, '=', '^': ISO 2022 escapes reset after these (PS3.5 6.1.2.5.3)
DEFAULT_ENCODINGS = ["iso8859"]
_SPECIFIC_CHARACTER_SET = 0x00080005
_LEFT_OUT: dict[str, Any] = {}  # bulk data: deliberately not in the JSON


def dataset_to_json(ds: Dataset, bulk_threshold: int = 1024) -> JsonDataset:
    """The data set as DICOM JSON; binary values longer than ``bulk_threshold`` bytes are left out."""
    return _convert(ds, DEFAULT_ENCODINGS, bulk_threshold, ds.get_item(0x00280103))


def _encodings_of(ds: Dataset, inherited: list[str]) -> list[str]:
    raw = ds.get_item(_SPECIFIC_CHARACTER_SET)
    if raw is None:
        return inherited
    value = raw.value
    if isinstance(value, bytes):
        codes = [c.strip() for c in value.decode("ascii", "replace").split("\\")]
    elif isinstance(value, str):
        codes = [value]
    else:
        codes = list(value or [])
    return encodings_from_codes(codes)


def encodings_from_codes(codes: list[str]) -> list[str]:
    """Python encodings for the defined terms of Specific Character Set (0008,0005)."""
    codes = [c.strip() for c in codes]
    if not any(codes):
        return DEFAULT_ENCODINGS
    return list(charset.convert_encodings(codes))


def _convert(ds: Dataset, inherited: list[str], threshold: int, pixel_rep: Any) -> JsonDataset:
    encodings = _encodings_of(ds, inherited)
    signed = _pixel_representation(pixel_rep) == 1
    out: JsonDataset = {}
    for tag in ds.keys():  # noqa: SIM118 - iterating a Dataset converts every element; keys() does not
        elem = ds.get_item(tag)
        if elem is None:
            continue
        key = f"{int(tag):08X}"
        converted = None
        if isinstance(elem, RawDataElement):
            vr, little = elem.VR or implicit_vr(int(tag), signed), elem.is_little_endian
            if vr == "UN" and (known := implicit_vr(int(tag), signed)) != "UN":
                # PS3.5 6.2.2: a UN value is encoded as implicit VR little endian; read it as its real VR
                vr, little = known, True
            if vr != "SQ":
                converted = raw_to_json(vr, elem.value, little, encodings, threshold)
        if converted is None and not (isinstance(elem, RawDataElement) and elem.value is None):
            converted = _element_to_json(ds, int(tag), encodings, threshold, pixel_rep)
        if converted:
            out[key] = converted
    return out


def _pixel_representation(raw: Any) -> int:
    if raw is None:
        return 0
    value = raw.value
    if isinstance(value, bytes) and len(value) >= 2:
        return int.from_bytes(value[:2], "little" if raw.is_little_endian else "big")
    return int(value) if isinstance(value, int) else 0


def implicit_vr(tag: int, signed: bool) -> str:
    if tag & 0xFFFF == 0:
        return "UL"  # group length
    if (tag >> 16) % 2 == 1 and 0x0010 <= (tag & 0xFFFF) <= 0x00FF:
        return "LO"  # private creator
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    if " or " in vr:
        options = vr.split(" or ")
        if "SS" in options and signed:
            return "SS"
        return "OW" if options == ["OB", "OW"] else options[0]
    return vr


def raw_to_json(
    vr: str, value: bytes | None, little: bool, encodings: list[str], threshold: int
) -> dict[str, Any] | None:
    """One element from its raw bytes; None when this path does not handle it (pydicom then does)."""
    if value is None:
        return None
    if not value:
        return {"vr": vr}
    if vr in _BULK_VRS:
        if len(value) > threshold:
            return _LEFT_OUT
        return {"vr": vr, "InlineBinary": base64.b64encode(value).decode("ascii")}
    if vr in _BINARY_NUMBERS:
        fmt = _BINARY_NUMBERS[vr]
        count = len(value) // struct.calcsize(fmt)
        numbers = struct.unpack(
            f"{'<' if little else '>'}{count}{fmt}", value[: count * struct.calcsize(fmt)]
        )
        if fmt in "fd":
            return {"vr": vr, "Value": [n if math.isfinite(n) else None for n in numbers]}
        return {"vr": vr, "Value": list(numbers)}
    if vr == "AT":
        pairs = struct.unpack(f"{'<' if little else '>'}{len(value) // 2}H", value[: len(value) // 2 * 2])
        return {"vr": vr, "Value": [f"{pairs[i]:04X}{pairs[i + 1]:04X}" for i in range(0, len(pairs) - 1, 2)]}
    if vr == "PN":
        text = charset.decode_bytes(value, encodings, _PN_DELIMS).rstrip(" \x00")
        names = []
        for item in text.split("\\"):
            groups = {name: part for name, part in zip(_PN_GROUPS, item.split("="), strict=False) if part}
            names.append(groups or None)
        return _with_values(vr, names)
    text = (
        charset.decode_bytes(value, encodings, charset.TEXT_VR_DELIMS)
        if vr in _CHARSET_VRS
        else value.decode("latin-1")
    )
    if vr in _TEXT_VRS:
        text = text.rstrip(" \x00")
        return {"vr": vr, "Value": [text]} if text else {"vr": vr}
    parts = [p.strip(" \x00") for p in text.split("\\")]
    if vr == "DS":
        return _with_values(vr, [_number(p, float) for p in parts])
    if vr == "IS":
        return _with_values(vr, [_number(p, int) for p in parts])
    if vr in _MULTI_STRING_VRS:
        return _with_values(vr, [p or None for p in parts])
    return None  # an unknown VR: let the caller fall back to pydicom


def _with_values(vr: str, values: list[Any]) -> dict[str, Any]:
    if all(v is None for v in values):
        return {"vr": vr}
    return {"vr": vr, "Value": values}


def _number(text: str, kind: type) -> Any:
    if not text:
        return None
    try:
        if kind is int:
            return int(text)
        number = float(text)
        if not math.isfinite(number):
            return text
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    except ValueError:
        try:
            return int(float(text)) if kind is int else text
        except ValueError:
            return text  # keep a malformed value visible rather than lose it


def _element_to_json(ds: Dataset, tag: int, encodings: list[str], threshold: int, pixel_rep: Any) -> Any:
    """Sequences and anything the raw path does not handle: through pydicom."""
    try:
        elem = ds[tag]
    except Exception:
        return None  # an element pydicom cannot decode is left out of the index, not fatal
    if elem.VR == "SQ":
        items = [_convert(item, encodings, threshold, pixel_rep) for item in elem.value or []]
        return {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
    if elem.VR in _BULK_VRS and elem.value is not None and len(elem.value) > threshold:
        return None
    try:
        return elem.to_json_dict(bulk_data_element_handler=None, bulk_data_threshold=threshold)
    except Exception:
        return None
