"""Accept negotiation of DICOMweb responses (RFC 9110 12.5.1, PS3.18 8.7.5 and 8.7.7)."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException

from lightbox.dicomweb.media import DICOM_JSON, JSON, MediaRange, choose, negotiate, parse_accept

OFFERED = (DICOM_JSON, JSON)


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, DICOM_JSON),  # no header: anything is acceptable, the default is chosen
        ("", DICOM_JSON),
        ("*/*", DICOM_JSON),
        ("application/*", DICOM_JSON),
        ("application/dicom+json", DICOM_JSON),
        ("application/json", JSON),
        ("application/json, application/dicom+json", DICOM_JSON),  # equal quality: the default
        ("application/dicom+json;q=0.5, application/json", JSON),
        ("application/json; q=0.9, */*; q=0.1", JSON),
        ('multipart/related; type="application/dicom+xml", application/dicom+json', DICOM_JSON),
        ("text/html, application/xhtml+xml, */*;q=0.8", DICOM_JSON),  # what browsers send
        ("APPLICATION/DICOM+JSON", DICOM_JSON),
        ("nonsense", DICOM_JSON),  # invalid values are ignored (PS3.18 8.7.7), leaving no constraint
    ],
)
def test_choice(accept: str | None, chosen: str) -> None:
    assert choose(accept, OFFERED) == chosen


@pytest.mark.parametrize(
    "accept",
    [
        "text/html",
        'multipart/related; type="application/dicom+xml"',
        "application/dicom+json;q=0, application/json;q=0",
        "*/*;q=0",
        "application/dicom+json;q=zero",  # an unreadable weight does not accept
        "application/dicom",
    ],
)
def test_nothing_acceptable(accept: str) -> None:
    assert choose(accept, OFFERED) is None
    with pytest.raises(HTTPException) as raised:
        negotiate(accept, OFFERED, "QIDO-RS")
    assert raised.value.status_code == 406
    assert "QIDO-RS answers in application/dicom+json or application/json" in raised.value.detail


def test_a_specific_range_overrides_a_wildcard() -> None:
    assert choose("application/*;q=1, application/dicom+json;q=0", OFFERED) == JSON


def test_parse_accept() -> None:
    assert parse_accept("text/*;q=0.3, image/jpeg , */*;level=1;q=2, bad, /x, */json") == [
        MediaRange("text", "*", 0.3),
        MediaRange("image", "jpeg", 1.0),
        MediaRange("*", "*", 1.0),  # q is clamped to 1
    ]
