"""One stored object on its way to a WADO client, as a Part 10 file (PS3.18 8.7.3.1): as stored, streamed
from storage in chunks, or converted by the retrieve service (decompressed, or re-encoded losslessly).

An object is prepared before anything of it is written: its blob is opened and its first chunk read, or
its conversion done. A missing blob or a failed conversion is then an error of that object alone, and a
response of one object can still answer it with a status.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor
from typing import BinaryIO

from lightbox.deidentify import DeidentifyOptions
from lightbox.formats.file_meta import encode_file_meta
from lightbox.index.base import InstanceLocation
from lightbox.services.retrieve import RetrieveService
from lightbox.services.transcode import CannotConvert

_CHUNK = 1 << 20


class OutgoingObject:
    """A prepared object: ``chunks()`` gives its bytes; ``close()`` releases the blob if they never go."""

    def __init__(
        self, location: InstanceLocation, transfer_syntax: str, first: bytes, rest: BinaryIO | bytes
    ) -> None:
        self.location = location
        self.transfer_syntax = transfer_syntax
        self._first = first
        self._rest = rest

    async def chunks(self, executor: Executor) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            yield self._first
            if isinstance(self._rest, bytes):
                if self._rest:
                    yield self._rest
                return
            # Chunk by chunk, read off the event loop: one chunk of the object is in memory at a time
            while chunk := await loop.run_in_executor(executor, self._rest.read, _CHUNK):
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        if not isinstance(self._rest, bytes):
            self._rest.close()


async def prepare(
    retrieve: RetrieveService,
    executor: Executor,
    location: InstanceLocation,
    transfer_syntax: str,
    read_ahead: Callable[[], None] | None = None,
    deidentify: DeidentifyOptions | None = None,
) -> OutgoingObject:
    """The object in ``transfer_syntax``: its stored syntax, or one ``retrieve.converted`` produces;
    de-identified with ``deidentify``. ``read_ahead`` runs first, in the same trip to the executor (a
    series' next objects asked of storage). Raises the retrieve service's errors (NotFound for a missing
    blob, CannotConvert)."""
    loop = asyncio.get_running_loop()
    if deidentify is not None:
        whole = await loop.run_in_executor(
            executor, _deidentified, retrieve, location, transfer_syntax, deidentify, read_ahead
        )
        return OutgoingObject(location, transfer_syntax, whole, b"")
    if transfer_syntax == location.transfer_syntax_uid:
        first, rest = await loop.run_in_executor(executor, _open, retrieve, location, read_ahead)
        return OutgoingObject(location, transfer_syntax, first, rest)
    # One object decoded in memory at a time, as for C-GET and C-MOVE
    data_set = await loop.run_in_executor(executor, _convert, retrieve, location, transfer_syntax, read_ahead)
    meta = encode_file_meta(location.sop_class_uid, location.sop_instance_uid, transfer_syntax)
    return OutgoingObject(location, transfer_syntax, meta, data_set)


def _open(
    retrieve: RetrieveService, location: InstanceLocation, read_ahead: Callable[[], None] | None
) -> tuple[bytes, BinaryIO | bytes]:
    """The first chunk of the stored object and the rest to read, in one trip to the executor; an object
    no larger than a chunk is read whole and its blob closed (a buffered read comes short only at its end)."""
    if read_ahead is not None:
        read_ahead()
    f = retrieve.open(location)
    try:
        first = f.read(_CHUNK)
        if len(first) < _CHUNK and isinstance(f, io.BufferedIOBase):
            f.close()
            return first, b""
    except BaseException:
        f.close()
        raise
    return first, f


def _deidentified(
    retrieve: RetrieveService,
    location: InstanceLocation,
    transfer_syntax: str,
    options: DeidentifyOptions,
    read_ahead: Callable[[], None] | None,
) -> bytes:
    if read_ahead is not None:
        read_ahead()
    return retrieve.deidentified(location, transfer_syntax, options)


def _convert(
    retrieve: RetrieveService,
    location: InstanceLocation,
    transfer_syntax: str,
    read_ahead: Callable[[], None] | None,
) -> bytes:
    if read_ahead is not None:
        read_ahead()
    return retrieve.converted(location, transfer_syntax)


async def prepare_any(
    retrieve: RetrieveService,
    executor: Executor,
    location: InstanceLocation,
    syntaxes: Sequence[str],
    read_ahead: Callable[[], None] | None = None,
    deidentify: DeidentifyOptions | None = None,
) -> OutgoingObject:
    """The object in the first of ``syntaxes`` it converts to. Raises the last CannotConvert when none
    does, and the retrieve service's other errors at once."""
    failure: CannotConvert | None = None
    for syntax in syntaxes:
        try:
            return await prepare(retrieve, executor, location, syntax, read_ahead, deidentify)
        except CannotConvert as exc:
            failure = exc
    assert failure is not None, "no transfer syntax to prepare the object in"
    raise failure
