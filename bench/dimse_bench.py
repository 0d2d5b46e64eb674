"""DICOM ingest over C-STORE: ``lightbox serve`` against dcmtk's storescp on the same files, in the same run.

storescu sends the CT dataset over 1 and 4 associations, at storescu's default maximum PDU (16 kB) and at
128 kB. storescp only writes files; Lightbox also fsyncs and indexes every object before it answers, so the
ratio is the price of "nothing acknowledged is ever lost" as much as of the network code.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.dcmtk import ENV, storescp, tool
from tests.support.server import running_server

CONFIGS = [(1, None), (1, 131072), (4, None), (4, 131072)]  # associations, storescu --max-send-pdu


def _send(port: int, called_ae: str, files: list[Path], associations: int, max_pdu: int | None) -> float:
    """Seconds for storescu processes (one per association) to send ``files`` between them."""
    storescu = tool("storescu")
    extra = ["--max-send-pdu", str(max_pdu)] if max_pdu else []
    groups = [files[i::associations] for i in range(associations)]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [storescu, *extra, "-aec", called_ae, "127.0.0.1", str(port), *map(str, group)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for group in groups
    ]
    failures = [p.stderr.read().decode(errors="replace") for p in procs if p.wait() != 0 and p.stderr]
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"storescu failed: {failures[0][-500:]}")
    return elapsed


def run(files: list[Path], total_bytes: int, workdir: Path) -> list[dict[str, Any]]:
    """One row per configuration: instances/s and MB/s for storescp and Lightbox, and their ratio."""
    rows = []
    for associations, max_pdu in CONFIGS:
        label = f"{associations} assoc., {'128 kB' if max_pdu else '16 kB'} PDU"
        base = workdir / f"dimse-{associations}-{max_pdu or 'default'}"
        with storescp(base / "storescp") as port:
            reference = _send(port, "STORESCP", files, associations, max_pdu)
        with running_server(base / "lightbox") as server:
            measured = _send(server.dicom_port, "LIGHTBOX", files, associations, max_pdu)
        shutil.rmtree(base, ignore_errors=True)
        n = len(files)
        rows.append(
            {
                "label": label,
                "associations": associations,
                "max_send_pdu": max_pdu or 16384,
                "instances": n,
                "storescp_per_s": round(n / reference, 1),
                "lightbox_per_s": round(n / measured, 1),
                "lightbox_mb_per_s": round(total_bytes / measured / 1e6, 1),
                "ratio": round(reference / measured, 3),
            }
        )
    return rows
