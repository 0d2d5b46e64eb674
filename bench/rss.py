"""Resident memory of another process, sampled from ``/proc/<pid>/status`` in a background thread."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from types import TracebackType

INTERVAL_S = 0.05


def status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` such as VmRSS (resident now) or VmHWM (resident peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (``clear_refs`` 5, Linux 4.0+); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """VmRSS every 50 ms while the block runs; ``baseline`` is taken on entry, ``peak`` is the highest of the
    samples and of VmHWM on exit (VmHWM catches a spike between samples once ``reset_peak`` cleared it)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline_kb = 0
        self.max_sampled_kb = 0
        self.hwm_kb: int | None = None
        self.samples = 0
        self._hwm_usable = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    @property
    def peak_kb(self) -> int:
        return max(self.max_sampled_kb, self.hwm_kb or 0)

    @property
    def growth_kb(self) -> int:
        return self.peak_kb - self.baseline_kb

    def _sample(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):  # the process may be exiting
            self.max_sampled_kb = max(self.max_sampled_kb, status_kb(self.pid, "VmRSS"))
            self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            self._sample()

    def __enter__(self) -> RssSampler:
        self.baseline_kb = status_kb(self.pid, "VmRSS")
        self.max_sampled_kb = self.baseline_kb
        self._hwm_usable = reset_peak(self.pid)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        if self._hwm_usable:
            with contextlib.suppress(OSError, RuntimeError):
                self.hwm_kb = status_kb(self.pid, "VmHWM")

    def as_dict(self) -> dict[str, object]:
        """In MiB (2^20 bytes), as ``/proc`` counts."""
        return {
            "baseline_mib": _mib(self.baseline_kb),
            "peak_mib": _mib(self.peak_kb),
            "growth_mib": _mib(self.growth_kb),
            "peak_sampled_mib": _mib(self.max_sampled_kb),
            "peak_hwm_mib": _mib(self.hwm_kb) if self.hwm_kb is not None else None,
            "samples": self.samples,
        }


def _mib(kb: int) -> float:
    return round(kb / 1024, 1)
