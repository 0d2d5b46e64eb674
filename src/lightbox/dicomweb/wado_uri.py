"""WADO-URI (PS3.18 9): GET /wado?requestType=WADO&studyUID=..&seriesUID=..&objectUID=.. at the server root.

One object, as application/dicom (as stored, or converted as for WADO-RS) or rendered as image/jpeg. The
media type comes from the contentType parameter, else the Accept header; with neither, or a wildcard, it is
image/jpeg (PS3.18 9.3). Anonymization is refused rather than ignored: a client that asks for it must not
receive the identified object.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from concurrent.futures import Executor

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from lightbox.app import Archive
from lightbox.deidentify import DeidentifyOptions
from lightbox.dicomweb import frames, render
from lightbox.dicomweb.share_scope import deidentification
from lightbox.dicomweb.wado import client_source
from lightbox.dicomweb.wado_accept import (
    ANY,
    DICOM,
    NotAcceptable,
    object_syntax,
    parse_accept,
)
from lightbox.dicomweb.wado_objects import OutgoingObject, prepare
from lightbox.domain.actor import Actor
from lightbox.domain.errors import InvalidQuery, NotFound
from lightbox.domain.levels import Level
from lightbox.domain.uids import is_valid_uid
from lightbox.index.base import InstanceLocation
from lightbox.services.retrieve import RetrieveService
from lightbox.services.transcode import CannotConvert

JPEG = "image/jpeg"
_RENDERING = ("frameNumber", "windowCenter", "windowWidth", "imageQuality")


def router(archive: Archive, executor: Executor) -> APIRouter:
    api = APIRouter(tags=["dicomweb"])
    retrieve = archive.retrieve

    @api.get("/wado", summary="WADO-URI: one object as application/dicom, or rendered as image/jpeg")
    async def wado(
        request: Request,
        requestType: str | None = None,
        studyUID: str | None = None,
        seriesUID: str | None = None,
        objectUID: str | None = None,
        contentType: str | None = None,
        transferSyntax: str | None = None,
        anonymize: str | None = None,
        frameNumber: str | None = None,
        windowCenter: str | None = None,
        windowWidth: str | None = None,
        imageQuality: str | None = None,
    ) -> Response:
        if requestType != "WADO":
            raise InvalidQuery(f"requestType must be WADO, not {requestType!r}")
        study, series, instance = (
            _uid(name, value)
            for name, value in (("studyUID", studyUID), ("seriesUID", seriesUID), ("objectUID", objectUID))
        )
        if anonymize is not None:
            raise InvalidQuery("anonymize is not supported: this archive returns objects as stored")
        media_type = _media_type(contentType, request.headers.get("accept"))
        source = client_source(request)
        if media_type == DICOM:
            if given := [name for name in _RENDERING if request.query_params.get(name) is not None]:
                raise InvalidQuery(f"{', '.join(given)} apply to rendered images, not to application/dicom")
            if transferSyntax is not None and transferSyntax != ANY and not is_valid_uid(transferSyntax):
                raise InvalidQuery(f"transferSyntax {transferSyntax!r} is not a UID (PS3.18 9.4.2.4)")
            location = await _locate(retrieve, executor, study, series, instance)
            return await _dicom(
                retrieve, executor, location, transferSyntax, source, deidentification(request)
            )
        if transferSyntax is not None:
            raise InvalidQuery("transferSyntax applies to application/dicom only (PS3.18 9.4.2.4)")
        frame = _positive(frameNumber, "frameNumber", 1)
        window = _window(windowCenter, windowWidth)
        quality = _quality(imageQuality)
        location = await _locate(retrieve, executor, study, series, instance)
        loop = asyncio.get_running_loop()
        image = await loop.run_in_executor(executor, _render, retrieve, location, frame, window, quality)
        retrieve.retrieved(source, [location], purpose="view")
        return Response(image, media_type=JPEG)

    return api


def _uid(name: str, value: str | None) -> str:
    if not value or not is_valid_uid(value):
        raise InvalidQuery(f"{name} {value!r} is missing or not a valid UID")
    return value


def _media_type(content_type: str | None, accept: str | None) -> str:
    """application/dicom or image/jpeg, whichever ranks first (PS3.18 9.3: a wildcard is image/jpeg)."""
    for r in parse_accept(content_type if content_type else accept):
        if r.media_type == DICOM:
            return DICOM
        if r.media_type in (JPEG, "image/*", "*/*"):
            return JPEG
    raise NotAcceptable("only application/dicom and image/jpeg are served here")


async def _locate(
    retrieve: RetrieveService, executor: Executor, study: str, series: str, instance: str
) -> InstanceLocation:
    uids = {"StudyInstanceUID": [study], "SeriesInstanceUID": [series], "SOPInstanceUID": [instance]}
    loop = asyncio.get_running_loop()
    found = await loop.run_in_executor(executor, lambda: list(retrieve.resolve(Level.IMAGE, uids)))
    if not found:
        raise NotFound(f"no instance {instance} in series {series} of study {study} is stored here")
    return found[0]


async def _dicom(
    retrieve: RetrieveService,
    executor: Executor,
    location: InstanceLocation,
    wanted: str | None,
    source: Actor,
    deidentify: DeidentifyOptions | None = None,
) -> Response:
    syntax = object_syntax(wanted, location.transfer_syntax_uid)
    if syntax is None:
        raise NotAcceptable(
            f"the object cannot be given in {wanted}: it is stored in {location.transfer_syntax_uid}, "
            "and converts to 1.2.840.10008.1.2.1 or a lossless syntax at most"
        )
    try:
        obj = await prepare(retrieve, executor, location, syntax, deidentify=deidentify)
    except CannotConvert as exc:
        raise NotAcceptable(f"the object cannot be given in {syntax}: {exc}") from exc
    # No transfer-syntax parameter: PS3.18 8.7.3.5.2 forbids it in URI responses
    return StreamingResponse(_stream(retrieve, executor, obj, source), media_type=DICOM)


async def _stream(
    retrieve: RetrieveService, executor: Executor, obj: OutgoingObject, source: Actor
) -> AsyncIterator[bytes]:
    async for chunk in obj.chunks(executor):
        yield chunk
    retrieve.retrieved(source, [obj.location])


def _render(
    retrieve: RetrieveService,
    location: InstanceLocation,
    frame: int,
    window: render.Window | None,
    quality: int,
) -> bytes:
    with retrieve.open(location) as f:
        try:
            layout = frames.pixel_data(f)
        except frames.NoPixelData:
            uid = location.sop_instance_uid
            raise render.CannotRender(
                f"instance {uid} has no pixel data: ask for contentType=application/dicom"
            ) from None
        if frame > layout.number_of_frames:
            # PS3.18 9.5.2: a frame number past the last frame is a bad request
            raise InvalidQuery(f"frameNumber {frame}: the instance has {layout.number_of_frames} frame(s)")
        return render.render_jpeg(f, frame - 1, window=window, quality=quality)


def _positive(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not value.strip().isdigit() or int(value) < 1:
        raise InvalidQuery(f"{name} {value!r} is not a positive integer")
    return int(value)


def _window(center: str | None, width: str | None) -> render.Window | None:
    if center is None and width is None:
        return None
    if center is None or width is None:
        raise InvalidQuery("windowCenter and windowWidth go together")
    try:
        c, w = float(center), float(width)
    except ValueError:
        raise InvalidQuery(f"windowCenter {center!r} and windowWidth {width!r} must be numbers") from None
    if not (math.isfinite(c) and math.isfinite(w)) or w < 1:
        raise InvalidQuery("windowWidth must be at least 1, and both finite (PS3.3 C.11.2.1.2)")
    return render.Window(c, w)


def _quality(value: str | None) -> int:
    quality = _positive(value, "imageQuality", render.DEFAULT_QUALITY)
    if quality > 100:
        raise InvalidQuery(f"imageQuality {quality} is not between 1 and 100")
    return quality
