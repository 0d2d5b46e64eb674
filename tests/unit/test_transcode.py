"""Transcode: stored objects decompressed and re-encoded in explicit or implicit VR little endian, checked
against pydicom's own decoding of the originals (its bundled test files and pydicom-data)."""

from __future__ import annotations

import zlib
from io import BytesIO
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filereader import read_dataset
from pydicom.pixels import apply_color_lut
from pydicom.uid import (
    HEVCMP51,
    HTJ2K,
    JPEG2000,
    MPEG2MPML,
    MPEG4HP41,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
)

from lightbox.services.transcode import (
    COMPRESSED_TARGETS,
    DEFLATED,
    TARGETS,
    CannotConvert,
    can_convert,
    compress_frame,
    convert,
)
from tests.support.dicom import make_dataset, to_part10, video_part10

# Decoded with the pylibjpeg plugins (RLE also natively); big endian and deflated need no decoder
FILES = [
    "JPEG2000.dcm",  # JPEG 2000, signed 16-bit
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, YBR_FULL: decoded to RGB
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",  # JPEG baseline, YBR_FULL_422: decoded to RGB
    "JPGExtended.dcm",  # JPEG extended, 12-bit
    "JPGLosslessP14SV1_1s_1f_8b.dcm",  # JPEG lossless, first-order prediction (pydicom-data)
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "JPEGLSNearLossless_16.dcm",  # JPEG-LS near-lossless
    "MR_small_RLE.dcm",  # RLE
    "SC_rgb_rle_2frame.dcm",  # RLE, colour, two frames
    "SC_rgb_small_odd_big_endian.dcm",  # explicit big endian, odd-length 8-bit RGB
    "MR_small_bigendian.dcm",  # explicit big endian, 16-bit
    "emri_small_big_endian.dcm",  # explicit big endian, 16-bit, ten frames (pydicom-data)
    "rtdose_expb.dcm",  # explicit big endian, 32-bit, fifteen frames
    "SC_rgb_expb_16bit.dcm",  # explicit big endian, 16-bit RGB declared OB (pydicom-data)
    "liver_expb_1frame.dcm",  # explicit big endian, 1-bit segmentation
    "gdcm-US-ALOKA-16_big.dcm",  # explicit big endian, segmented palette lookup tables (pydicom-data)
    "image_dfl.dcm",  # deflated explicit little endian
]
# What decoding may change: the Image Pixel module (PS3.3 C.7.6.3) as pydicom sets it for native data
DECODED = {"PixelData", "PhotometricInterpretation", "PlanarConfiguration", "NumberOfFrames"}


def _convert(path: str, target: str) -> bytes:
    with open(path, "rb") as f:
        return convert(f, target)


def _read(data: bytes, target: str) -> Dataset:
    ds = read_dataset(BytesIO(data), target == ImplicitVRLittleEndian, True)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(target)
    return ds


