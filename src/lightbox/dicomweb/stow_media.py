"""Media types of a STOW-RS request: what the body may be (PS3.18 10.5.1.2) and how to answer (10.5.3)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException

from lightbox.dicomweb.multipart_related import parse_media_type

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
JSON = "application/json"
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
    """The response's media type by the Accept header (RFC 9110 12.5.1), or 406 if it takes neither JSON.

    The first of the acceptable types with the highest quality wins; application/dicom+json on a tie.
    Entries that are not media ranges are ignored (PS3.18 8.7.7); with none left, anything is acceptable.
    """
    if not accept or not any("/" in entry.split(";")[0] for entry in accept.split(",")):
        return DICOM_JSON
    best, best_q = "", 0.0
    for candidate in _RESPONSE_TYPES:
        q = _quality(candidate, accept)
        if q > best_q:
            best, best_q = candidate, q
    if not best:
        raise HTTPException(
            406, f"the STOW-RS response is {DICOM_JSON} or {JSON}; the request accepts only {accept}"
        )
    return best


def _quality(media_type: str, accept: str) -> float:
    """The q value the Accept header gives ``media_type``: that of its most specific matching range."""
    kind = media_type.split("/")[0]
    found: tuple[int, float] = (-1, 0.0)  # (specificity, q)
    for entry in accept.split(","):
        rng, _, params = entry.strip().partition(";")
        rng = rng.strip().lower()
        if rng == media_type:
            specificity = 2
        elif rng == f"{kind}/*":
            specificity = 1
        elif rng == "*/*":
            specificity = 0
        else:
            continue
        if specificity > found[0]:
            found = (specificity, _q(params))
    return found[1]


def _q(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return min(1.0, max(0.0, float(value.strip())))
            except ValueError:
                return 0.0
    return 1.0
