"""DICOM ingest over C-STORE: ``lightbox serve`` against dcmtk's storescp on the same files, in the same run.

storescu sends the CT dataset over 1 and 4 associations, at storescu's default maximum PDU (16 kB) and at
128 kB. storescp only writes files; Lightbox also fsyncs and indexes every object before it answers, so the
ratio is the price of "nothing acknowledged is ever lost" as much as of the network code.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.support.dcmtk import storescp
from tests.support.server import running_server

from bench.storescu import send

CONFIGS = [(1, None), (1, 131072), (4, None), (4, 131072)]  # associations, storescu --max-send-pdu


def run(files: list[Path], total_bytes: int, workdir: Path) -> list[dict[str, Any]]:
    """One row per configuration: instances/s and MB/s for storescp and Lightbox, and their ratio."""
    rows = []
    for associations, max_pdu in CONFIGS:
        label = f"{associations} assoc., {'128 kB' if max_pdu else '16 kB'} PDU"
        base = workdir / f"dimse-{associations}-{max_pdu or 'default'}"
        with storescp(base / "storescp") as port:
            reference = send(port, "STORESCP", files, associations, max_pdu)
        with running_server(base / "lightbox") as server:
            measured = send(server.dicom_port, "LIGHTBOX", files, associations, max_pdu)
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