WORDS = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _attributes(ds: Dataset, public_only: bool, byte_order: str = "<") -> dict[Any, Any]:
    """Every attribute's value by path, nested items included, words as numbers; group lengths and decoded
    attributes left out. Implicit VR hides private VRs from a reader: those are compared in explicit only."""
    out: dict[Any, Any] = {}
    for elem in ds:
        if elem.tag.element == 0 or elem.keyword in DECODED or (public_only and elem.tag.is_private):
            continue
        if elem.VR == "SQ":
            out[elem.tag] = [_attributes(item, public_only, byte_order) for item in elem.value]
        elif elem.VR in WORDS and elem.value:
            out[elem.tag] = np.frombuffer(elem.value, f"{byte_order}u{WORDS[elem.VR]}").tolist()
        else:
            out[elem.tag] = elem.value
    return out


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", FILES)
def test_pixel_identical_and_attributes_kept(name: str, target: str) -> None:
    path = get_testdata_file(name)
    assert path is not None, name
    original = dcmread(path)
    source = original.file_meta.TransferSyntaxUID
    assert source not in TARGETS and can_convert(source, target)

    converted = _read(_convert(path, target), target)

    expected = original.pixel_array
    assert converted.pixel_array.dtype == expected.dtype.newbyteorder("=")  # big endian: read as such
    assert np.array_equal(converted.pixel_array, expected)
    assert "PixelData" in converted and not converted["PixelData"].is_undefined_length
    public_only = target == ImplicitVRLittleEndian
    byte_order = "<" if original.original_encoding[1] else ">"
    assert _attributes(converted, public_only) == _attributes(original, public_only, byte_order)
    assert converted.SOPInstanceUID == original.SOPInstanceUID  # the same image, another encoding


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+s2.dcm"])
def test_ycbcr_jpeg_becomes_rgb(name: str) -> None:
    path = get_testdata_file(name)
    assert path is not None
    assert dcmread(path).PhotometricInterpretation.startswith("YBR_FULL")
    converted = _read(_convert(path, ExplicitVRLittleEndian), ExplicitVRLittleEndian)
    assert converted.PhotometricInterpretation == "RGB"
    assert len(converted.PixelData) == converted.Rows * converted.Columns * 3


def test_big_endian_lookup_tables_swapped() -> None:
    """Palette lookup tables (OW) are words: swapped, they give the colours of the little endian original."""
    path = get_testdata_file("gdcm-US-ALOKA-16_big.dcm")
    assert path is not None
    original = dcmread(path)
    converted = _read(_convert(path, ExplicitVRLittleEndian), ExplicitVRLittleEndian)
    colours = apply_color_lut(original.pixel_array, original)
    assert np.array_equal(apply_color_lut(converted.pixel_array, converted), colours)
    assert colours.max() > 0

    # pydicom reads a plain (not segmented) big endian table unswapped: compare with the little endian twin
    big, little = get_testdata_file("OBXXXX1A_expb.dcm"), get_testdata_file("OBXXXX1A.dcm")
    assert big is not None and little is not None
    twin = dcmread(little)
    converted = _read(_convert(big, ExplicitVRLittleEndian), ExplicitVRLittleEndian)
    assert converted.RedPaletteColorLookupTableData == twin.RedPaletteColorLookupTableData
    assert np.array_equal(
        apply_color_lut(converted.pixel_array, converted), apply_color_lut(twin.pixel_array, twin)
    )


def test_big_endian_samples_swapped_whatever_the_vr() -> None:
    """16-bit samples in big endian, declared OB as some writers do: still 16-bit words to swap."""
    ds = make_dataset(PixelData=bytes(range(32)))
    ds["PixelData"].VR = "OB"
    blob = to_part10(ds, ExplicitVRBigEndian)
    original = dcmread(BytesIO(blob))
    converted = _read(convert(BytesIO(blob), ExplicitVRLittleEndian), ExplicitVRLittleEndian)
    assert original.pixel_array[0, 0] == 0x0001  # bytes 00 01, read big endian
    assert np.array_equal(converted.pixel_array, original.pixel_array)


def test_output_is_the_data_set_in_the_target_encoding() -> None:
    path = get_testdata_file("MR_small_RLE.dcm")
    assert path is not None
    explicit = _convert(path, ExplicitVRLittleEndian)
    implicit = _convert(path, ImplicitVRLittleEndian)
    assert explicit[:2] == implicit[:2] == b"\x08\x00"  # no preamble, no File Meta Information
    assert explicit[4:6] == b"CS"  # (0008,0008) Image Type with its VR
    assert implicit[4:8] != b"CS\x00\x00" and int.from_bytes(implicit[4:8], "little") < 1024


