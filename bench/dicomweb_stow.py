"""STOW-RS ingest rate: CT files posted to ``POST /dicom-web/studies`` by 1 and by 4 clients.

Each request is ``multipart/related; type="application/dicom"`` with ``PER_REQUEST`` files, its body a
generator that reads each file in 1 MiB chunks as httpx sends it (chunked transfer encoding), so the client
never holds a request in memory. Each client is a thread with its own httpx client (one keep-alive
connection) and its own consecutive share of the files; the time runs from the first request to the last
answer. Every answer must be ``200`` and name every instance of its request as stored, and the archive is
counted afterwards. The sources are read from the page cache.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
from tests.support.server import running_server

PER_REQUEST = 20
READ_CHUNK = 1 << 20
_STORED = "00081199"  # Referenced SOP Sequence: the instances stored
_FAILED = "00081198"  # Failed SOP Sequence


class StowFailed(RuntimeError):
    """A request was not answered 200 with every instance stored, or the archive does not hold them."""


def _body(files: list[Path], boundary: str) -> Iterator[bytes]:
    for path in files:
        yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode("ascii")
        with open(path, "rb") as f:
            while chunk := f.read(READ_CHUNK):
                yield chunk
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("ascii")


def _stored(response: httpx.Response) -> tuple[int, int]:
    document = orjson.loads(response.content)
    return len(document.get(_STORED, {}).get("Value", [])), len(document.get(_FAILED, {}).get("Value", []))


def send(base_url: str, auth: dict[str, str], files: list[Path]) -> int:
    """Post ``files``, ``PER_REQUEST`` a request, on one connection; returns the number of requests."""
    requests = 0
    with httpx.Client(base_url=base_url, headers=auth, timeout=300) as client:
        for first in range(0, len(files), PER_REQUEST):
            batch = files[first : first + PER_REQUEST]
            boundary = uuid.uuid4().hex
            headers = {
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Accept": "application/dicom+json",
            }
            response = client.post("/dicom-web/studies", content=_body(batch, boundary), headers=headers)
            if response.status_code != 200:
                raise StowFailed(f"HTTP {response.status_code}: {response.text[:300]}")
            stored, failed = _stored(response)
            if stored != len(batch) or failed:
                raise StowFailed(f"{stored} of {len(batch)} instances stored, {failed} failed")
            requests += 1
    return requests


def run(files: list[Path], total_bytes: int, clients: int, workdir: Path) -> dict[str, Any]:
    """A fresh archive and server; ``clients`` threads post their shares of ``files`` at once."""
    base = workdir / f"stow-{clients}"
    shutil.rmtree(base, ignore_errors=True)
    per = -(-len(files) // clients)
    shares = [files[i : i + per] for i in range(0, len(files), per)]
    with running_server(base / "lightbox") as server:
        with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="stow-client") as pool:
            start = time.perf_counter()
            requests = sum(pool.map(lambda share: send(server.base_url, server.headers, share), shares))
            seconds = time.perf_counter() - start
        status, statistics = server.get_json("/api/statistics")
    shutil.rmtree(base, ignore_errors=True)
    if status != 200 or statistics.get("instances") != len(files):
        raise StowFailed(f"the archive holds {statistics.get('instances')} instances, {len(files)} expected")
    n = len(files)
    return {
        "label": f"{clients} client{'s' if clients > 1 else ''}, {PER_REQUEST} instances a request",
        "clients": clients,
        "instances": n,
        "requests": requests,
        "bytes": total_bytes,
        "seconds": round(seconds, 3),
        "instances_per_s": round(n / seconds, 1),
        "mb_per_s": round(total_bytes / seconds / 1e6, 1),
        "stored": statistics.get("instances"),
    }
