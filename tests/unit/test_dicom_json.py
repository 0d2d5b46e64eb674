"""The raw-element DICOM JSON converter agrees with pydicom's own conversion (PS3.18 F.2)."""

from __future__ import annotations

import glob
import math
import os
import struct
import warnings
from typing import Any

import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset

from lightbox.formats.dicom_json import dataset_to_json
from tests.support.dicom import make_dataset, to_part10

DATA = os.path.dirname(pydicom.data.__file__)
CHARSET_FILES = sorted(glob.glob(os.path.join(DATA, "charset_files", "*.dcm")))


def _read(path_or_bytes: str | bytes) -> Dataset:
    import io

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(src, stop_before_pixels=True, force=True)


def _equivalent(mine: Any, ref: Any) -> bool:
    """Equal but for what the JSON model leaves open: int/float for DS, padding, empty values."""
    if isinstance(mine, int | float) and isinstance(ref, int | float):
        return math.isclose(mine, ref, rel_tol=1e-6)
    if isinstance(mine, dict) and isinstance(ref, dict):
        if mine.get("vr") == "SQ" and not mine.get("Value") and not ref.get("Value"):
            return True
        keys = (set(mine) | set(ref)) - {"BulkDataURI", "InlineBinary"}
        return all(_equivalent(mine.get(k), ref.get(k)) for k in keys)
    if isinstance(mine, list) and isinstance(ref, list):
        return len(mine) == len(ref) and all(_equivalent(a, b) for a, b in zip(mine, ref, strict=True))
    if mine is None and ref in ("", None):
        return True
    if isinstance(mine, str) and isinstance(ref, str):
        return mine == ref.strip(" \x00")
    return bool(mine == ref)


@pytest.mark.parametrize("path", CHARSET_FILES, ids=[os.path.basename(p) for p in CHARSET_FILES])
def test_specific_character_sets_decode_like_pydicom(path: str) -> None:
    mine = dataset_to_json(_read(path))
    ref = _read(path).to_json_dict()
    for tag, elem in ref.items():
        if "BulkDataURI" in elem:
            continue
        if int(tag[:4], 16) % 2 and mine.get(tag, {}).get("vr") == "UN":
            continue  # a private attribute: pydicom's private dictionary knows its VR; UN is what JSON allows
        assert _equivalent(mine.get(tag), elem), (tag, mine.get(tag), elem)


def test_japanese_person_name_groups() -> None:
    mine = dataset_to_json(_read(os.path.join(DATA, "charset_files", "chrH31.dcm")))
    name = mine["00100010"]["Value"][0]
    assert name["Alphabetic"] == "Yamada^Tarou"
    assert name["Ideographic"] == "山田^太郎"
    assert name["Phonetic"] == "やまだ^たろう"


def test_value_representations() -> None:
    ds = make_dataset(
        ImageType=["ORIGINAL", "PRIMARY", "AXIAL"],
        SliceThickness="2.50",
        ImagePositionPatient=["-125.0", "-1e2", "30"],
        InstanceNumber="7",
        OtherPatientNames=["Doe^J", "Roe^R=ロウ^アール"],
        FrameIncrementPointer=0x00181063,
        WindowCenter=["40", "400"],
    )
    ds.add_new(0x00091010, "LO", "ACME")  # private creator
    ds.add_new(0x00281052, "DS", "-1024")
    ds.add_new(0x00189328, "FD", 12.5)
    ds.add_new(0x00280106, "US", 3)
    ds.ProcedureCodeSequence = [Dataset()]
    ds.ProcedureCodeSequence[0].CodeValue = "CTHEAD"
    ds.ProcedureCodeSequence[0].CodingSchemeDesignator = "LN"
    ds.SpecificCharacterSet = "ISO_IR 192"
    doc = dataset_to_json(_read(to_part10(ds)))
    assert doc["00080008"] == {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY", "AXIAL"]}
    assert doc["00180050"] == {"vr": "DS", "Value": [2.5]}
    assert doc["00200032"] == {"vr": "DS", "Value": [-125.0, -100.0, 30]}
    assert doc["00200013"] == {"vr": "IS", "Value": [7]}
    assert doc["00101001"]["Value"][1] == {"Alphabetic": "Roe^R", "Ideographic": "ロウ^アール"}
    assert doc["00280009"] == {"vr": "AT", "Value": ["00181063"]}
    assert doc["00091010"] == {"vr": "LO", "Value": ["ACME"]}
    assert doc["00189328"] == {"vr": "FD", "Value": [12.5]}
    assert doc["00280106"] == {"vr": "US", "Value": [3]}
    assert doc["00081032"]["Value"][0]["00080100"] == {"vr": "SH", "Value": ["CTHEAD"]}
    assert "7FE00010" not in doc


def test_implicit_vr_and_big_endian() -> None:
    from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

    for syntax in (ImplicitVRLittleEndian, ExplicitVRBigEndian):
        ds = make_dataset(
            Rows=512, SeriesNumber=3, PatientName="Müller^Jörg", SpecificCharacterSet="ISO_IR 100"
        )
        doc = dataset_to_json(_read(to_part10(ds, syntax)))
        assert doc["00280010"] == {"vr": "US", "Value": [512]}
        assert doc["00200011"] == {"vr": "IS", "Value": [3]}
        assert doc["00100010"]["Value"] == [{"Alphabetic": "Müller^Jörg"}]


def test_un_with_a_known_tag_is_read_as_its_real_vr() -> None:
    """PS3.5 6.2.2: a known attribute sent as UN holds its value as implicit VR little endian."""

    def un(group: int, element: int, value: bytes) -> bytes:
        return struct.pack("<HH2sHI", group, element, b"UN", 0, len(value)) + value

    # Appended after the last element (PixelRepresentation, 0028,0103), so tags stay in ascending order.
    data = to_part10(make_dataset(PixelData=None))
    data += un(0x0032, 0x1060, b"CT HEAD ")  # Requested Procedure Description, LO
    data += un(0x0040, 0x9225, struct.pack("<d", 2.5))  # Real World Value Slope, FD
    doc = dataset_to_json(_read(data))
    assert doc["00321060"] == {"vr": "LO", "Value": ["CT HEAD"]}
    assert doc["00409225"] == {"vr": "FD", "Value": [2.5]}


def test_bulk_values_are_left_out_and_small_ones_inline() -> None:
    ds = make_dataset()
    ds.add_new(0x00420011, "OB", b"\x01" * 5000)  # EncapsulatedDocument-sized
    ds.add_new(0x00091011, "OB", b"\x02" * 8)
    doc = dataset_to_json(_read(to_part10(ds)), bulk_threshold=1024)
    assert "00420011" not in doc
    assert doc["00091011"] == {"vr": "OB", "InlineBinary": "AgICAgICAgI="}


def test_empty_values() -> None:
    ds = make_dataset(AccessionNumber="", PatientName="")
    doc = dataset_to_json(_read(to_part10(ds)))
    assert doc["00080050"] == {"vr": "SH"}
    assert doc["00100010"] == {"vr": "PN"}
