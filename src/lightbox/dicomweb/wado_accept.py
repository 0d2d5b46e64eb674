"""Content negotiation for WADO: the Accept header's media ranges and the transfer syntax of each part.

PS3.18 8.7.8: the media ranges are ranked by q-value (RFC 9110 12.5.1), and for each part of a multipart
response the first range that the part can be given in is selected, with its transfer syntax (8.7.8.2): the
range's transfer-syntax parameter, else the default of its media type. An object goes in its stored
syntax, decompressed to explicit VR little endian (the web's default, 8.7.3.4), or re-encoded in a lossless
syntax the client names (JPEG 2000 or JPEG-LS lossless, RLE, deflated). Frames go as stored, decompressed,
or re-encoded losslessly for an image media type they are not stored in (image/jp2, image/jls,
image/dicom-rle); uncompressed frames (application/octet-stream) of any syntax (transfer-syntax=*) go as
stored, as the viewer asks for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.uid import UID

from lightbox.domain.errors import InvalidQuery, LightboxError
from lightbox.domain.uids import is_valid_uid
from lightbox.formats.encoding import (
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
from lightbox.services.transcode import COMPRESSED_TARGETS, DEFLATED, can_convert

DICOM = "application/dicom"
OCTET_STREAM = "application/octet-stream"
MULTIPART = "multipart/related"
ANY = "*"  # the transfer-syntax parameter's wildcard: any syntax will do (PS3.18 8.7.3.5.2)
DEFAULT_SYNTAX = EXPLICIT_VR_LITTLE_ENDIAN  # PS3.18 8.7.3.4
# PS3.18 8.7.3: these two are never used on the web; objects stored so go out in explicit VR little endian
_NOT_ON_THE_WEB = frozenset({IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN})
_WILDCARDS = frozenset({"*/*", "multipart/*"})

# Compressed frames by media type (PS3.18 Table 8.7.3-5); the first syntax of each is the type's default.
FRAME_MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    "image/jpeg": (
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
    ),
    "image/dicom-rle": ("1.2.840.10008.1.2.5",),
    "image/jls": ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
    "image/jp2": ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"),
    "image/jpx": ("1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93"),
    "image/jphc": ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"),
}
_ALIASES = {"image/x-dicom-rle": "image/dicom-rle", "image/x-jls": "image/jls"}  # names seen before IANA's
_FRAME_MEDIA_TYPE = {syntax: media for media, syntaxes in FRAME_MEDIA_TYPES.items() for syntax in syntaxes}

# Syntaxes that may hold lossy pixel data: PS3.18 8.7.3.4 lets such an object go as stored when it cannot
# be decompressed (a video, for which there is no decoder).
_LOSSY = frozenset(
    {
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.93",
        "1.2.840.10008.1.2.4.203",
        *(f"1.2.840.10008.1.2.4.{n}" for n in range(100, 109)),
    }
)


class NotAcceptable(LightboxError):
    """None of the client's acceptable media types can be given (PS3.18 8.7.8.1)."""

    http_status = 406