def test_nested_encapsulated_icon_is_decoded() -> None:
    """PS3.5 A.4: an Icon Image Sequence item may hold encapsulated pixel data too."""
    main_path, icon_path = get_testdata_file("MR_small_RLE.dcm"), get_testdata_file("SC_rgb_rle.dcm")
    assert main_path is not None and icon_path is not None
    ds, icon_source = dcmread(main_path), dcmread(icon_path)
    icon = Dataset()
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated"):
        setattr(icon, keyword, icon_source[keyword].value)
    for keyword in ("BitsStored", "HighBit", "PixelRepresentation", "PlanarConfiguration", "PixelData"):
        setattr(icon, keyword, icon_source[keyword].value)
    icon["PixelData"].VR = "OB"
    icon["PixelData"].is_undefined_length = True
    ds.IconImageSequence = [icon]
    buf = BytesIO()
    ds.save_as(buf)

    converted = _read(convert(BytesIO(buf.getvalue()), ExplicitVRLittleEndian), ExplicitVRLittleEndian)
    nested = converted.IconImageSequence[0]
    assert not nested["PixelData"].is_undefined_length
    nested.file_meta = converted.file_meta
    assert np.array_equal(nested.pixel_array, icon_source.pixel_array)
    assert np.array_equal(converted.pixel_array, ds.pixel_array)


def test_can_convert() -> None:
    for target in TARGETS:
        assert can_convert(ExplicitVRLittleEndian, target) and can_convert(ImplicitVRLittleEndian, target)
        assert can_convert(JPEGBaseline8Bit, target) and can_convert(JPEG2000, target)
        assert can_convert(RLELossless, target) and can_convert(HTJ2KLossless, target)
        assert can_convert(HTJ2K, target)
        for video in (MPEG2MPML, MPEG4HP41, HEVCMP51):  # no decoder, and no frame-by-frame meaning
            assert not can_convert(video, target)
        assert not can_convert("1.2.826.0.1.3680043.2.1143.99", target)  # a private syntax
    assert not can_convert(ExplicitVRLittleEndian, JPEG2000)  # never lossy
    assert not can_convert(ExplicitVRLittleEndian, HTJ2KLossless)  # no encoder
    assert can_convert(JPEG2000, ExplicitVRLittleEndian)
    for target in (*COMPRESSED_TARGETS, DEFLATED):
        assert can_convert(ExplicitVRBigEndian, target) and can_convert(JPEGBaseline8Bit, target)
        assert not can_convert(MPEG2MPML, target)


def _video() -> bytes:
    return video_part10()


def test_video_cannot_be_converted() -> None:
    with pytest.raises(CannotConvert):
        convert(BytesIO(_video()), ExplicitVRLittleEndian)


def test_damaged_pixel_data_cannot_be_converted() -> None:
    path = get_testdata_file("JPEG2000.dcm")
    assert path is not None
    ds: FileDataset = dcmread(path)
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(64)])  # a JPEG 2000 header, then nothing
    buf = BytesIO()
    ds.save_as(buf)
    with pytest.raises(CannotConvert):
        convert(BytesIO(buf.getvalue()), ExplicitVRLittleEndian)


def test_only_lossless_targets() -> None:
    path = get_testdata_file("MR_small_RLE.dcm")
    assert path is not None
    with pytest.raises(ValueError, match="not a syntax Lightbox writes"):
        _convert(path, JPEG2000)


# --- compressed on request (WADO-RS) ---------------------------------------------------------------------

COMPRESS_FROM = [
    "CT_small.dcm",  # explicit little endian, 16-bit
    "MR_small_bigendian.dcm",  # explicit big endian: swapped first
    "SC_rgb.dcm",  # 8-bit RGB
    "SC_rgb_16bit.dcm",  # 16-bit RGB
    "emri_small.dcm",  # ten frames
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline YBR_FULL: decoded to RGB, then compressed losslessly
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "MR_small_RLE.dcm",  # RLE
]


def _decoded(data: bytes, target: str) -> Dataset:
    ds = _read(data, target)
    assert ds["PixelData"].is_undefined_length  # encapsulated (PS3.5 A.4)
    return ds


