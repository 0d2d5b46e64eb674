"""The streaming multipart reader: any chunking gives the same parts; broken framing is reported."""

from __future__ import annotations

import random

import pytest

from lightbox.dicomweb.multipart_related import (
    Event,
    MultipartError,
    MultipartReader,
    PartBegin,
    PartData,
    PartEnd,
    PartHeaders,
    parse_media_type,
)
from tests.support.multipart import BOUNDARY, close_delimiter, part_head, related_body

# Bodies that contain near-misses of the delimiter: CR LF, "--", the boundary without its dashes, a
# delimiter missing its last character.
TRICKY = [
    b"\r\n--" + BOUNDARY[:-1].encode() + b"\r\n",
    b"\r\n-\r\n--\r" + BOUNDARY.encode() + b"\r\n\r\n--",
    bytes(range(256)) * 8,
    b"",
    b"\r",
]


def read_all(body: bytes, chunk_sizes: list[int] | int, boundary: str = BOUNDARY) -> list[Event]:
    reader = MultipartReader(boundary)
    events: list[Event] = []
    sizes = chunk_sizes if isinstance(chunk_sizes, list) else None
    pos = 0
    while pos < len(body):
        size = sizes.pop(0) if sizes else chunk_sizes if isinstance(chunk_sizes, int) else 1
        events += reader.feed(body[pos : pos + size])
        pos += size
    events += reader.close()
    return events


def parts_of(events: list[Event]) -> list[tuple[dict[str, str], bytes]]:
    """(headers, body) per part, checking the order of events on the way."""
    parts: list[tuple[dict[str, str], bytes]] = []
    state = "between"
    for event in events:
        if isinstance(event, PartBegin):
            assert state == "between"
            state = "begun"
        elif isinstance(event, PartHeaders):
            assert state == "begun"
            parts.append((event.headers, b""))
            state = "data"
        elif isinstance(event, PartData):
            assert state == "data"
            headers, data = parts[-1]
            parts[-1] = (headers, data + event.data)
        elif isinstance(event, PartEnd):
            assert state == "data"
            state = "between"
    assert state == "between"
    return parts


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 16, 17, 64, 1 << 20])
def test_parts_are_the_same_whatever_the_chunking(chunk: int) -> None:
    body = related_body(TRICKY)
    parts = parts_of(read_all(body, chunk))
    assert [data for _, data in parts] == TRICKY
    assert all(headers == {"content-type": "application/dicom"} for headers, _ in parts)


def test_delimiter_split_at_every_position() -> None:
    payload = [b"first part", b"second\r\n-part"]
    body = related_body(payload)
    for cut in range(1, len(body)):
        parts = parts_of(read_all(body, [cut, len(body)]))
        assert [data for _, data in parts] == payload, cut


def test_random_chunking_of_random_data() -> None:
    rng = random.Random(20240102)
    payload = [rng.randbytes(rng.randrange(0, 5000)) for _ in range(8)]
    body = related_body(payload)
    for _ in range(20):
        sizes = [rng.randrange(1, 300) for _ in range(len(body))]
        assert [data for _, data in parts_of(read_all(body, sizes))] == payload


def test_preamble_and_epilogue_are_ignored() -> None:
    boundary = BOUNDARY.encode()
    body = (
        b"This is the preamble. --"
        + boundary
        + b" is not a delimiter here, nor is\r\n-- "
        + boundary
        + b"\r\n"
        b"--" + boundary + b"\r\nContent-Type: application/dicom\r\n\r\nDATA"
        b"\r\n--" + boundary + b"--\r\nThis is the epilogue.\r\n--" + boundary + b"\r\nnot a part\r\n"
    )
    for chunk in (1, 5, 1000):
        assert [data for _, data in parts_of(read_all(body, chunk))] == [b"DATA"]


def test_body_may_start_with_crlf_as_dicomweb_client_sends_it() -> None:
    body = b"\r\n" + related_body([b"ONE", b"TWO"])
    assert [data for _, data in parts_of(read_all(body, 3))] == [b"ONE", b"TWO"]


