"""The archive's choice among pydicom's installed codecs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.pixels import get_decoder
from pydicom.uid import JPEGLSLossless

from lightbox.app import build_archive
from lightbox.config import load_settings


def test_the_archive_decodes_jpeg_ls_with_charls(tmp_path: Path) -> None:
    build_archive(load_settings(data_dir=tmp_path / "data")).close()
    assert get_decoder(JPEGLSLossless).available_plugins == ("pyjpegls",)
    # and it decodes what libjpeg decoded: the same pixels as the uncompressed original
    compressed = pydicom.dcmread(get_testdata_file("emri_small_jpeg_ls_lossless.dcm"))
    original = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    assert np.array_equal(compressed.pixel_array, original.pixel_array)
