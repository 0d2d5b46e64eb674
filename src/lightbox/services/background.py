"""A service's work loop in a thread of its own, stopped at shutdown between two rounds."""

from __future__ import annotations

import abc
import threading


class BackgroundLoop(abc.ABC):
    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop after the round in progress, and wait for it."""
        self._stop.set()
        self._thread.join()

    @abc.abstractmethod
    def _run(self) -> None:
        """Rounds until ``self._stop`` is set; waits on it between rounds."""
