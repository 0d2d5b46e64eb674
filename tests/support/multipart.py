"""Write multipart/related bodies (RFC 2046 5.1, RFC 2387) for STOW-RS tests, whole or as a stream, and read
those of WADO-RS answers."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import httpx

BOUNDARY = "lightbox-test-3f1c"
DICOM_MULTIPART = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def part_head(
    boundary: str = BOUNDARY, content_type: str | None = "application/dicom", **headers: str
) -> bytes:
    """A delimiter line and a part's headers, up to the blank line before its body."""
    lines = [f"--{boundary}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def close_delimiter(boundary: str = BOUNDARY) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode()


def related_body(
    parts: Iterable[bytes], boundary: str = BOUNDARY, content_type: str = "application/dicom"
) -> bytes:
    """Each part an application/dicom body part; the close delimiter at the end."""
    return b"".join(stream_body(([p] for p in parts), boundary, content_type))


def stream_body(
    parts: Iterable[Iterable[bytes]], boundary: str = BOUNDARY, content_type: str = "application/dicom"
) -> Iterator[bytes]:
    """The body as a stream; each part given as its own stream of chunks (so nothing is held whole)."""
    first = True
    for chunks in parts:
        yield (b"" if first else b"\r\n") + part_head(boundary, content_type)
        first = False
        yield from chunks
    yield close_delimiter(boundary)


def related_parts(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related response: headers (lower case names) and bytes. Checks framing."""
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/related;"), content_type
    match = re.search(r"boundary=\"?([^\";]+)\"?", content_type)
    assert match, content_type
    boundary = match.group(1).encode()
    body = response.content
    assert body.startswith(b"--" + boundary + b"\r\n"), body[:100]
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n"), body[-100:]
    inner = body[len(boundary) + 4 : -(len(boundary) + 8)]
    parts = []
    for raw in inner.split(b"\r\n--" + boundary + b"\r\n"):
        head, _, content = raw.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    return parts
