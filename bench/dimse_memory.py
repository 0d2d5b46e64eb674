"""Resident memory of ``lightbox serve`` under C-STORE: one very large object, then many associations at once.

The server's VmRSS is sampled every 50 ms from ``/proc`` while storescu sends, after its VmHWM was reset, so
the peak is the higher of the samples and of VmHWM. Each case gets a fresh archive and a fresh server, and
the archive is counted afterwards: a store that was refused fails the run instead of flattering it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.support.server import running_server

from bench import big_file
from bench.rss import RssSampler
from bench.storescu import send, send_groups
from lightbox.app import build_archive
from lightbox.config import load_settings

MAX_PDU = 131072


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _stored_instances(data_dir: Path) -> int:
    archive = build_archive(load_settings(data_dir=data_dir.resolve()))
    try:
        return archive.manage.statistics().instances
    finally:
        archive.close()


def _check_stored(data_dir: Path, expected: int, what: str) -> None:
    stored = _stored_instances(data_dir)
    if stored != expected:
        raise RuntimeError(f"{what}: the archive holds {stored} instances, {expected} expected")


def big_object(mib: int, workdir: Path) -> dict[str, Any]:
    """One multi-frame object of ``mib`` MiB of pixel data over one association."""
    base = _fresh(workdir / "memory-big")
    source = base / "big.dcm"
    size = big_file.write(source, big_file.frames_for(mib))
    data = base / "lightbox"
    with running_server(data) as server, RssSampler(server.process.pid) as rss:
        seconds = send(server.dicom_port, "LIGHTBOX", [source], 1, MAX_PDU)
    _check_stored(data, 1, "the large object")
    shutil.rmtree(base, ignore_errors=True)
    return {
        "label": f"one {size_label(mib)} object, 1 association",
        "object_bytes": size,
        "seconds": round(seconds, 2),
        "mb_per_s": round(size / seconds / 1e6, 1),
        **rss.as_dict(),
    }


def concurrent(files: list[Path], total_bytes: int, associations: int, workdir: Path) -> dict[str, Any]:
    """``associations`` storescu processes at once, each sending its share of ``files``."""
    base = _fresh(workdir / "memory-concurrent")
    data = base / "lightbox"
    groups = [files[i::associations] for i in range(associations)]
    with running_server(data) as server, RssSampler(server.process.pid) as rss:
        seconds = send_groups(server.dicom_port, "LIGHTBOX", groups, MAX_PDU)
    _check_stored(data, len(files), f"{associations} concurrent associations")
    shutil.rmtree(base, ignore_errors=True)
    n = len(files)
    return {
        "label": f"{associations} associations at once, {n // associations} CT each",
        "associations": associations,
        "instances": n,
        "seconds": round(seconds, 2),
        "instances_per_s": round(n / seconds, 1),
        "mb_per_s": round(total_bytes / seconds / 1e6, 1),
        **rss.as_dict(),
    }


def size_label(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"
