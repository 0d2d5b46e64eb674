"""A streaming reader of multipart bodies (RFC 2046 5.1, as multipart/related uses it, RFC 2387).

Feed it the body in chunks as they arrive; it hands back events: a part begins, its headers, its data in
pieces, its end. Nothing is buffered beyond a header line and a possible delimiter split across two chunks,
so a body of any size is read in bounded memory. The delimiter scanning is python-multipart's; this module
adds what that parser leaves out: a preamble before the first delimiter, a missing close delimiter, and
header fields gathered per part.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser

# RFC 2046 5.1.1: a boundary is 1 to 70 characters.
_MAX_BOUNDARY = 70
# Generous for MIME parts (Content-Type, -Location, -ID, -Description, -Length, -Transfer-Encoding...).
_MAX_HEADERS = 32
_MAX_HEADER_LINE = 8 * 1024


class MultipartError(ValueError):
    """The body is not a well-formed multipart body; the message says where it went wrong."""


@dataclass(frozen=True, slots=True)
class PartBegin:
    """A delimiter line: a part starts (its headers follow)."""


@dataclass(frozen=True, slots=True)
class PartHeaders:
    """The part's header fields, names in lower case."""

    headers: dict[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass(frozen=True, slots=True)
class PartData:
    """The next piece of the part's body, in order."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    """The part's body is complete (the next delimiter was seen)."""


Event = PartBegin | PartHeaders | PartData | PartEnd


@dataclass(frozen=True, slots=True)
class MediaType:
    """A Content-Type value: the type in lower case and its parameters (names in lower case)."""

    type: str
    params: dict[str, str]


def parse_media_type(value: str | None) -> MediaType:
    """Split a Content-Type value (RFC 9110 8.3.1), unquoting parameter values; "" for none or nonsense."""
    if not value or "/" not in value.split(";", 1)[0]:
        return MediaType("", {})
    msg = Message()
    msg["content-type"] = value
    params = {k.lower(): collapse_rfc2231_value(v) for k, v in msg.get_params(failobj=[])[1:]}
    return MediaType(msg.get_content_type(), params)


class MultipartReader:
    """Turns a multipart body, fed in chunks, into ``Event``s.

    ``feed`` returns the events the chunk completes; ``close`` says the body has ended and raises
    ``MultipartError`` when the close delimiter never came (a cut-short body). Any malformed framing
    raises ``MultipartError`` from ``feed``.
    """

    def __init__(self, boundary: str) -> None:
        if not 0 < len(boundary) <= _MAX_BOUNDARY:
            raise MultipartError(f"the boundary must be 1 to {_MAX_BOUNDARY} characters (RFC 2046 5.1.1)")
        try:
            encoded = boundary.encode("ascii")
        except UnicodeEncodeError:
            raise MultipartError("the boundary must be ASCII (RFC 2046 5.1.1)") from None
        # RFC 2046 5.1.1: a delimiter is CRLF "--" boundary; the first one may open the body without CRLF,
        # so the preamble is searched as if the body began with a CRLF.
        self._delimiter = b"\r\n--" + encoded
        self._pending = b"\r\n"  # what was read of the preamble and may start the first delimiter
        self._in_preamble = True
        self._parser = MultipartParser(
            encoded,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
            max_header_count=_MAX_HEADERS,
            max_header_size=_MAX_HEADER_LINE,
        )
        self._events: list[Event] = []
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[str, str] = {}
        self._parts = 0
        self._ended = False

    @property
    def parts(self) -> int:
        """How many parts have begun so far."""
        return self._parts

    @property
    def ended(self) -> bool:
        """The close delimiter has been read; whatever follows is the epilogue, ignored."""
        return self._ended

    def feed(self, chunk: bytes) -> list[Event]:
        if self._in_preamble:
            chunk = self._skip_preamble(chunk)
            if not chunk:
                return []
        if self._ended:
            return []  # the epilogue (RFC 2046 5.1.1): to be ignored
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise MultipartError(f"malformed multipart body: {exc}") from None
        events, self._events = self._events, []
        return events

    def close(self) -> list[Event]:
        """The body has ended: the events still due, or ``MultipartError`` if the body was cut short."""
        if self._in_preamble:
            raise MultipartError("the body has no delimiter line for the boundary given in Content-Type")
        if not self._ended:
            raise MultipartError("the body ends before the close delimiter (--boundary--)")
        return []

    # --- the preamble ----------------------------------------------------------------------------------
    def _skip_preamble(self, chunk: bytes) -> bytes:
        """Drop what precedes the first delimiter; return the body from that delimiter's "--" on."""
        text = self._pending + chunk
        at = text.find(self._delimiter)
        if at < 0:
            # Keep only a tail that could be the start of a delimiter split across chunks.
            self._pending = text[-(len(self._delimiter) - 1) :]
            return b""
        self._in_preamble = False
        self._pending = b""
        return text[at + 2 :]

    # --- python-multipart callbacks --------------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._parts += 1
        self._headers = {}
        self._events.append(PartBegin())

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self._headers[name] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def _on_headers_finished(self) -> None:
        self._events.append(PartHeaders(self._headers))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._events.append(PartData(data[start:end]))

    def _on_part_end(self) -> None:
        self._events.append(PartEnd())

    def _on_end(self) -> None:
        self._ended = True