@dataclass(frozen=True, slots=True)
class MediaRange:
    media_type: str  # lower case type/subtype, wildcards included
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    @property
    def part_type(self) -> str | None:
        """The type parameter of a multipart range: what each part holds."""
        value = self.params.get("type")
        return value.lower() if value else None

    @property
    def transfer_syntax(self) -> str | None:
        return self.params.get("transfer-syntax")


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header (or an Accept query parameter), best first; q=0 ones left out.

    No header means anything (RFC 9110 12.5.1). Raises InvalidQuery (400) for a transfer-syntax parameter
    that is neither a UID nor "*" (PS3.18 8.7.3.5.2).
    """
    if header is None or not header.strip():
        return [MediaRange("*/*")]
    ranges: list[tuple[float, int, MediaRange]] = []
    for position, item in enumerate(_split(header, ",")):
        pieces = _split(item, ";")
        media_type = pieces[0].strip().lower() if pieces else ""
        if not media_type:
            continue
        if "/" not in media_type:
            raise InvalidQuery(f"{media_type!r} in the Accept header is not a media type")
        params: dict[str, str] = {}
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        q = _quality(params.pop("q", "1"))
        syntax = params.get("transfer-syntax")
        if syntax is not None and syntax != ANY and not is_valid_uid(syntax):
            raise InvalidQuery(f"transfer-syntax={syntax!r} is neither a transfer syntax UID nor '*'")
        if q > 0:
            ranges.append((-q, position, MediaRange(media_type, params, q)))
    return [r for _, _, r in sorted(ranges, key=lambda t: (t[0], t[1]))]


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double quotes (a quoted parameter value may hold anything)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in (s.strip() for s in parts) if p]


def _quality(value: str) -> float:
    try:
        q = float(value)
    except ValueError:
        raise InvalidQuery(f"q={value!r} in the Accept header is not a number") from None
    if not 0 <= q <= 1:
        raise InvalidQuery(f"q={value!r} in the Accept header is not between 0 and 1")
    return q


# --- whole objects: application/dicom (PS3.18 8.7.3.1) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class DicomChoice:
    """One acceptable way to send DICOM objects: multipart or a single part, and the syntax asked for."""

    multipart: bool
    transfer_syntax: str | None  # None: no parameter (the default); "*": any


def dicom_choices(ranges: list[MediaRange], *, single_part: bool = False) -> list[DicomChoice]:
    """The ranges that name DICOM objects, best first. ``single_part``: a bare application/dicom is
    acceptable (an Instance resource, PS3.18 10.4.4); other resources ignore it. Raises NotAcceptable."""
    choices = []
    for r in ranges:
        if r.media_type == MULTIPART and r.part_type in (None, DICOM, "application/*", "*/*"):
            choices.append(DicomChoice(True, r.transfer_syntax))
        elif r.media_type == DICOM and single_part:
            choices.append(DicomChoice(False, r.transfer_syntax))
        elif r.media_type in _WILDCARDS:
            # PS3.18 8.7.8.1 step 4: a wildcard gets the default media type, in its default syntax
            choices.append(DicomChoice(True, None))
    if not choices:
        raise NotAcceptable(
            "none of the acceptable media types is one of DICOM objects: ask for multipart/related; "
            'type="application/dicom", with transfer-syntax=* to get objects as stored'
        )
    return choices


def object_syntax(wanted: str | None, stored: str) -> str | None:
    """The syntax to send an object stored in ``stored`` in, when the client asks for ``wanted`` (a UID,
    "*" or None for no parameter); None when it cannot be done."""
    if wanted == ANY:
        if stored not in _NOT_ON_THE_WEB:
            return stored
        return DEFAULT_SYNTAX if can_convert(stored, DEFAULT_SYNTAX) else None
    if wanted is None:
        if can_convert(stored, DEFAULT_SYNTAX):
            return DEFAULT_SYNTAX
        return stored if stored in _LOSSY else None
    if wanted == stored and stored not in _NOT_ON_THE_WEB:
        return stored
    if wanted in (DEFAULT_SYNTAX, DEFLATED, *COMPRESSED_TARGETS) and can_convert(stored, wanted):
        return wanted
    return None


def object_options(choices: list[DicomChoice], stored: str) -> list[tuple[DicomChoice, str]]:
    """Each choice an object stored in ``stored`` can be given in, with the syntax to send, best first:
    a conversion can still fail for one object (an encoder refusing its pixels), and the next is tried."""
    options: list[tuple[DicomChoice, str]] = []
    for choice in choices:
        syntax = object_syntax(choice.transfer_syntax, stored)
        if syntax is not None and (choice, syntax) not in options:
            options.append((choice, syntax))
    return options


# --- frames: bulk data media types (PS3.18 8.7.3.3) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameChoice:
    media_type: str  # of each part
    transfer_syntax: str  # its label
    decode: bool  # decompress stored frames to native little endian bytes
    encode: bool = False  # re-encode each frame losslessly in ``transfer_syntax``


def choose_frames(ranges: list[MediaRange], stored: str) -> FrameChoice:
    """How to send the frames of an object stored in ``stored``: the first acceptable range that can be
    served. Raises NotAcceptable."""
    for r in ranges:
        if r.media_type == MULTIPART:
            part = _ALIASES.get(r.part_type or "*/*", r.part_type or "*/*")
        elif r.media_type in _WILDCARDS:
            part = "*/*"
        else:
            continue  # frames come as multipart only
        choice = _frame_choice(part, r.transfer_syntax, stored)
        if choice is not None:
            return choice
    raise NotAcceptable(
        f"the frames are stored as {UID(stored).name}: ask for multipart/related; "
        f'type="{_FRAME_MEDIA_TYPE.get(stored, OCTET_STREAM)}" or type="application/octet-stream"'
    )


def _frame_choice(part: str, wanted: str | None, stored: str) -> FrameChoice | None:
    compressed = _encapsulated(stored)
    stored_type = _FRAME_MEDIA_TYPE.get(stored)
    as_stored = FrameChoice(stored_type, stored, False) if stored_type else None
    if part == OCTET_STREAM or (part == "*/*" and wanted in (None, DEFAULT_SYNTAX)):
        # PS3.18 8.7.3.3.1: uncompressed frames, explicit VR little endian bytes
        if wanted not in (None, ANY, DEFAULT_SYNTAX):
            return None
        if not compressed:
            return FrameChoice(OCTET_STREAM, DEFAULT_SYNTAX, False)
        if wanted == ANY and as_stored is not None:
            # Any syntax will do (PS3.18 8.7.3.5.2): the frames as stored, each part labelled with its
            # syntax. The viewer asks so and decodes them itself, frames no decoder here takes too.
            return FrameChoice(OCTET_STREAM, stored, False)
        if can_convert(stored, DEFAULT_SYNTAX):  # a decoder is at hand
            return FrameChoice(OCTET_STREAM, DEFAULT_SYNTAX, True)
        # PS3.18 8.7.3.3: lossy frames with no decoder may go as stored, when a wildcard allows it
        return as_stored if part == "*/*" and wanted is None and stored in _LOSSY else None
    if part == "*/*":  # transfer-syntax=* or a compressed syntax
        if wanted == ANY:
            if not compressed:
                return FrameChoice(OCTET_STREAM, DEFAULT_SYNTAX, False)
            if as_stored is None and can_convert(stored, DEFAULT_SYNTAX):
                return FrameChoice(OCTET_STREAM, DEFAULT_SYNTAX, True)
            return as_stored
        return as_stored if wanted == stored else None
    if part == "image/*" or part in FRAME_MEDIA_TYPES:
        # The stored syntax, when it is of that type: without a transfer-syntax parameter any syntax of
        # the type is taken (not only its default), and the part says which
        if as_stored is not None and part in ("image/*", stored_type) and wanted in (None, ANY, stored):
            return as_stored
        return _encoded_frames(part, wanted, stored)
    return None


def _encoded_frames(part: str, wanted: str | None, stored: str) -> FrameChoice | None:
    """Frames re-encoded in the lossless syntax of the media type ``part`` (its default one, or the one
    named), when an encoder is at hand."""
    for syntax in FRAME_MEDIA_TYPES.get(part, ()):
        if syntax in COMPRESSED_TARGETS and wanted in (None, ANY, syntax) and can_convert(stored, syntax):
            return FrameChoice(part, syntax, False, encode=True)
    return None


def _encapsulated(syntax: str) -> bool:
    """Whether frames of this syntax are encapsulated (PS3.5 A.4); an unknown syntax is taken to be."""
    uid = UID(syntax)
    return not uid.is_transfer_syntax or uid.is_encapsulated
