"""Write an ingest session's chunks on a worker thread, in order, while the caller goes on receiving.

The event loop that receives a C-STORE must not open the pending blob, hash and write each fragment itself:
those calls release the GIL, so on a worker thread they overlap the reception of the next fragments
instead of delaying it. The session is opened on the worker as the first fragment arrives; later fragments
are batched (one hand-over per ``_BATCH`` bytes) and written in order by whichever thread drains the queue.
Once the first ``_HEAD`` bytes are in, the header is read from them on another worker, while the pixel
data is still arriving. Memory stays bounded: past ``_MAX_QUEUED`` bytes waiting, ``write`` waits for the
disk, which slows the sender down as TCP flow control would.

``finish`` never waits for a job still queued in the executor (that could deadlock a full pool): it
drains what is left itself, and does without an early header that has not started. ``complete`` is
``finish`` for the event loop: the thread that writes the last batch goes on to finish the object, so no
other thread has to wake up and wait for it (the sender waits for that acknowledgement).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future

from lightbox.domain.errors import LightboxError
from lightbox.services.ingest import EarlyHeader, IngestResult, IngestSession, read_early_header

_BATCH = 64 * 1024
_HEAD = 128 * 1024
_MAX_QUEUED = 8 * 1024 * 1024


class WriteBehind:
    """An ingest session fed from one thread (the event loop) and opened and written on ``executor``.

    ``finish`` runs on the executor too. Whatever failed on the way (opening the session, a write) is raised
    by ``finish``, as the session itself would have.
    """

    def __init__(
        self,
        open_session: Callable[[], IngestSession],
        executor: Executor,
        early_header: Callable[[bytes], EarlyHeader | None] = read_early_header,
    ) -> None:
        self._open_session = open_session
        self._read_early_header = early_header
        self._session: IngestSession | None = None
        self._executor = executor
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._head: list[bytes] | None = []  # the first bytes, until the early header is asked for
        self._head_size = 0
        self._early: Future[EarlyHeader | None] | None = None
        self._queue: deque[list[bytes]] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._draining = False  # a thread is writing from the queue
        self._error: BaseException | None = None
        self._result: Future[IngestResult] | None = None  # set by ``complete``
        self._finishing = False  # a drain took on the finishing for ``complete``

    # --- the event loop's side ---------------------------------------------------------------------------
    def write(self, fragment: bytes | bytearray | memoryview) -> None:
        chunk = bytes(fragment)  # the caller's buffer is reused for the next fragment
        first = not self._head_size
        self._batch.append(chunk)
        self._batch_size += len(chunk)
        if self._head is not None:
            self._head.append(chunk)
            self._head_size += len(chunk)
            if self._head_size >= _HEAD:
                self._early = self._executor.submit(self._read_early_header, b"".join(self._head))
                self._head = None
        if self._batch_size >= _BATCH or first:
            self._hand_over()  # the first fragment at once: the blob is created while the rest arrives
            self._schedule_drain()

    def complete(self) -> Future[IngestResult]:
        """After the last fragment: the object is finished on the executor (see ``finish``), by the thread
        that drains the queue when one does; the future holds its result or what went wrong."""
        self._hand_over()
        result: Future[IngestResult] = Future()
        with self._cond:
            self._result = result
            draining = self._draining
        if not draining:
            self._executor.submit(self._drain)
        return result

    def abort(self) -> None:
        with self._cond:
            self._queue.clear()
            self._error = self._error or LightboxError("the transfer was aborted")
            draining = self._draining
        self._batch = []
        if not draining and self._session is not None:
            self._session.abort()  # else the draining thread sees the error and aborts the session

    # --- the executor's side -----------------------------------------------------------------------------
    def finish(self) -> IngestResult:
        self._hand_over()
        self._drain()
        with self._cond:
            self._cond.wait_for(lambda: not self._draining)  # another thread's drain, running
            error = self._error
        if error is not None:
            if self._session is not None:
                self._session.abort()
            raise error
        return self._opened().finish(self._early_header())

    def _early_header(self) -> EarlyHeader | None:
        if self._early is None or self._early.cancel():  # not started: the session parses it all itself
            return None
        return self._early.result()

    def _opened(self) -> IngestSession:
        if self._session is None:
            self._session = self._open_session()
        return self._session

    def _hand_over(self) -> None:
        if not self._batch:
            return
        batch, size = self._batch, self._batch_size
        self._batch, self._batch_size = [], 0
        with self._cond:
            self._cond.wait_for(lambda: self._queued < _MAX_QUEUED)
            self._queue.append(batch)
            self._queued += size

    def _schedule_drain(self) -> None:
        with self._cond:
            if self._draining:
                return
        self._executor.submit(self._drain)

    def _drain(self) -> None:
        """Write what is queued, unless another thread is at it (it takes what is queued meanwhile)."""
        with self._cond:
            if self._draining:
                return
            self._draining = True
        aborted = False
        to_finish: Future[IngestResult] | None = None  # ``complete``'s, when this thread finishes the object
        while not aborted:
            with self._cond:
                if not self._queue or self._error is not None:
                    # Stop and say so in one step: a batch queued or an abort from now on finds no drain
                    # running, and is then written, or aborted, by whoever comes next.
                    aborted = self._error is not None
                    self._draining = False
                    self._cond.notify_all()
                    if self._result is not None and not self._finishing:
                        self._finishing = True
                        to_finish = self._result
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
        if to_finish is not None:
            self._finish_into(to_finish)
        elif aborted and self._session is not None:
            self._session.abort()

    def _finish_into(self, result: Future[IngestResult]) -> None:
        try:
            result.set_result(self.finish())
        except BaseException as exc:
            result.set_exception(exc)
