"""Refuse logins after repeated failures: of one user name, and (four times as many) of one client address.

Counted in this process's memory: each node of a cluster counts its own, and a restart forgets them. The
window slides: a failure counts for ``window`` after it happened.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

ADDRESS_FACTOR = 4  # a client address may fail for this many user names' worth before it is refused


class LoginThrottle:
    def __init__(
        self, attempts: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self.clock = clock
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def retry_after(self, name: str, address: str) -> float | None:
        """Seconds until a login of ``name`` from ``address`` may be tried again; None: it may now."""
        with self._lock:
            waits = [
                self._wait(f"user:{name.lower()}", self.attempts),
                self._wait(f"address:{address}", self.attempts * ADDRESS_FACTOR),
            ]
        return max((w for w in waits if w is not None), default=None)

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (f"user:{name.lower()}", f"address:{address}"):
                self._failures[key].append(now)

    def succeeded(self, name: str) -> None:
        """A right password clears the user name's failures (not the address's)."""
        with self._lock:
            self._failures.pop(f"user:{name.lower()}", None)

    def _wait(self, key: str, limit: int) -> float | None:
        failures = self._failures.get(key)
        if not failures:
            return None
        now = self.clock()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        if len(failures) < limit:
            return None
        return failures[-limit] + self.window - now  # when the oldest failure that counts expires
