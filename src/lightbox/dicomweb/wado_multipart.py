"""multipart/related framing (RFC 2387, RFC 2046 5.1) for WADO-RS responses, written as the parts go.

Each part is a delimiter line, its Content-Type header and a blank line, then its bytes; the body ends with
the close delimiter. The boundary is random: 32 hex digits that stored bytes will not hold by accident.
"""

from __future__ import annotations

import uuid


class Multipart:
    def __init__(self, part_type: str) -> None:
        self.part_type = part_type
        self.boundary = uuid.uuid4().hex
        self._first = True

    @property
    def content_type(self) -> str:
        """The response's Content-Type: its parts' media type and the boundary."""
        return f'multipart/related; type="{self.part_type}"; boundary={self.boundary}'

    def head(self, content_type: str) -> bytes:
        """What goes before a part's bytes. ``content_type`` carries the part's transfer-syntax."""
        lead = b"" if self._first else b"\r\n"
        self._first = False
        return lead + f"--{self.boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode("ascii")

    def close(self) -> bytes:
        """The close delimiter (an empty multipart still has one)."""
        lead = b"" if self._first else b"\r\n"
        return lead + f"--{self.boundary}--\r\n".encode("ascii")


def part_content_type(media_type: str, transfer_syntax: str) -> str:
    """A part's Content-Type with its transfer-syntax parameter (PS3.18 8.7.3.5.2): viewers read it."""
    return f"{media_type}; transfer-syntax={transfer_syntax}"
