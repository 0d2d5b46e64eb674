"""dcmtk's storescu as the sender: files split over concurrent associations, one storescu process each."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.support.dcmtk import ENV, tool

TIMEOUT_S = 300.0  # far beyond any healthy transfer of the benchmark's files


def send(
    port: int, called_ae: str, files: list[Path], associations: int = 1, max_pdu: int | None = None
) -> float:
    """Seconds for ``associations`` storescu processes to send ``files`` between them; raises if one fails."""
    return send_groups(port, called_ae, [files[i::associations] for i in range(associations)], max_pdu)


def send_groups(
    port: int,
    called_ae: str,
    groups: list[list[Path]],
    max_pdu: int | None = None,
    timeout: float = TIMEOUT_S,
) -> float:
    """Seconds for one storescu process per group, all started at once, to send its files."""
    storescu = tool("storescu")
    extra = ["--max-send-pdu", str(max_pdu)] if max_pdu else []
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
    try:
        # communicate() drains each stderr, so a chatty process cannot block on a full pipe.
        errors = [p.communicate(timeout=max(started + timeout - time.perf_counter(), 0.1))[1] for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
            p.wait()
        raise RuntimeError(f"storescu did not finish within {timeout:.0f} s (a stalled server?)") from None
    elapsed = time.perf_counter() - started
    failures = [err.decode(errors="replace") for p, err in zip(procs, errors, strict=True) if p.returncode]
    if failures:
        raise RuntimeError(f"storescu failed ({len(failures)} of {len(procs)}): {failures[0][-300:].strip()}")
    return elapsed
