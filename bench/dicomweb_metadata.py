"""WADO-RS series metadata latency: ``GET /dicom-web/studies/{study}/series/{series}/metadata``.

The answer is every instance's header as DICOM JSON. Asked for as a browser-based viewer asks (gzip), and
uncompressed, each on one keep-alive connection: warm-up requests first, then timed ones, each from sending
the request until the whole body has been read (and decompressed). The JSON is parsed afterwards, untimed,
to check that it holds every instance. Then the same request with the answer's ETag in ``If-None-Match``,
as a viewer revalidates its cached copy: it must be ``304 Not Modified``.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from bench.query_bench import summarize

WARMUP = 5
TIMED = 30
ENCODINGS = ("gzip", "identity")
JSON = "application/dicom+json"


class MetadataFailed(RuntimeError):
    """A wrong status, or an answer without every instance."""


def _timed(
    client: httpx.Client, path: str, headers: dict[str, str], status: int
) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.get(path, headers=headers)
    ms = (time.perf_counter() - start) * 1000.0
    if response.status_code != status:
        raise MetadataFailed(f"HTTP {response.status_code}, {status} expected: {response.text[:300]}")
    return ms, response


def _latency(times: list[float]) -> dict[str, Any]:
    summary = summarize(times, [0] * len(times))
    return {k: summary[k] for k in ("queries", "median_ms", "p95_ms", "max_ms")}


def measure(base_url: str, auth: dict[str, str], path: str, encoding: str, instances: int) -> dict[str, Any]:
    """Latency of the full answer and of a revalidation, with ``Accept-Encoding: encoding``."""
    headers = {"Accept": JSON, "Accept-Encoding": encoding, **auth}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for _ in range(WARMUP):
            _timed(client, path, {}, 200)
        times, last = [], None
        for _ in range(TIMED):
            ms, last = _timed(client, path, {}, 200)
            times.append(ms)
        assert last is not None
        found = len(orjson.loads(last.content))
        if found != instances:
            raise MetadataFailed(f"the metadata holds {found} instances, {instances} expected")
        etag = last.headers.get("etag")
        if not etag:
            raise MetadataFailed("the answer has no ETag")
        revalidations = [_timed(client, path, {"If-None-Match": etag}, 304)[0] for _ in range(TIMED)]
    return {
        "encoding": encoding,
        **_latency(times),
        "body_bytes": len(last.content),
        "wire_bytes": last.num_bytes_downloaded,
        "not_modified": _latency(revalidations),
    }


def run(base_url: str, auth: dict[str, str], uids: tuple[str, str], instances: int) -> dict[str, Any]:
    study, series = uids
    path = f"/dicom-web/studies/{study}/series/{series}/metadata"
    rows = [measure(base_url, auth, path, encoding, instances) for encoding in ENCODINGS]
    return {"instances": instances, "warmup": WARMUP, "timed": TIMED, "rows": rows}
