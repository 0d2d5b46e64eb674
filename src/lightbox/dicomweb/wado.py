"""WADO-RS retrieve (PS3.18 10.4): a study, a series or an instance as multipart/related application/dicom
objects, and frames of an instance as bulk data. Metadata, bulk data, rendered and thumbnail resources
live elsewhere.

Thin: the retrieve service resolves the selection and opens or converts each object; ``wado_accept``
negotiates the media type and transfer syntax of each part (PS3.18 8.7.8), ``wado_objects`` and
``frames`` read the bytes, ``wado_multipart`` frames them. Responses stream: the objects of a series go
out one chunk at a time, read from storage in the executor, never held whole.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydicom.uid import UID

from lightbox.api.actor import request_actor
from lightbox.app import Archive
from lightbox.deidentify import DeidentifyOptions
from lightbox.dicomweb import frames
from lightbox.dicomweb.share_scope import deidentification
from lightbox.dicomweb.wado_accept import (
    DICOM,
    DicomChoice,
    FrameChoice,
    MediaRange,
    NotAcceptable,
    choose_frames,
    dicom_choices,
    object_options,
    parse_accept,
)
from lightbox.dicomweb.wado_multipart import Multipart, part_content_type
from lightbox.dicomweb.wado_objects import OutgoingObject, prepare_any
from lightbox.domain.actor import Actor
from lightbox.domain.errors import InvalidQuery, LightboxError, NotFound
from lightbox.domain.levels import Level
from lightbox.index.base import InstanceLocation
from lightbox.services.retrieve import RetrieveService
from lightbox.services.transcode import CannotConvert, compress_frame

log = logging.getLogger(__name__)

_INSTANCE_PATH = "/studies/{study}/series/{series}/instances/{instance}"
# A frame request's first trip: the object opened, its layout, the first frame, its location and choice
_OpenedFrames = tuple[BinaryIO, frames.PixelData, bytes, InstanceLocation, FrameChoice]


def router(archive: Archive, executor: Executor) -> APIRouter:
    api = APIRouter(tags=["dicomweb"])
    wado = _Wado(archive.retrieve, executor)

    @api.get("/studies/{study}", summary="WADO-RS: every instance of a study")
    async def retrieve_study(study: str, request: Request) -> Response:
        return await wado.object_response(request, Level.STUDY, {"StudyInstanceUID": [study]})

    @api.get("/studies/{study}/series/{series}", summary="WADO-RS: every instance of a series")
    async def retrieve_series(study: str, series: str, request: Request) -> Response:
        uids = {"StudyInstanceUID": [study], "SeriesInstanceUID": [series]}
        return await wado.object_response(request, Level.SERIES, uids)

    @api.get(_INSTANCE_PATH, summary="WADO-RS: one instance")
    async def retrieve_instance(study: str, series: str, instance: str, request: Request) -> Response:
        uids = {"StudyInstanceUID": [study], "SeriesInstanceUID": [series], "SOPInstanceUID": [instance]}
        return await wado.object_response(request, Level.IMAGE, uids, single_part=True)

    @api.get(_INSTANCE_PATH + "/frames/{frame_list}", summary="WADO-RS: frames of an instance")
    async def retrieve_frames(
        study: str, series: str, instance: str, frame_list: str, request: Request
    ) -> Response:
        uids = {"StudyInstanceUID": [study], "SeriesInstanceUID": [series], "SOPInstanceUID": [instance]}
        return await wado.frame_response(request, uids, frame_numbers(frame_list))

    return api


def frame_numbers(frame_list: str) -> list[int]:
    """The frame list of a Frames resource: comma-separated frame numbers from 1 (PS3.18 10.4.1.1.6)."""
    numbers = []
    for item in frame_list.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise InvalidQuery(f"frame list {frame_list!r}: {item!r} is not a frame number (1, 2, ...)")
        numbers.append(int(item))
    return numbers


def client_source(request: Request) -> Actor:
    """Who retrieved, for the retrieve event."""
    return request_actor(request, "wado")


class _Wado:
    def __init__(self, retrieve: RetrieveService, executor: Executor) -> None:
        self.retrieve = retrieve
        self.executor = executor

    async def locate(self, level: Level, uids: Mapping[str, Sequence[str]]) -> list[InstanceLocation]:
        """The stored instances of the selection; NotFound when there are none, InvalidQuery (400) for a
        malformed UID."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._located, level, uids)

    def _located(self, level: Level, uids: Mapping[str, Sequence[str]]) -> list[InstanceLocation]:
        found = list(self.retrieve.resolve(level, uids))
        if not found:
            what = " / ".join(values[0] for values in uids.values())
            raise NotFound(f"no {level.value.lower()} {what} is stored here")
        return found

    # --- studies, series, instances (PS3.18 10.4.1.1.1-3) ------------------------------------------

    async def object_response(
        self,
        request: Request,
        level: Level,
        uids: Mapping[str, Sequence[str]],
        *,
        single_part: bool = False,
    ) -> Response:
        choices = dicom_choices(parse_accept(request.headers.get("accept")), single_part=single_part)
        locations = await self.locate(level, uids)
        plan: list[tuple[InstanceLocation, list[tuple[DicomChoice, str]]]] = []
        for location in locations:
            if options := object_options(choices, location.transfer_syntax_uid):
                plan.append((location, options))
        if not plan:
            stored = sorted({UID(loc.transfer_syntax_uid).name for loc in locations})
            raise NotAcceptable(
                f"the objects are stored as {', '.join(stored)}, which cannot be given in any acceptable "
                "transfer syntax: ask for transfer-syntax=* (as stored) or 1.2.840.10008.1.2.1"
            )
        source = client_source(request)
        deidentify = deidentification(request)
        # The first object is prepared before the response starts, so that a missing blob or a failed
        # conversion of a lone object is answered with its status rather than with a broken body
        first, skipped = await self._first_prepared(plan, deidentify)
        choice = next(c for c, syntax in plan[skipped][1] if syntax == first.transfer_syntax)
        if len(locations) == 1 and not choice.multipart:
            # a bare application/dicom, for an Instance resource (PS3.18 10.4.4)
            body = self._single(first, source)
            return StreamingResponse(body, media_type=part_content_type(DICOM, first.transfer_syntax))
        multipart = Multipart(DICOM)
        headers: dict[str, str] = {}
        status = 200
        if left_out := len(locations) - len(plan) + skipped:
            # Some instances have no acceptable representation: the others go, with 206 (Partial
            # Content), a status of the Retrieve transaction (PS3.2 Table N.7-92)
            status = 206
            headers["Warning"] = (
                f'299 lightbox "{left_out} of {len(locations)} instances left out: not stored in, nor '
                'convertible to, an acceptable transfer syntax"'
            )
        rest = [(loc, _syntaxes(opts)) for loc, opts in plan[skipped:]]
        body = self._object_parts(multipart, rest, first, source, deidentify)
        return StreamingResponse(body, status, headers, media_type=multipart.content_type)

    async def _first_prepared(
        self,
        plan: list[tuple[InstanceLocation, list[tuple[DicomChoice, str]]]],
        deidentify: DeidentifyOptions | None,
    ) -> tuple[OutgoingObject, int]:
        """The first object of the plan that can be prepared, and how many before it could not. A lone
        object's error is raised (NotAcceptable for a failed conversion); so is the last one's when no
        object of several can be prepared."""
        for position, (location, options) in enumerate(plan):
            try:
                syntaxes = _syntaxes(options)
                obj = await prepare_any(self.retrieve, self.executor, location, syntaxes, None, deidentify)
                return obj, position
            except LightboxError as exc:
                if position + 1 < len(plan):
                    log.warning("WADO-RS left out instance %s: %s", location.sop_instance_uid, exc)
                    continue
                if isinstance(exc, CannotConvert):
                    raise NotAcceptable(f"instance {location.sop_instance_uid}: {exc}") from exc
                raise
        raise AssertionError("a plan has at least one object")

    async def _single(self, obj: OutgoingObject, source: Actor) -> AsyncIterator[bytes]:
        async for chunk in obj.chunks(self.executor):
            yield chunk
        self.retrieve.retrieved(source, [obj.location])

    async def _object_parts(
        self,
        multipart: Multipart,
        plan: list[tuple[InstanceLocation, list[str]]],
        first: OutgoingObject,
        source: Actor,
        deidentify: DeidentifyOptions | None,
    ) -> AsyncIterator[bytes]:
        """The parts of the objects of ``plan``, ``first`` (prepared already) being the first's."""
        sent: list[InstanceLocation] = []
        loop = asyncio.get_running_loop()
        try:
            # Storage reads the next objects while one goes out: asked at each object's opening
            locations = [location for location, _ in plan]
            loop.run_in_executor(self.executor, self.retrieve.prefetch_ahead, locations, 0)
            for i, (location, syntaxes) in enumerate(plan):
                if i == 0:
                    obj = first
                else:
                    read_ahead = functools.partial(self.retrieve.prefetch_ahead, locations, i)
                    try:
                        obj = await prepare_any(
                            self.retrieve, self.executor, location, syntaxes, read_ahead, deidentify
                        )
                    except LightboxError as exc:
                        # Nothing of it was written: the other parts still go, and the log says why
                        # (the status line is gone already)
                        log.warning("WADO-RS left out instance %s: %s", location.sop_instance_uid, exc)
                        continue
                yield multipart.head(part_content_type(DICOM, obj.transfer_syntax))
                async for chunk in obj.chunks(self.executor):
                    yield chunk
                sent.append(location)
            yield multipart.close()
        finally:
            first.close()
            if sent:
                self.retrieve.retrieved(source, sent)

    # --- frames (PS3.18 10.4.1.1.6) ----------------------------------------------------------------

    async def frame_response(
        self, request: Request, uids: Mapping[str, Sequence[str]], numbers: list[int]
    ) -> Response:
        ranges = parse_accept(request.headers.get("accept"))
        # One trip to a worker thread for the instance's location, the object's opening, its frame layout
        # and the first frame: a viewer asks for one frame at a time, and each trip costs the request a
        # thread hand-over twice
        opening = self.executor.submit(self._open_first_frame, uids, numbers, ranges)
        try:
            opened = await asyncio.wrap_future(opening)
        except asyncio.CancelledError:  # the client went away: close the object once it has been opened
            opening.add_done_callback(_close_opened)
            raise
        f, layout, first, location, choice = opened
        multipart = Multipart(choice.media_type)
        body = self._frame_parts(
            multipart, choice, f, layout, numbers, first, location, client_source(request)
        )
        return StreamingResponse(body, media_type=multipart.content_type)

    def _open_first_frame(
        self, uids: Mapping[str, Sequence[str]], numbers: list[int], ranges: list[MediaRange]
    ) -> _OpenedFrames:
        """The instance located, its object opened, its frame layout, the first frame asked for and how the
        frames go out; the object is closed again when any of it fails."""
        [location] = self._located(Level.IMAGE, uids)
        choice = choose_frames(ranges, location.transfer_syntax_uid)
        f = self.retrieve.open(location)
        try:
            layout = frames.pixel_data(f)
            beyond = [n for n in numbers if n > layout.number_of_frames]
            if beyond:
                # A frame the instance does not have is a resource that does not exist
                raise NotFound(
                    f"instance {location.sop_instance_uid} has {layout.number_of_frames} frame(s): "
                    f"no frame {', '.join(map(str, beyond))}"
                )
            try:
                first = _read_frame(f, layout, numbers[0], choice)
            except CannotConvert as exc:
                raise NotAcceptable(f"instance {location.sop_instance_uid}: {exc}") from exc
            return f, layout, first, location, choice
        except BaseException:
            f.close()
            raise

    async def _frame_parts(
        self,
        multipart: Multipart,
        choice: FrameChoice,
        f: BinaryIO,
        layout: frames.PixelData,
        numbers: list[int],
        first: bytes,
        location: InstanceLocation,
        source: Actor,
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        content_type = part_content_type(choice.media_type, choice.transfer_syntax)
        try:
            for position, number in enumerate(numbers):
                if position == 0:
                    data = first
                else:  # one frame in memory at a time
                    data = await loop.run_in_executor(self.executor, _read_frame, f, layout, number, choice)
                yield multipart.head(content_type)
                yield data
            yield multipart.close()
            self.retrieve.retrieved(source, [location])
        finally:
            f.close()


def _close_opened(opening: Future[_OpenedFrames]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result()[0].close()


def _syntaxes(options: list[tuple[DicomChoice, str]]) -> list[str]:
    """The transfer syntaxes of the options, best first, each once."""
    return list(dict.fromkeys(syntax for _, syntax in options))


def _read_frame(f: BinaryIO, layout: frames.PixelData, number: int, choice: FrameChoice) -> bytes:
    if choice.encode:
        return compress_frame(f, number - 1, choice.transfer_syntax)
    return frames.read_frame(f, layout, number - 1, decode=choice.decode)
