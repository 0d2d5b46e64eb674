"""C-GET and C-MOVE throughput: one CT series retrieved from ``lightbox serve`` by dcmtk's getscu and movescu.

The series is first stored in a fresh archive with storescu; its objects are then still in the page cache,
as a series just acquired would be. C-GET brings it back to getscu on the same association (128 kB PDUs,
getscu's largest); C-MOVE sends it to a storescp registered in Lightbox's AE registry. The same transfers
from dcmtk's own query/retrieve SCP (dcmqrscp, serving the source files) and a plain storescu -> storescp
copy are the references. Every transfer must deliver every instance, or the run fails.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.dcmtk import ENV, storescp, tool
from tests.support.server import lightbox_command, running_server

from bench.dcmqrscp import AE_TITLE as DCMQRSCP_AE
from bench.dcmqrscp import dcmqrscp
from bench.storescu import send

MAX_PDU = 131072  # the largest getscu and movescu accept
DESTINATION = "MOVEDEST"


def _keys(study_uid: str, series_uid: str) -> list[str]:
    keys = ["QueryRetrieveLevel=SERIES", f"StudyInstanceUID={study_uid}", f"SeriesInstanceUID={series_uid}"]
    return [arg for key in keys for arg in ("-k", key)]


def _run(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed: {(done.stdout + done.stderr)[-500:]}")
    return elapsed


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _received(folder: Path, expected: int, what: str) -> int:
    """Files in ``folder``; a transfer that delivered fewer than ``expected`` fails the run."""
    n = sum(1 for p in folder.iterdir() if p.is_file())
    if n != expected:
        raise RuntimeError(f"{what}: {n} files received, {expected} expected")
    return n


def get(port: int, called_ae: str, uids: tuple[str, str], into: Path) -> float:
    getscu = [tool("getscu"), "-S", "-aec", called_ae, "-pdu", str(MAX_PDU), "-od", str(_fresh(into))]
    return _run([*getscu, *_keys(*uids), "127.0.0.1", str(port)])


def move(port: int, called_ae: str, uids: tuple[str, str], destination: Path) -> float:
    _fresh(destination)
    movescu = [tool("movescu"), "-S", "-aec", called_ae, "-aem", DESTINATION, "-pdu", str(MAX_PDU)]
    return _run([*movescu, *_keys(*uids), "127.0.0.1", str(port)])


def _register(data_dir: Path, ae_title: str, port: int) -> None:
    """Add the C-MOVE destination with the CLI, as an administrator would, before the server starts."""
    command = lightbox_command("ae", "add", ae_title, "--host", "127.0.0.1", "--port", str(port))
    subprocess.run([*command, "--data-dir", str(data_dir)], check=True, capture_output=True)


def run(files: list[Path], total_bytes: int, uids: tuple[str, str], workdir: Path) -> dict[str, Any]:
    """Seconds, instances/s and MB/s of each transfer of the series ``uids`` (its ``files``)."""
    n = len(files)
    base = _fresh(workdir / "retrieve")
    got, moved = base / "got", base / "moved"
    timings: list[tuple[str, str, float]] = []  # operation, sender -> receiver, seconds
    with storescp(_fresh(moved), ae_title=DESTINATION, max_pdu=MAX_PDU) as destination_port:
        data = base / "lightbox"
        data.mkdir(parents=True)
        _register(data, DESTINATION, destination_port)
        # getscu and movescu call as GETSCU and MOVESCU: registered, as a workstation would be
        with running_server(data, aes=["GETSCU", "MOVESCU"]) as server:
            send(server.dicom_port, "LIGHTBOX", files, 1, MAX_PDU)
            seconds = get(server.dicom_port, "LIGHTBOX", uids, got)
            _received(got, n, "C-GET from Lightbox")
            timings.append(("C-GET", "getscu <- Lightbox", seconds))
            seconds = move(server.dicom_port, "LIGHTBOX", uids, moved)
            _received(moved, n, "C-MOVE from Lightbox")
            timings.append(("C-MOVE", "Lightbox -> storescp (movescu)", seconds))
        with dcmqrscp(base / "dcmqrscp", files, {DESTINATION: destination_port}) as port:
            seconds = get(port, DCMQRSCP_AE, uids, got)
            _received(got, n, "C-GET from dcmqrscp")
            timings.append(("C-GET", "getscu <- dcmqrscp (reference)", seconds))
            seconds = move(port, DCMQRSCP_AE, uids, moved)
            _received(moved, n, "C-MOVE from dcmqrscp")
            timings.append(("C-MOVE", "dcmqrscp -> storescp (reference)", seconds))
        _fresh(moved)  # storescp writes each file by its path, so its folder can be emptied under it
        seconds = send(destination_port, DESTINATION, files, 1, MAX_PDU)
        _received(moved, n, "storescu -> storescp")
        timings.append(("C-STORE", "storescu -> storescp (reference)", seconds))
    shutil.rmtree(base, ignore_errors=True)
    rows = [
        {
            "operation": operation,
            "label": label,
            "reference": "Lightbox" not in label,
            "instances": n,
            "received": n,
            "seconds": round(seconds, 3),
            "instances_per_s": round(n / seconds, 1),
            "mb_per_s": round(total_bytes / seconds / 1e6, 1),
        }
        for operation, label, seconds in timings
    ]
    return {"instances": n, "bytes": total_bytes, "max_pdu": MAX_PDU, "rows": rows}
