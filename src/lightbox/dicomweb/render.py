"""Rendering a frame for display: 8-bit greyscale or RGB pixels, then a consumer image (JPEG).

Used by WADO-URI's image/jpeg (PS3.18 9) and meant for the rendered and thumbnail resources of WADO-RS
(rendered media types, PS3.18 8.7.4). Greyscale goes through the Modality LUT (rescale slope and
intercept), then a VOI window (PS3.3 C.11.2.1.2): the one asked for, else the object's first Window
Center / Width, else its VOI LUT, else the frame's own minimum to maximum; MONOCHROME1 is inverted so that
it looks as it should. Colour frames come out of pydicom as RGB (YBR converted, palettes applied) and are
scaled to 8 bits.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, pixel_array

from lightbox.domain.errors import LightboxError

DEFAULT_QUALITY = 90  # JPEG quality when the client names none: the server's choice


class CannotRender(LightboxError):
    """The object has no image this can render (no pixel data, or a syntax no decoder reads)."""

    http_status = 406


class RenderFailed(LightboxError):
    """The pixel data could not be decoded (damaged)."""


@dataclass(frozen=True, slots=True)
class Window:
    """A VOI window in modality units (after rescale), as PS3.3 C.11.2.1.2 defines it."""

    center: float
    width: float
    function: str | None = None  # LINEAR, LINEAR_EXACT or SIGMOID; None: the object's VOI LUT Function


def read_frame(f: BinaryIO, index: int = 0) -> tuple[np.ndarray, Dataset]:
    """Frame ``index`` (from 0) of the Part 10 object ``f``, decoded, and the Image Pixel attributes it
    needs to be displayed; pydicom reads that frame only. Blocking."""
    ds = Dataset()
    try:
        try:
            arr = pixel_array(f, index=index, ds_out=ds)
        except AttributeError:
            # No pixel data found in the raw file: a deflated data set, read whole once inflated, or
            # really none (then this raises the same)
            f.seek(0)
            ds = dcmread(f)
            arr = pixel_array(ds, index=index)
    except (AttributeError, NotImplementedError) as exc:  # no pixel data; a syntax nothing decodes
        raise CannotRender(f"the object cannot be rendered: {exc}") from exc
    except Exception as exc:
        if "plugin" in str(exc):  # pydicom: no decoder installed for this syntax
            raise CannotRender(f"the object cannot be rendered: {exc}") from exc
        raise RenderFailed(f"the pixel data cannot be decoded: {exc}") from exc
    return arr, ds


def to_display(arr: np.ndarray, ds: Dataset, window: Window | None = None) -> np.ndarray:
    """8-bit pixels to show: rows x columns (greyscale) or rows x columns x 3 (RGB)."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        return _to_8_bits(rgb, 16 if rgb.dtype.itemsize > 1 else 8)
    if arr.ndim == 3:  # colour, already RGB (pydicom converts YBR on decoding)
        return _to_8_bits(arr, int(ds.get("BitsStored") or arr.dtype.itemsize * 8))
    values = apply_modality_lut(arr, ds).astype(np.float64)
    grey = _voi(values, ds, window)
    if photometric == "MONOCHROME1":
        grey = 1.0 - grey  # PS3.3 C.7.6.3.1.2: the minimum is white
    return np.round(grey * 255).astype(np.uint8)


def encode_jpeg(pixels: np.ndarray, quality: int = DEFAULT_QUALITY) -> bytes:
    """Baseline JPEG of 8-bit greyscale or RGB pixels."""
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=quality)  # uint8: L, or RGB with three samples
    return out.getvalue()


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG of 8-bit greyscale or RGB pixels (lossless)."""
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG", compress_level=3)
    return out.getvalue()


def fit(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """The image scaled, up or down, to fit ``width`` x ``height`` with its aspect ratio kept."""
    rows, columns = pixels.shape[:2]
    scale = min(width / columns, height / rows)
    size = (max(1, round(columns * scale)), max(1, round(rows * scale)))
    if size == (columns, rows):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))


def render_jpeg(
    f: BinaryIO, index: int = 0, *, window: Window | None = None, quality: int = DEFAULT_QUALITY
) -> bytes:
    """Frame ``index`` of the object in ``f`` as a JPEG. Blocking: run it in the executor."""
    arr, ds = read_frame(f, index)
    return encode_jpeg(to_display(arr, ds, window), quality)


def _voi(values: np.ndarray, ds: Dataset, window: Window | None) -> np.ndarray:
    """Modality values to 0..1 through a VOI window or LUT, or the frame's range."""
    function = str(ds.get("VOILUTFunction", "LINEAR")).strip().upper()
    if window is None and "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
        if width > 0:
            window = Window(center, width)
    if window is not None:
        return _windowed(values, window, window.function or function)
    if "VOILUTSequence" in ds:
        # the LUT maps the Modality LUT's output, as integers (PS3.3 C.11.2.1)
        values = apply_voi(np.rint(values).astype(np.int64), ds).astype(np.float64)
    if values.size == 0:
        return values
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape)
    return (values - low) / (high - low)


def _windowed(x: np.ndarray, window: Window, function: str) -> np.ndarray:
    c, w = window.center, window.width
    if function == "SIGMOID":  # PS3.3 C.11.2.1.3.1
        return np.asarray(1.0 / (1.0 + np.exp(-4.0 * (x - c) / w)))
    if function == "LINEAR_EXACT":  # PS3.3 C.11.2.1.3.2
        return np.clip((x - c) / w + 0.5, 0.0, 1.0)
    # LINEAR, PS3.3 C.11.2.1.2.1: a width of 1 is a threshold at the center
    if w <= 1:
        return (x > c - 0.5).astype(np.float64)
    return np.clip((x - (c - 0.5)) / (w - 1) + 0.5, 0.0, 1.0)


def _to_8_bits(arr: np.ndarray, bits: int) -> np.ndarray:
    if arr.dtype == np.uint8 or bits <= 8:
        return np.asarray(arr, dtype=np.uint8)
    top = float((1 << bits) - 1)
    return np.round(np.clip(arr.astype(np.float64), 0, top) * (255.0 / top)).astype(np.uint8)


def _first(value: Any) -> float:
    """The first of a multi-valued Window Center or Width (the object's preferred window)."""
    if isinstance(value, MultiValue | list | tuple):
        value = value[0]
    return float(value)
