"""Response media types of DICOMweb routes: Accept negotiation (RFC 9110 12.5.1, PS3.18 8.7.5).

Any route that answers in one of a few media types can choose it here; a request that accepts none of
them gets 406 problem+json.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.exceptions import HTTPException

DICOM_JSON = "application/dicom+json"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One entry of an Accept header: ``type/subtype`` (either may be ``*``) and its quality."""

    type: str
    subtype: str
    q: float

    def specificity(self, media_type: str) -> int:
        """How closely this range names ``media_type``: 2 exactly, 1 by ``type/*``, 0 by ``*/*``, else -1."""
        kind, _, sub = media_type.partition("/")
        if self.type == "*":
            return 0 if self.subtype == "*" else -1
        if self.type != kind:
            return -1
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == sub else -1


def parse_accept(value: str) -> list[MediaRange]:
    """The media ranges of an Accept value; entries that are not ``type/subtype`` are left out, as
    PS3.18 8.7.7 asks ("values that are not valid or not supported shall be ignored")."""
    ranges = []
    for entry in value.split(","):
        name, *params = (p.strip() for p in entry.split(";"))
        kind, slash, sub = name.lower().partition("/")
        if not slash or not kind or not sub or (kind == "*" and sub != "*"):
            continue
        ranges.append(MediaRange(kind, sub, _quality(params)))
    return ranges


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(1.0, max(0.0, float(value.strip())))
            except ValueError:
                return 0.0  # an unreadable weight: treat the range as not acceptable
    return 1.0


def choose(accept: str | None, offered: Sequence[str]) -> str | None:
    """The offered media type the client prefers, or None when it accepts none of them.

    Each offered type takes the quality of the most specific range that names it; the highest quality
    wins, the earlier offered type on a tie. No Accept header (or no valid range in it) accepts anything
    (RFC 9110 12.5.1), so the first offered type, the default, is chosen.
    """
    ranges = parse_accept(accept or "")
    if not ranges:
        return offered[0] if offered else None
    best, best_q = None, 0.0
    for media_type in offered:
        specificity, q = max(((r.specificity(media_type), r.q) for r in ranges), default=(-1, 0.0))
        if specificity >= 0 and q > best_q:
            best, best_q = media_type, q
    return best


def negotiate(accept: str | None, offered: Sequence[str], what: str) -> str:
    """``choose``, or 406 Not Acceptable naming what ``what`` (e.g. "QIDO-RS") can answer in."""
    chosen = choose(accept, offered)
    if chosen is None:
        raise HTTPException(
            406, f"{what} answers in {' or '.join(offered)}; the request accepts only {accept}"
        )
    return chosen
