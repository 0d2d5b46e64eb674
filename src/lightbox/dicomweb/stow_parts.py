"""The parts of one STOW-RS request, each streamed into an ingest session of its own as its bytes arrive.

PS3.18 10.5.1.2: one application/dicom part per PS3.10 instance. A part's bytes go to a ``WriteBehind`` (so
the disk work runs on the executor while the event loop goes on reading the body); at the part's end its
session is finished on the executor, where the object becomes durable and indexed, or is refused with a
domain error whose DICOM status is the instance's Failure Reason (PS3.18 I.2.2). Up to ``_FINISHING``
parts finish while the next ones arrive. Memory holds the first bytes of the part being read (the UIDs
for the response and the study check) and what the write-behind queue holds, whatever the part's size.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from lightbox.dicomweb.multipart_related import (
    Event,
    PartBegin,
    PartData,
    PartEnd,
    PartHeaders,
    parse_media_type,
)
from lightbox.dicomweb.stow_header import HEAD_BYTES, PartHeader, read_part_header
from lightbox.dicomweb.stow_media import DICOM
from lightbox.domain import status
from lightbox.domain.actor import Actor
from lightbox.domain.errors import DataSetMismatch, InvalidObject, LightboxError
from lightbox.services.ingest import IngestResult, IngestService
from lightbox.services.write_behind import WriteBehind

log = logging.getLogger(__name__)

# Parts being finished (durable and indexed) on the executor while the next ones are read.
_FINISHING = 2
# RFC 2045 6.1: the identity encodings; PS3.18 sends instances as binary.
_IDENTITY_ENCODINGS = ("", "binary", "8bit", "7bit")


@dataclass(frozen=True, slots=True)
class Stored:
    result: IngestResult


@dataclass(frozen=True, slots=True)
class Failed:
    """A part not stored: ``reason`` is its Failure Reason (PS3.18 I.2.2); UIDs are "" when unknown."""

    reason: int
    message: str
    sop_class_uid: str = ""
    sop_instance_uid: str = ""


PartOutcome = Stored | Failed


class PartsReceiver(Protocol):
    """Where the multipart events of a STOW-RS request go, by the request's root media type."""

    async def handle(self, event: Event) -> None: ...

    def discard(self) -> None:
        """Whatever happened, the part in progress leaves nothing behind."""

    async def abort(self) -> None:
        """The request broke off: ``discard``, and settle what is kept of the parts complete before."""

    async def outcomes(self) -> list[PartOutcome]:
        """What became of each part (each instance), in request order."""
        ...


class _DicomPart:
    """An application/dicom part on its way into an ingest session."""

    def __init__(self, writer: WriteBehind) -> None:
        self.writer = writer
        self.head = bytearray()
        self.size = 0

    def write(self, data: bytes) -> None:
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self.size += len(data)
        self.writer.write(data)


class _RefusedPart:
    """A part that is not stored whatever it holds (its media type); its bytes are read and dropped."""

    def __init__(self, failure: Failed) -> None:
        self.failure = failure


