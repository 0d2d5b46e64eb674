"""WADO-RS series retrieval throughput, against reading the same files.

``GET /dicom-web/studies/{study}/series/{series}`` asking for the objects as stored (``transfer-syntax=*``),
so nothing is converted: the server reads each object from storage and writes it into the multipart body.
httpx reads the streamed body as it comes, counting its bytes and the multipart delimiters, and the answer
must hold every instance. curl reading the same answer into /dev/null shows how much of the time is the
Python client's. The reference is the series' source files read in 1 MiB chunks by this process.

Both are measured twice: warm (every file in the page cache: the reference then runs at memory speed) and
cold, where the archive's objects and the source files are first dropped from the page cache
(written back, then posix_fadvise DONTNEED), so that both read the disk. The target compares the cold
runs: "against reading the same files from disk".
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
RUNS = 5  # rounds of each way; the disk of a shared machine varies from one read to the next
READ_CHUNK = 1 << 20
_BOUNDARY = re.compile(r'boundary="?([^";\s]+)"?')


class RetrieveFailed(RuntimeError):
    """The answer was not the whole series."""


class _Delimiters:
    """Counts ``--boundary`` in a body read in chunks, delimiters split over two chunks included, and keeps
    the body's last bytes to check its close delimiter."""

    def __init__(self, boundary: str) -> None:
        self.delimiter = b"--" + boundary.encode("ascii")
        self.count = 0
        self._tail = b""  # the last len(delimiter) - 1 bytes seen
        self.end = b""  # the last bytes seen, as many as the close delimiter has

    def feed(self, chunk: bytes) -> None:
        keep = len(self.delimiter) - 1
        # A delimiter is either inside the chunk or starts in the tail and ends in the chunk's first bytes.
        self.count += chunk.count(self.delimiter) + (self._tail + chunk[:keep]).count(self.delimiter)
        self._tail = chunk[-keep:] if len(chunk) >= keep else (self._tail + chunk)[-keep:]
        close = len(self.delimiter) + 4
        self.end = chunk[-close:] if len(chunk) >= close else (self.end + chunk)[-close:]

    def closed(self) -> bool:
        return self.end.rstrip(b"\r\n").endswith(self.delimiter + b"--")


def retrieve(client: httpx.Client, path: str, instances: int) -> tuple[float, int]:
    """Seconds to read the whole answer, and its bytes; fails unless it holds ``instances`` parts."""
    start = time.perf_counter()
    with client.stream("GET", path, headers={"Accept": ACCEPT}) as response:
        if response.status_code != 200:
            response.read()
            raise RetrieveFailed(f"HTTP {response.status_code}: {response.text[:300]}")
        found = _BOUNDARY.search(response.headers.get("content-type", ""))
        if found is None:
            raise RetrieveFailed(f"no boundary in {response.headers.get('content-type')!r}")
        delimiters = _Delimiters(found.group(1))
        size = 0
        for chunk in response.iter_raw():
            size += len(chunk)
            delimiters.feed(chunk)
    seconds = time.perf_counter() - start
    parts = delimiters.count - 1  # every part has a delimiter; the close delimiter is one more
    if parts != instances or not delimiters.closed():
        raise RetrieveFailed(f"{parts} parts (closed: {delimiters.closed()}), {instances} expected")
    return seconds, size


def curl(url: str, auth: dict[str, str]) -> tuple[float, int]:
    """Seconds for curl to read the same answer into /dev/null (its process start included), and its bytes."""
    command = ["curl", "-sS", "-o", "/dev/null", "-H", f"Accept: {ACCEPT}"]
    command += [arg for name, value in auth.items() for arg in ("-H", f"{name}: {value}")]
    command += ["-w", "%{http_code} %{size_download}"]
    start = time.perf_counter()
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    status, size = [*done.stdout.split(), "", ""][:2]
    if done.returncode != 0 or status != "200":
        raise RetrieveFailed(f"curl: exit {done.returncode}, HTTP {status}: {done.stderr[-300:]}")
    return seconds, int(size)


def read_files(files: list[Path]) -> tuple[float, int]:
    """Seconds to read every file in 1 MiB chunks, and the bytes read."""
    buffer = bytearray(READ_CHUNK)
    size = 0
    start = time.perf_counter()
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buffer):
                size += n
    return time.perf_counter() - start, size


def evict(files: list[Path]) -> None:
    """Drop the files' pages from the page cache. Written back first: the kernel keeps dirty pages, and a
    dataset generated in this run may not be on disk yet (its first cold read then ran at memory speed)."""
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)  # nothing to do for a clean file
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _cold(read: Callable[[], tuple[float, int]], files: list[Path]) -> Callable[[], tuple[float, int]]:
    def run() -> tuple[float, int]:
        evict(files)
        return read()

    return run


def _row(label: str, reference: bool, seconds: list[float], sizes: list[int], total: int) -> dict[str, Any]:
    rates = [total / s / 1e6 for s in seconds]
    return {
        "label": label,
        "reference": reference,
        "runs": len(seconds),
        "seconds": [round(s, 3) for s in seconds],
        "bytes": sizes[0],
        "best_mb_per_s": round(max(rates), 1),
        "median_mb_per_s": round(statistics.median(rates), 1),
    }


def run(
    base_url: str,
    auth: dict[str, str],
    uids: tuple[str, str],
    files: list[Path],
    total_bytes: int,
    stored: list[Path],
) -> dict[str, Any]:
    """``RUNS`` rounds of each way of reading the series, interleaved so that a burst of load on the machine
    does not fall on one of them alone; MB/s are of the series' file bytes (10^6 bytes per MB). ``stored``:
    the archive's object files, dropped from the page cache before each cold WADO-RS run."""
    study, series = uids
    path = f"/dicom-web/studies/{study}/series/{series}"
    n = len(files)
    ways: list[tuple[str, bool, Callable[[], tuple[float, int]]]] = []
    with httpx.Client(base_url=base_url, headers=auth, timeout=600) as client:
        if shutil.which("curl"):
            ways.append(
                ("WADO-RS, curl, cold cache", False, _cold(lambda: curl(base_url + path, auth), stored))
            )
        ways.append(("WADO-RS, httpx, cold cache", False, _cold(lambda: retrieve(client, path, n), stored)))
        ways.append(("read the files, cold cache (reference)", True, _cold(lambda: read_files(files), files)))
        ways.append(("WADO-RS, httpx, warm cache", False, lambda: retrieve(client, path, n)))
        if shutil.which("curl"):
            ways.append(("WADO-RS, curl, warm cache (reference)", True, lambda: curl(base_url + path, auth)))
        ways.append(("read the files, warm cache (reference)", True, lambda: read_files(files)))
        timings: dict[str, list[tuple[float, int]]] = {label: [] for label, _, _ in ways}
        for _ in range(RUNS):
            for label, _, way in ways:
                timings[label].append(way())
    rows = [
        _row(label, reference, [s for s, _ in timings[label]], [b for _, b in timings[label]], total_bytes)
        for label, reference, _ in ways
    ]
    # The judged runs, both from the disk: WADO-RS to curl (C: its own share of the two cores is small, as
    # a browser's network stack's is), else to httpx; and reading the files
    wado = rows[0]
    disk = next(row for row in rows if row["label"].startswith("read the files, cold"))
    return {
        "instances": n,
        "bytes": total_bytes,
        "accept": ACCEPT,
        "rows": rows,
        "ratio": round(wado["best_mb_per_s"] / disk["best_mb_per_s"], 3),
        "ratio_median": round(wado["median_mb_per_s"] / disk["median_mb_per_s"], 3),
    }
