"""Rendering for display (dicomweb/render.py): the VOI window of PS3.3 C.11.2.1.2 after the rescale,
MONOCHROME1 inverted, colour scaled to 8 bits, and JPEGs of real files at their size."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from lightbox.dicomweb import render
from tests.support.dicom import make_dataset, to_part10


def _grey(**attrs: object) -> Dataset:
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = 16
    ds.PixelRepresentation = 0
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    return ds


RAMP = np.arange(0, 1001, dtype=np.uint16).reshape(1, -1)


def test_linear_window_of_ps3_3() -> None:
    """Center 500, width 401: 300 and below black, 700 and above white, linear between."""
    out = render.to_display(RAMP, _grey(), render.Window(500, 401))
    assert out[0, 0] == out[0, 300] == 0
    assert out[0, 700] == out[0, 1000] == 255
    assert out[0, 500] == 128
    assert np.all(np.diff(out[0, 300:701].astype(int)) >= 0)


def test_the_objects_window_after_the_rescale() -> None:
    """Stored 0..1000 with intercept -1000 are -1000..0: a window at -500 centers them."""
    ds = _grey(RescaleSlope=1, RescaleIntercept=-1000, WindowCenter=[-500, 40], WindowWidth=[1001, 400])
    out = render.to_display(RAMP, ds)
    assert out[0, 0] == 0 and out[0, 1000] == 255 and abs(int(out[0, 500]) - 128) <= 1


def test_asked_window_wins_over_the_objects() -> None:
    ds = _grey(WindowCenter=500, WindowWidth=1000)
    out = render.to_display(RAMP, ds, render.Window(100, 2))
    assert out[0, 99] == 0 and out[0, 101] == 255


def test_no_window_stretches_the_frame() -> None:
    out = render.to_display(RAMP + 200, _grey())
    assert out.min() == 0 and out.max() == 255


def test_monochrome1_is_inverted() -> None:
    out = render.to_display(RAMP, _grey(PhotometricInterpretation="MONOCHROME1"))
    assert out[0, 0] == 255 and out[0, 1000] == 0


def test_sigmoid_voi_function() -> None:
    ds = _grey(WindowCenter=500, WindowWidth=200, VOILUTFunction="SIGMOID")
    out = render.to_display(RAMP, ds)
    assert out[0, 500] == 128 and out[0, 0] == 0 and out[0, 1000] == 255


def test_sixteen_bit_colour_is_scaled() -> None:
    rgb = np.zeros((2, 2, 3), dtype=np.uint16)
    rgb[0, 0] = (65535, 32768, 0)
    ds = Dataset()
    ds.PhotometricInterpretation, ds.BitsStored = "RGB", 16
    out = render.to_display(rgb, ds)
    assert out.dtype == np.uint8 and tuple(out[0, 0]) == (255, 128, 0)


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("CT_small.dcm", "L"),  # rescaled CT
        ("MR_small_RLE.dcm", "L"),
        ("JPEG2000.dcm", "L"),
        ("SC_rgb_jpeg_dcmtk.dcm", "RGB"),  # YBR JPEG
        ("OBXXXX1A.dcm", "RGB"),  # palette colour
        ("vlut_04.dcm", "L"),  # VOI LUT sequence
        ("mlut_18.dcm", "L"),  # Modality LUT sequence
        ("image_dfl.dcm", "L"),  # deflated
    ],
)
def test_jpegs_of_real_files(name: str, mode: str) -> None:
    path = get_testdata_file(name)
    assert path is not None
    with open(path, "rb") as f:
        arr, ds = render.read_frame(f)
        f.seek(0)
        jpeg = render.render_jpeg(f, quality=80)
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.mode == mode
    assert image.size == (ds.Columns, ds.Rows) == (arr.shape[1], arr.shape[0])


def test_a_later_frame_is_rendered() -> None:
    frames = np.stack([np.full((4, 4), value, dtype=np.uint16) for value in (0, 1000)])
    ds = make_dataset(NumberOfFrames=2, PixelData=frames.tobytes(), WindowCenter=500, WindowWidth=100)
    with io.BytesIO(to_part10(ds)) as f:
        second = np.asarray(Image.open(io.BytesIO(render.render_jpeg(f, 1))))
    assert second.min() >= 250  # the white frame


def test_an_object_without_pixel_data_cannot_be_rendered() -> None:
    path = get_testdata_file("rtplan.dcm")
    assert path is not None
    with open(path, "rb") as f, pytest.raises(render.CannotRender):
        render.render_jpeg(f)
