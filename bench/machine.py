"""What the figures were measured on: hardware, software versions, filesystem and the code's commit."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _filesystem(path: Path) -> str:
    """The type of the mount holding ``path`` (the longest mount point that contains it)."""
    target = str(path.resolve())
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            mount, fstype = fields[1], fields[2]
            inside = target == mount or target.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best):
                best, kind = mount, fstype
    except OSError:
        pass
    return kind


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    return [round(x, 2) for x in os.getloadavg()]


def describe(data_dir: Path) -> dict[str, Any]:
    mem_kb = _first("/proc/meminfo", "MemTotal")
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no", "src")
    return {
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "os": f"{platform.system()} {platform.release()}",
        "filesystem": _filesystem(data_dir),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": None,  # filled in when the server is up
        "pydicom": version("pydicom"),
        "sqlalchemy": version("sqlalchemy"),
        "lightbox": version("lightbox"),
        "commit": (commit + ("+local changes" if dirty else "")) if commit else None,
        "load_average_at_start": load_average(),
        "load_average_at_end": None,  # filled in when the run ends
    }
