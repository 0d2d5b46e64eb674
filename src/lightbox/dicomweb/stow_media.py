"""Media types of a STOW-RS request: what the body may be (PS3.18 10.5.1.2) and how to answer (10.5.3)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException

from lightbox.dicomweb.media import DICOM_JSON, JSON, negotiate
from lightbox.dicomweb.multipart_related import parse_media_type

__all__ = ["DICOM", "DICOM_JSON", "JSON", "MULTIPART_RELATED", "StowBody", "request_body", "response_type"]

DICOM = "application/dicom"
MULTIPART_RELATED = "multipart/related"

# PS3.18 10.5.3: the Store Instances Response Module, in JSON (application/json is its generic name).
_RESPONSE_TYPES = (DICOM_JSON, JSON)


@dataclass(frozen=True, slots=True)
class StowBody:
    """A multipart/related body whose root parts are ``root_type`` (PS3.18 8.6.1.2), split by ``boundary``."""

    root_type: str
    boundary: str


def request_body(content_type: str | None) -> StowBody:
    """The body's framing from its Content-Type, or 415 when it is not a body this archive stores.

    PS3.18 10.5.1.2: multipart/related with a ``type`` parameter naming the media type of the root parts:
    application/dicom for PS3.10 instances, application/dicom+json for metadata with bulk data parts
    (application/dicom+xml, the other metadata encoding, is not supported).
    """
    media = parse_media_type(content_type)
    if media.type != MULTIPART_RELATED:
        raise HTTPException(
            415,
            f'STOW-RS takes multipart/related; type="{DICOM}" (or "{DICOM_JSON}") bodies (PS3.18 10.5.1.2), '
            f"not {content_type or 'a body without Content-Type'}",
        )
    root_type = parse_media_type(media.params.get("type", "")).type
    if root_type not in (DICOM, DICOM_JSON):
        raise HTTPException(
            415,
            f'multipart/related needs type="{DICOM}" or type="{DICOM_JSON}" (PS3.18 10.5.1.2; '
            f"application/dicom+xml is not supported); got {media.params.get('type') or 'no type parameter'}",
        )
    boundary = media.params.get("boundary", "")
    if not boundary:
        raise HTTPException(415, "multipart/related needs a boundary parameter (RFC 2046 5.1.1)")
    return StowBody(root_type, boundary)


def response_type(accept: str | None) -> str:
    """The response's media type by the Accept header, application/dicom+json on a tie; 406 if the request
    takes neither JSON."""
    return negotiate(accept, _RESPONSE_TYPES, "STOW-RS")
