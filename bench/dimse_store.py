"""DICOM ingest over C-STORE: ``lightbox serve`` against dcmtk's storescp on the same files, in the same run.

storescu sends the CT dataset over 1 and 4 associations, at storescu's default maximum PDU (16 kB) and at
128 kB. storescp only writes files; Lightbox also fsyncs and indexes every object before it answers, so the
ratio is the price of "nothing acknowledged is ever lost" as much as of the network code. The server's CPU
time per object is recorded too: unlike the rates, it hardly moves with the machine's other load.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.dcmtk import storescp
from tests.support.server import running_server

from bench.proc_cpu import cpu_seconds, voluntary_switches
from bench.storescu import send

CONFIGS = [(1, None), (1, 131072), (4, None), (4, 131072)]  # associations, storescu --max-send-pdu


@dataclass(frozen=True)
class Sent:
    """One storescu run against ``lightbox serve``: wall seconds and the server's CPU seconds meanwhile, of
    which ``main_cpu_seconds`` on its main thread (the event loop's)."""

    seconds: float
    cpu_seconds: float
    main_cpu_seconds: float
    switches: int  # voluntary context switches of its threads


def reference(files: list[Path], associations: int, max_pdu: int | None, folder: Path) -> float:
    """Seconds for storescp to receive ``files`` (it only writes them)."""
    with storescp(folder) as port:
        seconds = send(port, "STORESCP", files, associations, max_pdu)
    shutil.rmtree(folder, ignore_errors=True)
    return seconds


def lightbox(
    files: list[Path],
    associations: int,
    max_pdu: int | None,
    folder: Path,
    around: Callable[[int], Any] | None = None,
    env: dict[str, str] | None = None,
) -> Sent:
    """Send ``files`` to a fresh ``lightbox serve`` in ``folder``; ``around(pid)``, when given, is a context
    manager entered around the transfer only (a profiler attached to the server); ``env``: the server's
    environment beyond this process's (another PYTHONPATH runs another tree's Lightbox)."""
    with running_server(folder, env=env) as server:
        pid = server.process.pid
        before, main_before, switches = cpu_seconds(pid), cpu_seconds(pid, pid), voluntary_switches(pid)
        if around is None:
            seconds = send(server.dicom_port, "LIGHTBOX", files, associations, max_pdu)
        else:
            with around(pid):
                seconds = send(server.dicom_port, "LIGHTBOX", files, associations, max_pdu)
        used, main_used = cpu_seconds(pid) - before, cpu_seconds(pid, pid) - main_before
        switches = voluntary_switches(pid) - switches
    shutil.rmtree(folder, ignore_errors=True)
    return Sent(seconds, used, main_used, switches)


def run(files: list[Path], total_bytes: int, workdir: Path) -> list[dict[str, Any]]:
    """One row per configuration: instances/s and MB/s for storescp and Lightbox, and their ratio."""
    rows = []
    for associations, max_pdu in CONFIGS:
        label = f"{associations} assoc., {'128 kB' if max_pdu else '16 kB'} PDU"
        base = workdir / f"dimse-{associations}-{max_pdu or 'default'}"
        seconds = reference(files, associations, max_pdu, base / "storescp")
        measured = lightbox(files, associations, max_pdu, base / "lightbox")
        shutil.rmtree(base, ignore_errors=True)
        n = len(files)
        rows.append(
            {
                "label": label,
                "associations": associations,
                "max_send_pdu": max_pdu or 16384,
                "instances": n,
                "storescp_per_s": round(n / seconds, 1),
                "lightbox_per_s": round(n / measured.seconds, 1),
                "lightbox_mb_per_s": round(total_bytes / measured.seconds / 1e6, 1),
                "lightbox_cpu_ms": round(measured.cpu_seconds / n * 1e3, 2),
                "ratio": round(seconds / measured.seconds, 3),
            }
        )
    return rows
