"""WADO-RS frame requests one at a time, as a viewer asks for a series: what each costs the server.

A viewer (OHIF, cornerstone) fetches a series' images as one request per frame,
``GET .../instances/{uid}/frames/1`` with ``Accept: multipart/related; type="application/octet-stream";
transfer-syntax=*``. One client on one keep-alive connection asks for frame 1 of every instance of the
series in turn, ``PASSES`` times over (the first pass, untimed, warms the server up); each request is timed
until its body has been read. The server's CPU time over the timed passes (all its threads, from
``/proc``) divided by the requests is the figure that says how many viewers one server keeps fed; the
latency is what one of them waits on a quiet server.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

from bench.proc_cpu import cpu_seconds

ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
PASSES = 3  # the first one untimed


def run(base_url: str, auth: dict[str, str], uids: tuple[str, str], server_pid: int) -> dict[str, Any]:
    study, series = uids
    with httpx.Client(base_url=base_url, headers=auth, timeout=60) as client:
        listing = f"/dicom-web/studies/{study}/series/{series}/instances"
        listed = client.get(listing, params={"limit": 100_000})
        listed.raise_for_status()
        if listed.status_code == 204:  # QIDO-RS: no match
            raise RuntimeError(f"series {series} has no instances")
        instances = [item["00080018"]["Value"][0] for item in listed.json()]
        paths = [f"/dicom-web/studies/{study}/series/{series}/instances/{uid}/frames/1" for uid in instances]
        _pass(client, paths)
        cpu_before = cpu_seconds(server_pid)
        started = time.perf_counter()
        latencies = [s for _ in range(PASSES - 1) for s in _pass(client, paths)]
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(server_pid) - cpu_before
    timed = len(latencies)
    return {
        "instances": len(instances),
        "requests": timed,
        "median_ms": statistics.median(latencies) * 1e3,
        "p95_ms": statistics.quantiles(latencies, n=20)[-1] * 1e3,
        "requests_per_s": timed / elapsed,
        "server_cpu_ms": cpu / timed * 1e3,
    }


def _pass(client: httpx.Client, paths: list[str]) -> list[float]:
    """Frame 1 of each instance in turn; the seconds each request took until its body was read."""
    latencies = []
    for path in paths:
        started = time.perf_counter()
        answer = client.get(path, headers={"Accept": ACCEPT})
        if answer.status_code != 200 or not answer.content:
            raise RuntimeError(f"frame request answered {answer.status_code}: {answer.text[:200]}")
        latencies.append(time.perf_counter() - started)
    return latencies
