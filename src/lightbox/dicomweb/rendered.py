"""WADO-RS rendered and thumbnail resources (PS3.18 10.4.1.1.3, 10.4.1.1.4): images for people.

A frame is decoded, put through its Modality LUT and a VOI window (the one asked for, else the object's),
scaled to the viewport asked for, and sent as JPEG or PNG. One image goes as itself; several (a study, a
series, a frame list) as multipart/related, rendered one at a time in the thread pool as the response goes.
A thumbnail is one small image: for a series its middle instance, for a study that of its first series.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from lightbox.app import Archive
from lightbox.dicomweb import render
from lightbox.dicomweb.media import choose
from lightbox.dicomweb.problems import problem
from lightbox.dicomweb.wado import client_source, frame_numbers
from lightbox.dicomweb.wado_multipart import Multipart
from lightbox.domain.errors import InvalidQuery, NotFound
from lightbox.domain.levels import Level
from lightbox.index.base import InstanceLocation

IMAGE_TYPES = ("image/jpeg", "image/png")
THUMBNAIL_SIZE = 128  # pixels, the longer side, when the client names no viewport
_FUNCTIONS = {"linear": "LINEAR", "linear-exact": "LINEAR_EXACT", "sigmoid": "SIGMOID"}  # PS3.18 8.3.5.1.2
_INSTANCE = "/studies/{study}/series/{series}/instances/{instance}"


@dataclass(frozen=True, slots=True)
class Presentation:
    """How to render: the query parameters of PS3.18 8.3.5.1 and the negotiated media type."""

    media_type: str
    window: render.Window | None = None
    viewport: tuple[int, int] | None = None
    quality: int = render.DEFAULT_QUALITY


def router(archive: Archive, executor: Executor) -> APIRouter:
    routes = APIRouter(tags=["dicomweb"])
    retrieve = archive.retrieve

    async def locate(level: Level, **uids: str) -> list[InstanceLocation]:
        selection = {key: [value] for key, value in uids.items()}
        found = await asyncio.get_running_loop().run_in_executor(
            executor, lambda: list(retrieve.resolve(level, selection))
        )
        if not found:
            raise NotFound("nothing stored for " + ", ".join(f"{k} {v}" for k, v in uids.items()))
        return found

    async def one_image(
        request: Request, location: InstanceLocation, index: int, thumbnail: bool
    ) -> Response:
        presentation = _presentation(request, thumbnail)
        if isinstance(presentation, Response):
            return presentation
        image = await asyncio.get_running_loop().run_in_executor(
            executor, _render, archive, location, index, presentation
        )
        retrieve.retrieved(client_source(request), [location], purpose="view")
        return Response(image, media_type=presentation.media_type)

    async def one_instance(study: str, series: str, sop_instance: str) -> InstanceLocation:
        uids = {"StudyInstanceUID": study, "SeriesInstanceUID": series, "SOPInstanceUID": sop_instance}
        return (await locate(Level.IMAGE, **uids))[0]

    def many_images(request: Request, items: Sequence[tuple[InstanceLocation, int]]) -> Response:
        presentation = _presentation(request, thumbnail=False, multipart=True)
        if isinstance(presentation, Response):
            return presentation
        parts = Multipart(presentation.media_type)
        loop = asyncio.get_running_loop()

        async def body() -> AsyncIterator[bytes]:
            for location, index in items:
                image = await loop.run_in_executor(executor, _render, archive, location, index, presentation)
                yield parts.head(presentation.media_type) + image
            yield parts.close()
            retrieve.retrieved(
                client_source(request), list(dict.fromkeys(loc for loc, _ in items)), purpose="view"
            )

        return StreamingResponse(body(), media_type=parts.content_type)

    # --- rendered ----------------------------------------------------------------------------------------
    @routes.get("/studies/{study}/rendered", summary="Every instance of a study, rendered")
    async def study_rendered(request: Request, study: str) -> Response:
        found = await locate(Level.STUDY, StudyInstanceUID=study)
        return many_images(request, [(loc, 0) for loc in found])

    @routes.get("/studies/{study}/series/{series}/rendered", summary="Every instance of a series, rendered")
    async def series_rendered(request: Request, study: str, series: str) -> Response:
        found = await locate(Level.SERIES, StudyInstanceUID=study, SeriesInstanceUID=series)
        return many_images(request, [(loc, 0) for loc in found])

    @routes.get(_INSTANCE + "/rendered", summary="An instance rendered (its first frame)")
    async def instance_rendered(request: Request, study: str, series: str, instance: str) -> Response:
        return await one_image(request, await one_instance(study, series, instance), 0, thumbnail=False)

    @routes.get(_INSTANCE + "/frames/{frame_list}/rendered", summary="Frames of an instance, rendered")
    async def frames_rendered(
        request: Request, study: str, series: str, instance: str, frame_list: str
    ) -> Response:
        numbers = frame_numbers(frame_list)
        location = await one_instance(study, series, instance)
        if len(numbers) == 1:
            return await one_image(request, location, numbers[0] - 1, thumbnail=False)
        return many_images(request, [(location, n - 1) for n in numbers])

    # --- thumbnails --------------------------------------------------------------------------------------
    @routes.get("/studies/{study}/thumbnail", summary="A thumbnail of a study")
    async def study_thumbnail(request: Request, study: str) -> Response:
        found = await locate(Level.STUDY, StudyInstanceUID=study)
        first_series = [loc for loc in found if loc.series_instance_uid == found[0].series_instance_uid]
        return await one_image(request, _middle(first_series), 0, thumbnail=True)

    @routes.get("/studies/{study}/series/{series}/thumbnail", summary="A thumbnail of a series")
    async def series_thumbnail(request: Request, study: str, series: str) -> Response:
        found = await locate(Level.SERIES, StudyInstanceUID=study, SeriesInstanceUID=series)
        return await one_image(request, _middle(found), 0, thumbnail=True)

    @routes.get(_INSTANCE + "/thumbnail", summary="A thumbnail of an instance")
    async def instance_thumbnail(request: Request, study: str, series: str, instance: str) -> Response:
        return await one_image(request, await one_instance(study, series, instance), 0, thumbnail=True)

    @routes.get(_INSTANCE + "/frames/{frame_list}/thumbnail", summary="A thumbnail of a frame")
    async def frame_thumbnail(
        request: Request, study: str, series: str, instance: str, frame_list: str
    ) -> Response:
        numbers = frame_numbers(frame_list)
        location = await one_instance(study, series, instance)
        return await one_image(request, location, numbers[0] - 1, thumbnail=True)

    return routes


def _render(archive: Archive, location: InstanceLocation, index: int, presentation: Presentation) -> bytes:
    """One frame as an image. Blocking: run it in the thread pool."""
    with archive.retrieve.open(location) as f:
        arr, ds = render.read_frame(f, index)
    pixels = render.to_display(arr, ds, presentation.window)
    if presentation.viewport is not None:
        pixels = render.fit(pixels, *presentation.viewport)
    if presentation.media_type == "image/png":
        return render.encode_png(pixels)
    return render.encode_jpeg(pixels, presentation.quality)


def _middle(locations: Sequence[InstanceLocation]) -> InstanceLocation:
    return locations[len(locations) // 2]


def _presentation(request: Request, thumbnail: bool, multipart: bool = False) -> Presentation | Response:
    """The rendering asked for, or a problem response (406 for media types, 400 for parameters)."""
    accept = request.headers.get("accept")
    if multipart and accept and "multipart/related" in accept:
        accept = _part_types(accept)
    media_type = choose(accept, IMAGE_TYPES)
    if media_type is None:
        return problem(406, f"rendered images are {' or '.join(IMAGE_TYPES)}; the request accepts neither")
    params = request.query_params
    viewport = _viewport(params.get("viewport"))
    if viewport is None and thumbnail:
        viewport = (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    return Presentation(media_type, _window(params.get("window")), viewport, _quality(params.get("quality")))


def _part_types(accept: str) -> str:
    """``multipart/related; type="image/png"`` entries as the part types they ask for."""
    out = []
    for entry in accept.split(","):
        media, *parameters = (p.strip() for p in entry.split(";"))
        kind = next((p.partition("=")[2].strip('"') for p in parameters if p.lower().startswith("type=")), "")
        out.append(kind or ("*/*" if media.lower() == "multipart/related" else media))
    return ", ".join(out)


def _window(value: str | None) -> render.Window | None:
    """``window=center,width[,function]`` (PS3.18 8.3.5.1.2)."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) not in (2, 3):
        raise InvalidQuery(f"window {value!r}: expected center,width or center,width,function")
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise InvalidQuery(f"window {value!r}: center and width must be numbers") from None
    if not (math.isfinite(center) and math.isfinite(width)) or width < 1:
        raise InvalidQuery(f"window {value!r}: the width must be at least 1, and both finite")
    function = None
    if len(parts) == 3:
        function = _FUNCTIONS.get(parts[2].lower())
        if function is None:
            raise InvalidQuery(f"window function {parts[2]!r}: one of {', '.join(_FUNCTIONS)}")
    return render.Window(center, width, function)


def _viewport(value: str | None) -> tuple[int, int] | None:
    """``viewport=vw,vh`` (PS3.18 8.3.5.1.3): the image is scaled to fit, its aspect ratio kept."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(p.isdigit() and 0 < int(p) <= 4096 for p in parts):
        raise InvalidQuery(f"viewport {value!r}: expected width,height in pixels, each 1 to 4096")
    return int(parts[0]), int(parts[1])


def _quality(value: str | None) -> int:
    """``quality`` 1 to 100 (PS3.18 8.3.5.1.4), for lossy media types."""
    if value is None:
        return render.DEFAULT_QUALITY
    if not value.strip().isdigit() or not 1 <= int(value) <= 100:
        raise InvalidQuery(f"quality {value!r} is not between 1 and 100")
    return int(value)
