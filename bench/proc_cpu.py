"""CPU time of another process (all its threads, user and system), from ``/proc/<pid>/stat``."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` so far, in seconds (proc(5): fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces: skip past it
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S
