"""CPU time of another process (all its threads, user and system), from ``/proc/<pid>/stat``."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """utime + stime of ``pid`` so far, in seconds (proc(5): fields 14 and 15); of one of its threads only
    when ``thread`` (a thread id; the main thread's is the pid) is given."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread is not None else f"/proc/{pid}/stat"
    stat = Path(path).read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces: skip past it
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def voluntary_switches(pid: int) -> int:
    """How many times the threads of ``pid`` alive now went to sleep waiting for something (a lock, a
    queue, I/O): each hand-over of work between threads costs at least one."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total
