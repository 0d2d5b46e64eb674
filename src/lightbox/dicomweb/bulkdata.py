"""WADO-RS bulkdata resource (PS3.18 10.4.1.1.5): one bulk data value of an instance, as metadata names it.

The value is streamed from storage as one part of a multipart/related response of type
application/octet-stream (PS3.18 8.7.3.3): the place of each value is kept at ingest, so nothing is parsed.
Compressed pixel data is served by frame instead.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from lightbox.app import Archive
from lightbox.dicomweb.problems import problem
from lightbox.dicomweb.share_scope import PIXEL_TAGS, deidentification

OCTET_STREAM = "application/octet-stream"


def router(archive: Archive, executor: Executor) -> APIRouter:
    routes = APIRouter(tags=["dicomweb"])

    @routes.get(
        "/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tag}",
        summary="One bulk data value of an instance",
        response_class=StreamingResponse,
    )
    async def bulkdata(request: Request, study: str, series: str, instance: str, tag: str) -> Response:
        if deidentification(request) is not None and tag.upper() not in PIXEL_TAGS:
            return problem(403, "a de-identified share link gives the pixel data only of the bulk data")
        if not _accepts_octet_stream(request.headers.get("accept", "")):
            return problem(406, f'bulk data is served as multipart/related; type="{OCTET_STREAM}"')
        loop = asyncio.get_running_loop()
        value = await loop.run_in_executor(
            executor, archive.metadata.bulk_value, study, series, instance, tag
        )
        boundary = secrets.token_hex(16)
        head = f"--{boundary}\r\nContent-Type: {OCTET_STREAM}\r\nContent-Length: {value.length}\r\n\r\n"
        tail = f"\r\n--{boundary}--\r\n".encode()

        async def body() -> AsyncIterator[bytes]:
            yield head.encode()
            chunks: Iterator[bytes] = value.chunks
            while chunk := await loop.run_in_executor(executor, next, chunks, b""):
                yield chunk
            yield tail

        media_type = f'multipart/related; type="{OCTET_STREAM}"; boundary={boundary}'
        return StreamingResponse(body(), media_type=media_type)

    return routes


def _accepts_octet_stream(accept: str) -> bool:
    """No Accept, a wildcard, or multipart/related of application/octet-stream (PS3.18 8.7.3.3)."""
    if not accept.strip():
        return True
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        kind = next((p.partition("=")[2].strip('"') for p in params if p.lower().startswith("type=")), "")
        wildcard = kind in ("", "*/*", "application/*", OCTET_STREAM)
        if media in ("*/*", "multipart/*") or (media == "multipart/related" and wildcard):
            return True
    return False
