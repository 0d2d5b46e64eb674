"""Frames read from stored objects (dicomweb/frames.py): the bytes pydicom finds, from files in every kind
of encoding; encapsulated frames as stored or decoded; the offset tables; damaged and frameless objects."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended, get_frame
from pydicom.uid import RLELossless

from lightbox.dicomweb import frames
from lightbox.domain.errors import NotFound
from tests.support.dicom import make_dataset, to_part10


def _file(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, name
    return Path(path)


def _frames(ds: Dataset) -> int:
    return int(ds.get("NumberOfFrames") or 1)


def _decoded(ds: Dataset, index: int) -> bytes:
    pixels = ds.pixel_array if _frames(ds) > 1 else ds.pixel_array[np.newaxis]
    return pixels[index].astype(pixels.dtype.newbyteorder("<")).tobytes()


def _read(blob: bytes | Path, index: int, decode: bool = False) -> bytes:
    with io.BytesIO(blob) if isinstance(blob, bytes) else open(blob, "rb") as f:
        layout = frames.pixel_data(f)
        return frames.read_frame(f, layout, index, decode=decode)


@pytest.mark.parametrize(
    "name",
    [
        "emri_small.dcm",  # 10 frames, 16 bits
        "SC_rgb_2frame.dcm",  # 2 RGB frames
        "SC_ybr_full_422_uncompressed.dcm",  # 4:2:2 subsampled: two samples a pixel
        "liver.dcm",  # 1 bit, 3 frames
        "rtdose.dcm",  # implicit VR, 15 frames, 32 bits
    ],
)
def test_native_frames_are_slices_of_the_pixel_data(name: str) -> None:
    path = _file(name)
    ds = dcmread(path)
    count = _frames(ds)
    size = len(ds.PixelData) // count
    with open(path, "rb") as f:
        layout = frames.pixel_data(f)
        assert layout.number_of_frames == count and not layout.encapsulated
        for index in range(count):
            assert frames.read_frame(f, layout, index) == ds.PixelData[index * size : (index + 1) * size]


@pytest.mark.parametrize(
    "name", ["emri_small_big_endian.dcm", "SC_rgb_small_odd_big_endian.dcm", "image_dfl.dcm"]
)
def test_big_endian_and_deflated_frames_come_as_little_endian_values(name: str) -> None:
    ds = dcmread(_file(name))
    for index in range(_frames(ds)):
        assert _read(_file(name), index) == _decoded(ds, index)


@pytest.mark.parametrize(
    "name",
    [
        "emri_small_jpeg_2k_lossless.dcm",
        "emri_small_RLE.dcm",
        "emri_small_jpeg_ls_lossless.dcm",
        "JPEG2000.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
    ],
)
def test_encapsulated_frames_as_stored_and_decoded(name: str) -> None:
    path = _file(name)
    ds = dcmread(path)
    count = _frames(ds)
    for index in sorted({0, count // 2, count - 1}):
        assert _read(path, index) == get_frame(ds.PixelData, index, number_of_frames=count)
        assert _read(path, index, decode=True) == _decoded(ds, index)


def test_encapsulated_frames_of_objects_read_through_pydicom_stay_as_stored() -> None:
    """An object whose header only pydicom reads: its compressed frames are still cut out, not decoded
    (they go out labelled with their stored syntax)."""
    path = _file("emri_small_RLE.dcm")
    ds = dcmread(path)
    with open(path, "rb") as f:
        layout = replace(frames.pixel_data(f), direct=False)
        assert frames.read_frame(f, layout, 3) == get_frame(ds.PixelData, 3, number_of_frames=10)
        assert frames.read_frame(f, layout, 3, decode=True) == _decoded(ds, 3)


def _encapsulated(pixel_data: bytes, count: int, **attrs: object) -> bytes:
    ds = make_dataset(
        Rows=2,
        Columns=2,
        BitsAllocated=8,
        BitsStored=8,
        HighBit=7,
        NumberOfFrames=count,
        PixelData=None,
        **attrs,
    )
    ds.add_new(0x7FE00010, "OB", pixel_data)
    ds["PixelData"].is_undefined_length = True
    return to_part10(ds, RLELossless)


def test_basic_offset_table_joins_the_fragments_of_a_frame() -> None:
    stand_ins = [bytes([n + 1]) * (10 + n) for n in range(5)]  # not decodable: only cut out
    blob = _encapsulated(encapsulate(stand_ins, fragments_per_frame=3, has_bot=True), len(stand_ins))
    assert [_read(blob, n).rstrip(b"\x00") for n in range(5)] == [f.rstrip(b"\x00") for f in stand_ins]


def test_extended_offset_table_of_many_frames() -> None:
    """Past 128 frames the table is over 1 kB, a bulk value: it is still read (PS3.5 A.4)."""
    stand_ins = [n.to_bytes(2, "little") * 7 for n in range(300)]
    pixel_data, offsets, lengths = encapsulate_extended(stand_ins)
    blob = _encapsulated(
        pixel_data, len(stand_ins), ExtendedOffsetTable=offsets, ExtendedOffsetTableLengths=lengths
    )
    with io.BytesIO(blob) as f:
        layout = frames.pixel_data(f)
        assert layout.extended_offsets == (offsets, lengths)
        for index in (0, 150, 299):
            assert frames.read_frame(f, layout, index) == stand_ins[index]


def test_one_bit_frames_that_do_not_start_on_a_byte() -> None:
    """3 x 3 one-bit frames are 9 bits each: frame 2 starts at bit 9 and comes out shifted to bit 0."""
    bits = np.random.default_rng(7).integers(0, 2, size=4 * 9, dtype=np.uint8)
    packed = np.packbits(bits, bitorder="little").tobytes()
    ds = make_dataset(
        Rows=3,
        Columns=3,
        BitsAllocated=1,
        BitsStored=1,
        HighBit=0,
        NumberOfFrames=4,
        PixelData=packed + b"\x00",
    )
    blob = to_part10(ds)
    for index in range(4):
        frame = np.unpackbits(np.frombuffer(_read(blob, index), np.uint8), bitorder="little")
        assert list(frame[:9]) == list(bits[index * 9 : index * 9 + 9])


def test_out_of_range_and_frameless_objects() -> None:
    with open(_file("emri_small.dcm"), "rb") as f:
        layout = frames.pixel_data(f)
        with pytest.raises(NotFound):
            frames.read_frame(f, layout, 10)
    with open(_file("rtplan.dcm"), "rb") as f, pytest.raises(frames.NoPixelData):
        frames.pixel_data(f)


def test_pixel_data_shorter_than_its_frames_is_damaged() -> None:
    ds = make_dataset(Rows=4, Columns=4, NumberOfFrames=3)  # 32 bytes: one frame of 4 x 4 x 16 bits
    with io.BytesIO(to_part10(ds)) as f, pytest.raises(frames.DamagedPixelData):
        frames.pixel_data(f)
