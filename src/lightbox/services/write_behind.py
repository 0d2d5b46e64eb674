"""Write an ingest session's chunks on a worker thread, in order, while the caller goes on receiving.

The event loop that receives a C-STORE must not open the pending blob, hash and write each fragment itself:
those calls release the GIL, so on a worker thread they overlap the reception of the next fragments
instead of delaying it. The session is opened on the worker as the first fragment arrives; later fragments
are batched (one hand-over per ``_BATCH`` bytes) and written by one drain task at a time, so they reach the
session in order. Memory stays bounded: past ``_MAX_QUEUED`` bytes waiting, ``write`` waits for the disk,
which slows the sender down as TCP flow control would.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor

from lightbox.domain.errors import LightboxError
from lightbox.services.ingest import IngestResult, IngestSession

_BATCH = 64 * 1024
_MAX_QUEUED = 8 * 1024 * 1024


class WriteBehind:
    """An ingest session fed from one thread (the event loop) and opened and written on ``executor``.

    ``finish`` must run on the executor too (it waits for the writes). Whatever failed on the way (opening
    the session, a write) is raised by ``finish``, as the session itself would have.
    """

    def __init__(self, open_session: Callable[[], IngestSession], executor: Executor) -> None:
        self._open_session = open_session
        self._session: IngestSession | None = None
        self._executor = executor
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._handed_over = False
        self._queue: deque[list[bytes]] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._draining = False
        self._error: BaseException | None = None

    def write(self, fragment: bytes | bytearray | memoryview) -> None:
        self._batch.append(bytes(fragment))  # the caller's buffer is reused for the next fragment
        self._batch_size += len(fragment)
        if self._batch_size >= _BATCH or not self._handed_over:
            self._hand_over()  # the first fragment at once: the blob is created while the rest arrives

    def finish(self) -> IngestResult:
        self._hand_over()
        with self._cond:
            self._cond.wait_for(lambda: not self._draining)
            error = self._error
        if error is not None:
            if self._session is not None:
                self._session.abort()
            raise error
        return self._opened().finish()

    def abort(self) -> None:
        with self._cond:
            self._queue.clear()
            self._error = self._error or LightboxError("the transfer was aborted")
            draining = self._draining
        self._batch = []
        if not draining and self._session is not None:
            self._session.abort()  # else the drain task sees the error and aborts the session as it stops

    def _opened(self) -> IngestSession:
        if self._session is None:
            self._session = self._open_session()
        return self._session

    def _hand_over(self) -> None:
        if not self._batch:
            return
        batch, size = self._batch, self._batch_size
        self._batch, self._batch_size, self._handed_over = [], 0, True
        with self._cond:
            self._cond.wait_for(lambda: self._queued < _MAX_QUEUED)
            self._queue.append(batch)
            self._queued += size
            if self._draining:
                return
            self._draining = True
        self._executor.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._cond:
                if not self._queue or self._error is not None:
                    aborted = self._error is not None
                    self._draining = False
                    self._cond.notify_all()
                    break
                batch = self._queue.popleft()
            try:
                session = self._opened()
                for chunk in batch:
                    session.write(chunk)
            except BaseException as exc:
                with self._cond:
                    self._error = exc
            with self._cond:
                self._queued -= sum(map(len, batch))
                self._cond.notify_all()
        if aborted and self._session is not None:
            self._session.abort()