# Sources already in one of the targets: that pair would be no conversion at all
STORED_IN = {"MR_small_jp2klossless.dcm": "1.2.840.10008.1.2.4.90", "MR_small_RLE.dcm": "1.2.840.10008.1.2.5"}


@pytest.mark.parametrize(
    ("name", "target"),
    [
        (name, target)
        for name in COMPRESS_FROM
        for target in COMPRESSED_TARGETS
        if STORED_IN.get(name) != target
    ],
)
def test_compressed_losslessly(name: str, target: str) -> None:
    path = get_testdata_file(name)
    assert path is not None
    original = dcmread(path)
    assert original.file_meta.TransferSyntaxUID != target
    converted = _decoded(_convert(path, target), target)
    assert np.array_equal(converted.pixel_array, original.pixel_array)
    assert converted.SOPInstanceUID == original.SOPInstanceUID
    assert converted.get("NumberOfFrames", 1) == original.get("NumberOfFrames", 1)


def test_deflated() -> None:
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    data = _convert(path, DEFLATED)
    explicit = zlib.decompress(data, -zlib.MAX_WBITS)  # raw deflate, no zlib header (PS3.5 A.5)
    assert explicit == _convert(path, ExplicitVRLittleEndian)
    assert len(data) < len(explicit)


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("SC_rgb_small_odd.dcm", "1.2.840.10008.1.2.4.90"),  # 3 x 3: too small for OpenJPEG
        ("rtdose.dcm", "1.2.840.10008.1.2.5"),  # 32-bit samples: beyond RLE
        ("liver.dcm", "1.2.840.10008.1.2.4.80"),  # 1-bit segmentation
    ],
)
def test_what_an_encoder_refuses_cannot_be_converted(name: str, target: str) -> None:
    path = get_testdata_file(name)
    assert path is not None
    assert can_convert(dcmread(path).file_meta.TransferSyntaxUID, target)  # the syntaxes allow it
    with pytest.raises(CannotConvert):
        _convert(path, target)


def test_float_pixel_data_is_not_compressed() -> None:
    ds = make_dataset()
    del ds.PixelData
    ds.BitsAllocated = 32
    ds.FloatPixelData = np.zeros(16, "<f4").tobytes()
    blob = to_part10(ds, ExplicitVRLittleEndian)
    with pytest.raises(CannotConvert, match="float"):
        convert(BytesIO(blob), RLELossless)


@pytest.mark.parametrize("target", COMPRESSED_TARGETS)
@pytest.mark.parametrize(
    "name", ["emri_small.dcm", "MR_small_RLE.dcm", "SC_rgb_rle_2frame.dcm", "OBXXXX1A.dcm"]
)
def test_frame_compressed_losslessly(name: str, target: str) -> None:
    path = get_testdata_file(name)
    assert path is not None
    original = dcmread(path)
    frames = int(original.get("NumberOfFrames", 1))
    with open(path, "rb") as f:
        frame = compress_frame(f, frames - 1, target)  # the last frame, the file read as it is
    ds = dcmread(path)
    ds.file_meta.TransferSyntaxUID = UID(target)
    ds.PixelData, ds.NumberOfFrames = encapsulate([frame]), 1
    ds["PixelData"].VR = "OB"
    if "PlanarConfiguration" in ds:
        ds.PlanarConfiguration = 0
    expected = original.pixel_array[frames - 1] if frames > 1 else original.pixel_array
    assert np.array_equal(ds.pixel_array, expected)


def test_frame_whose_colour_space_decoding_changes_is_not_compressed() -> None:
    path = get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")  # YBR_FULL JPEG: pydicom decodes it to RGB
    assert path is not None
    with open(path, "rb") as f, pytest.raises(CannotConvert, match="colour space"):
        compress_frame(f, 0, RLELossless)
