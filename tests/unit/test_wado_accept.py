"""WADO content negotiation (PS3.18 8.7.8): which syntax each object or frame goes in."""

from __future__ import annotations

import pytest
from pydicom.uid import (
    MPEG2MPML,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from lightbox.dicomweb.wado_accept import (
    NotAcceptable,
    choose_frames,
    dicom_choices,
    object_options,
    parse_accept,
)
from lightbox.services.transcode import DEFLATED


def _options(accept: str, stored: str) -> list[str]:
    return [syntax for _, syntax in object_options(dicom_choices(parse_accept(accept)), stored)]


def _dicom(syntax: str, q: float = 1) -> str:
    return f'multipart/related; type="application/dicom"; transfer-syntax={syntax}; q={q}'


def test_objects_as_stored_decompressed_or_compressed_losslessly() -> None:
    assert _options(_dicom("*"), JPEG2000Lossless) == [JPEG2000Lossless]
    assert _options(_dicom("*"), ImplicitVRLittleEndian) == [ExplicitVRLittleEndian]  # never on the web
    assert _options("*/*", JPEG2000Lossless) == [ExplicitVRLittleEndian]
    for target in (JPEG2000Lossless, JPEGLSLossless, RLELossless, DEFLATED):
        assert _options(_dicom(target), ExplicitVRLittleEndian) == [target]
    assert _options(_dicom(JPEGBaseline8Bit), ExplicitVRLittleEndian) == []  # lossy: never made here
    assert _options(_dicom(RLELossless), MPEG2MPML) == []  # no decoder


def test_object_options_keep_the_clients_order_for_fallback() -> None:
    accept = f"{_dicom(JPEG2000Lossless)}, {_dicom(RLELossless, 0.8)}, {_dicom(ExplicitVRLittleEndian, 0.5)}"
    assert _options(accept, ExplicitVRLittleEndian) == [
        JPEG2000Lossless,
        RLELossless,
        ExplicitVRLittleEndian,
    ]


def _frames(part: str, stored: str, syntax: str | None = None) -> tuple[str, str, bool, bool]:
    accept = f'multipart/related; type="{part}"' + (f"; transfer-syntax={syntax}" if syntax else "")
    choice = choose_frames(parse_accept(accept), stored)
    return choice.media_type, choice.transfer_syntax, choice.decode, choice.encode


def test_frames_as_stored_when_of_the_type() -> None:
    assert _frames("image/jp2", JPEG2000Lossless) == ("image/jp2", JPEG2000Lossless, False, False)
    assert _frames("image/dicom-rle", RLELossless) == ("image/dicom-rle", RLELossless, False, False)


def test_octet_stream_frames_of_any_syntax_go_as_stored() -> None:
    """The viewer's request (type=application/octet-stream; transfer-syntax=*): compressed frames go as
    stored, labelled with their syntax; without the wildcard they are decoded."""
    octet = "application/octet-stream"
    for stored in (JPEGBaseline8Bit, "1.2.840.10008.1.2.4.51", JPEG2000Lossless, RLELossless):
        assert _frames(octet, stored, "*") == (octet, stored, False, False)
        assert _frames(octet, stored) == (octet, ExplicitVRLittleEndian, True, False)
    assert _frames(octet, ExplicitVRLittleEndian, "*") == (octet, ExplicitVRLittleEndian, False, False)


@pytest.mark.parametrize(
    ("part", "syntax"),
    [("image/jp2", JPEG2000Lossless), ("image/jls", JPEGLSLossless), ("image/dicom-rle", RLELossless)],
)
def test_frames_encoded_in_the_types_lossless_syntax(part: str, syntax: str) -> None:
    for stored in (ExplicitVRLittleEndian, JPEGBaseline8Bit):
        assert _frames(part, stored) == (part, syntax, False, True)
        assert _frames(part, stored, syntax) == (part, syntax, False, True)


def test_frames_never_encoded_lossily() -> None:
    with pytest.raises(NotAcceptable):
        _frames("image/jpeg", ExplicitVRLittleEndian)
    with pytest.raises(NotAcceptable):
        _frames("image/jp2", ExplicitVRLittleEndian, "1.2.840.10008.1.2.4.91")
    with pytest.raises(NotAcceptable):
        _frames("image/jp2", MPEG2MPML)  # nothing decodes it