def test_headers_are_gathered_per_part_with_lower_case_names() -> None:
    body = (
        part_head(content_type='application/dicom; transfer-syntax="1.2.840.10008.1.2.4.50"')[:-2]
        + b"Content-Location: http://x/1\r\nX-Long: "
        + b"v" * 3000
        + b"\r\n\r\nA\r\n"
        + part_head(content_type=None)
        + b"B"
        + close_delimiter()
    )
    (h1, d1), (h2, d2) = parts_of(read_all(body, 10))
    assert h1 == {
        "content-type": 'application/dicom; transfer-syntax="1.2.840.10008.1.2.4.50"',
        "content-location": "http://x/1",
        "x-long": "v" * 3000,
    }
    assert (d1, h2, d2) == (b"A", {}, b"B")
    media = parse_media_type(h1["content-type"])
    assert media.type == "application/dicom"
    assert media.params == {"transfer-syntax": "1.2.840.10008.1.2.4.50"}


def test_missing_close_delimiter_is_an_error_after_the_complete_parts() -> None:
    body = related_body([b"complete", b"cut short"])
    body = body[: body.rindex(b"cut") + 3]
    reader = MultipartReader(BOUNDARY)
    events = reader.feed(body)
    assert next(e.data for e in events if isinstance(e, PartData)) == b"complete"
    assert sum(isinstance(e, PartEnd) for e in events) == 1  # the second part never ended
    assert not reader.ended
    with pytest.raises(MultipartError, match="close delimiter"):
        reader.close()


def test_no_delimiter_at_all() -> None:
    reader = MultipartReader(BOUNDARY)
    assert reader.feed(b"just some bytes, no multipart") == []
    with pytest.raises(MultipartError, match="no delimiter"):
        reader.close()
    with pytest.raises(MultipartError, match="no delimiter"):
        MultipartReader(BOUNDARY).close()


def test_close_delimiter_only_has_no_part() -> None:
    reader = MultipartReader(BOUNDARY)
    assert reader.feed(close_delimiter()[2:]) == []
    assert reader.close() == [] and reader.parts == 0 and reader.ended


@pytest.mark.parametrize(
    "body",
    [
        b"--" + BOUNDARY.encode() + b"X\r\n\r\nabc",  # junk after the boundary on the delimiter line
        b"--" + BOUNDARY.encode() + b"\r\nBad Header Name: x\r\n\r\n",  # space in a field name
        b"--" + BOUNDARY.encode() + b"\r\n: no name\r\n\r\n",
        b"--" + BOUNDARY.encode() + b"\r\nX: " + b"v" * 10_000 + b"\r\n\r\n",  # header line too long
    ],
)
def test_malformed_framing_is_reported(body: bytes) -> None:
    with pytest.raises(MultipartError):
        read_all(body, 7)


@pytest.mark.parametrize("boundary", ["", "x" * 71, "grüße"])
def test_invalid_boundaries_are_refused(boundary: str) -> None:
    with pytest.raises(MultipartError, match="boundary"):
        MultipartReader(boundary)


def test_events_come_as_soon_as_their_bytes_do() -> None:
    """Streaming: the data of a part is handed on before the part ends, not gathered."""
    reader = MultipartReader(BOUNDARY)
    events = reader.feed(part_head() + b"x" * 1000)
    assert isinstance(events[0], PartBegin) and isinstance(events[1], PartHeaders)
    assert sum(len(e.data) for e in events if isinstance(e, PartData)) >= 1000 - len(BOUNDARY) - 4
    assert not any(isinstance(e, PartEnd) for e in events)


@pytest.mark.parametrize(
    ("value", "expected_type", "expected_params"),
    [
        (
            'multipart/related; type="application/dicom"; boundary="a b"',
            "multipart/related",
            {"type": "application/dicom", "boundary": "a b"},
        ),
        (
            "Multipart/Related;TYPE=application/dicom;Boundary=abc",
            "multipart/related",
            {"type": "application/dicom", "boundary": "abc"},
        ),
        ("application/dicom", "application/dicom", {}),
        ("nonsense", "", {}),
        (None, "", {}),
    ],
)
def test_parse_media_type(value: str | None, expected_type: str, expected_params: dict[str, str]) -> None:
    media = parse_media_type(value)
    assert (media.type, media.params) == (expected_type, expected_params)
