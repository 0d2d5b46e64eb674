"""A progress line on stderr for the long phases: redrawn on a terminal, printed now and then in a log."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType


class Progress:
    def __init__(self, label: str, total: int | None) -> None:
        self.label = label
        self.total = total
        self._done = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tty = sys.stderr.isatty()
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self._done += n

    def _line(self) -> str:
        elapsed = time.perf_counter() - self._start
        rate = self._done / elapsed if elapsed > 0 else 0.0
        of = f"/{self.total:,}" if self.total else ""
        return f"  {self.label}: {self._done:,}{of} ({rate:,.0f}/s, {elapsed:.0f} s)"

    def _run(self) -> None:
        interval = 0.5 if self._tty else 30.0  # a log file needs only a sign of life
        while not self._stop.wait(interval):
            if self._tty:
                sys.stderr.write("\r" + self._line() + "\x1b[K")
            else:
                sys.stderr.write(self._line() + "\n")
            sys.stderr.flush()

    def __enter__(self) -> Progress:
        self._start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        if self._tty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