class StowParts:
    """Feed it the multipart events of a request; ``outcomes`` then says what became of each part, in order.

    ``study``: the Study Instance UID of the target resource (POST /studies/{study}), whose instances only
    are stored. ``abort`` discards the part being read and waits for those already complete.
    """

    def __init__(
        self,
        ingest: IngestService,
        executor: Executor,
        source: Actor,
        study: str | None = None,
    ) -> None:
        self._ingest = ingest
        self._executor = executor
        self._source = source
        self._study = study
        self._current: _DicomPart | _RefusedPart | None = None
        self._finishing: deque[asyncio.Future[PartOutcome]] = deque()
        self._outcomes: list[PartOutcome] = []

    async def handle(self, event: Event) -> None:
        if isinstance(event, PartData):
            if isinstance(self._current, _DicomPart):
                self._current.write(event.data)
        elif isinstance(event, PartHeaders):
            self._current = self._begin(event)
        elif isinstance(event, PartEnd):
            await self._end()
        elif isinstance(event, PartBegin):
            self._current = None

    def discard(self) -> None:
        """The request broke off: the part in progress leaves nothing behind (complete parts are kept)."""
        if isinstance(self._current, _DicomPart):
            self._current.writer.abort()
        self._current = None

    async def abort(self) -> None:
        """``discard``, then wait for the complete parts to be stored."""
        self.discard()
        await self._collect()

    async def outcomes(self) -> list[PartOutcome]:
        await self._collect()
        return self._outcomes

    # --- one part --------------------------------------------------------------------------------------
    def _begin(self, headers: PartHeaders) -> _DicomPart | _RefusedPart:
        # A part without Content-Type is of the type the request declared (RFC 2387 3.1).
        declared = headers.get("content-type")
        media_type = parse_media_type(declared).type if declared else DICOM
        encoding = headers.get("content-transfer-encoding").lower()
        if media_type != DICOM:
            return _refused(f"a part of type {declared!r} where {DICOM} is expected")
        if encoding not in _IDENTITY_ENCODINGS:
            return _refused(f"Content-Transfer-Encoding {encoding} is not supported; send parts as binary")
        ingest, source = self._ingest, self._source
        return _DicomPart(WriteBehind(lambda: ingest.begin(source), self._executor))

    async def _end(self) -> None:
        part, self._current = self._current, None
        loop = asyncio.get_running_loop()
        if isinstance(part, _DicomPart):
            head, whole = bytes(part.head), part.size <= len(part.head)
            future = loop.run_in_executor(self._executor, _store, part.writer, head, whole, self._study)
        elif isinstance(part, _RefusedPart):
            future = loop.create_future()
            future.set_result(part.failure)
        else:
            return
        self._finishing.append(future)
        if len(self._finishing) >= _FINISHING:
            self._outcomes.append(await self._finishing.popleft())

    async def _collect(self) -> None:
        while self._finishing:
            self._outcomes.append(await self._finishing.popleft())


def _refused(message: str) -> _RefusedPart:
    log.warning("STOW-RS part refused: %s", message)
    return _RefusedPart(Failed(status.CANNOT_UNDERSTAND, message))


def _store(writer: WriteBehind, head: bytes, whole: bool, study: str | None) -> PartOutcome:
    """Finish one part's ingest session (on the executor): durable and indexed, or refused."""
    header: PartHeader | None = None
    try:
        if study is not None:
            header = read_part_header(head, whole)
            _check_study(writer, header, study, whole)
        return Stored(writer.finish())
    except LightboxError as exc:
        return _failed(exc.dicom_status, exc.message, header or read_part_header(head, whole))
    except Exception as exc:
        log.exception("STOW-RS part failed")
        writer.abort()
        message = f"internal error while storing: {exc}"
        return _failed(status.PROCESSING_FAILURE, message, header or read_part_header(head, whole))


def _check_study(writer: WriteBehind, header: PartHeader, study: str, whole: bool) -> None:
    """PS3.18 10.5: a store to /studies/{study} stores instances of that study only.

    Checked before the session is finished, so that an instance of another study is never stored (nor
    replaces a stored instance of the same SOP Instance UID).
    """
    if header.study_instance_uid == study:
        return
    writer.abort()
    error: LightboxError
    if header.study_instance_uid:
        error = DataSetMismatch(
            f"Study Instance UID {header.study_instance_uid} is not the study {study} of the request"
        )
    elif header.complete:
        error = InvalidObject("StudyInstanceUID is missing")
    elif whole:
        error = InvalidObject("not a DICOM Part 10 object")
    else:
        error = DataSetMismatch(
            f"the Study Instance UID is not within the first {HEAD_BYTES} bytes of the object, so it "
            f"cannot be checked against the study {study} of the request; store it with POST /studies"
        )
    log.warning("STOW-RS instance %s refused: %s", header.sop_instance_uid or "(unknown)", error.message)
    raise error


def _failed(reason: int, message: str, header: PartHeader) -> Failed:
    return Failed(reason, message, header.sop_class_uid, header.sop_instance_uid)
