"""The single-pass Part 10 parser agrees with the pydicom path and catches objects cut short."""

from __future__ import annotations

import glob
import io
import os
import warnings
from pathlib import Path

import data_store
import pydicom
import pydicom.data
import pytest

from lightbox.formats import part10
from lightbox.formats.dicom_json import dataset_to_json
from tests.support.dicom import make_dataset, to_part10

SAMPLES = sorted(
    p
    for p in glob.glob(os.path.join(os.path.dirname(pydicom.data.__file__), "**", "*"), recursive=True)
    + glob.glob(os.path.join(os.path.dirname(data_store.__file__), "data", "*"))
    if os.path.isfile(p) and Path(p).read_bytes()[128:132] == b"DICM"
)
KNOWN_FALLBACK = {
    "image_dfl.dcm",
    "meta_missing_tsyntax.dcm",
    "bad_sequence.dcm",
    "rtdose_rle.dcm",
    "rtdose_rle_1frame.dcm",
}
KNOWN_TRUNCATED = {
    "rtplan_truncated.dcm",
    "MR_truncated.dcm",
    "DICOMDIR-nooffset",
    "emri_small_jpeg_2k_lossless_too_short.dcm",
}


def _pydicom_json(data: bytes) -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, defer_size=1 << 20)
        return dataset_to_json(ds)


def _same_but_empty_components(fast: object, slow: object) -> bool:
    """pydicom converts Specific Character Set itself and keeps '' for an empty value; JSON says null."""
    if isinstance(fast, dict) and isinstance(slow, dict):
        return fast.keys() == slow.keys() and all(_same_but_empty_components(fast[k], slow[k]) for k in fast)
    if isinstance(fast, list) and isinstance(slow, list):
        return len(fast) == len(slow) and all(
            _same_but_empty_components(a, b) for a, b in zip(fast, slow, strict=True)
        )
    return fast == slow or (fast is None and slow == "")


@pytest.mark.parametrize("path", SAMPLES, ids=[os.path.basename(p) for p in SAMPLES])
def test_agrees_with_pydicom_on_every_sample(path: str) -> None:
    data = Path(path).read_bytes()
    slow = _pydicom_json(data)
    try:
        header = part10.parse(io.BytesIO(data))
    except part10.NotHandled:
        # deflated data sets, sequences sent as UN and a missing transfer syntax take the pydicom path
        assert os.path.basename(path) in KNOWN_FALLBACK
        return
    except part10.Truncated:
        assert os.path.basename(path) in KNOWN_TRUNCATED
        return
    assert os.path.basename(path) not in KNOWN_TRUNCATED | KNOWN_FALLBACK
    assert _same_but_empty_components(header.dataset, slow)


def test_cut_anywhere_is_caught() -> None:
    data = Path(os.path.dirname(pydicom.data.__file__), "test_files", "CT_small.dcm").read_bytes()
    header = part10.parse(io.BytesIO(data))
    assert header.has_pixel_data and header.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    caught = 0
    for cut in range(140, len(data), 97):
        try:
            result = part10.parse(io.BytesIO(data[:cut]))
        except (part10.Truncated, part10.NotHandled):
            caught += 1
        else:
            # A cut exactly between elements leaves valid framing; the image then lacks its pixel data.
            assert not result.has_pixel_data
    assert caught > 0


def test_encapsulated_pixel_data_must_reach_its_delimiter() -> None:
    path = Path(os.path.dirname(pydicom.data.__file__), "test_files", "SC_rgb_jpeg_dcmtk.dcm")
    data = path.read_bytes()
    assert part10.parse(io.BytesIO(data)).has_pixel_data
    with pytest.raises(part10.Truncated):
        part10.parse(io.BytesIO(data[:-8]))  # no sequence delimiter


def test_meta_and_big_endian_and_implicit() -> None:
    from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

    for syntax in (ImplicitVRLittleEndian, ExplicitVRBigEndian):
        ds = make_dataset(PatientName="Ünal^Ayşe", SpecificCharacterSet="ISO_IR 192", SeriesNumber=4)
        header = part10.parse(io.BytesIO(to_part10(ds, syntax)))
        assert header.transfer_syntax_uid == syntax
        assert header.meta["00020003"]["Value"] == [ds.SOPInstanceUID]
        assert header.dataset["00100010"]["Value"] == [{"Alphabetic": "Ünal^Ayşe"}]
        assert header.dataset["00200011"]["Value"] == [4]
        assert "7FE00010" not in header.dataset and header.has_pixel_data


def test_not_part10() -> None:
    with pytest.raises(part10.NotHandled):
        part10.parse(io.BytesIO(b"not dicom" * 100))


@pytest.mark.parametrize("path", SAMPLES, ids=[os.path.basename(p) for p in SAMPLES])
def test_stop_at_pixel_data_then_check_rest_agrees_with_one_pass(path: str) -> None:
    """The header parsed while the rest is still arriving, and the rest checked at the end, decide as one
    pass over the whole object does."""
    data = Path(path).read_bytes()
    try:
        whole: part10.Header | Exception = part10.parse(io.BytesIO(data))
    except (part10.NotHandled, part10.Truncated) as exc:
        whole = exc
    try:
        head = part10.parse(io.BytesIO(data), stop_at_pixel_data=True)
        if head.pixel_data_offset is not None:
            part10.check_rest(io.BytesIO(data), head)
    except (part10.NotHandled, part10.Truncated) as exc:
        assert type(exc) is type(whole), os.path.basename(path)
        return
    assert isinstance(whole, part10.Header), os.path.basename(path)
    assert head.dataset == whole.dataset and head.has_pixel_data == whole.has_pixel_data


LAYOUT = frozenset((0x00280008, 0x00280010, 0x00280011, 0x00280100, 0x7FE00001, 0x00100010))


@pytest.mark.parametrize("path", SAMPLES, ids=[os.path.basename(p) for p in SAMPLES])
def test_a_parse_of_a_few_tags_agrees_with_the_whole_header(path: str) -> None:
    """Stepping over the other elements (sequences unread) finds the same values and the same pixel data."""
    data = Path(path).read_bytes()
    try:
        whole = part10.parse(io.BytesIO(data), stop_at_pixel_data=True)
    except (part10.NotHandled, part10.Truncated):
        return  # what the whole parse refuses, the frame reader sends through pydicom
    few = part10.parse(io.BytesIO(data), stop_at_pixel_data=True, only=LAYOUT)
    decoding = {0x00080005, 0x00280103}  # Specific Character Set, Pixel Representation: read as well
    wanted = LAYOUT | decoding
    assert few.dataset == {tag: v for tag, v in whole.dataset.items() if int(tag, 16) in wanted}
    assert few.pixel_data_offset == whole.pixel_data_offset
    assert few.transfer_syntax_uid == whole.transfer_syntax_uid and few.meta == whole.meta


def test_check_rest_catches_a_cut_in_the_pixel_data() -> None:
    data = Path(os.path.dirname(pydicom.data.__file__), "test_files", "CT_small.dcm").read_bytes()
    offset = part10.parse(io.BytesIO(data), stop_at_pixel_data=True).pixel_data_offset
    assert offset is not None
    head = part10.parse(io.BytesIO(data[: offset + 16]), stop_at_pixel_data=True)  # what arrived so far
    assert head.pixel_data_offset == offset and head.has_pixel_data
    part10.check_rest(io.BytesIO(data), head)
    with pytest.raises(part10.Truncated):
        part10.check_rest(io.BytesIO(data[:-1]), head)
