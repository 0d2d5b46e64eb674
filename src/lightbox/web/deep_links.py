"""Links a RIS or EHR can open: ``/accession/{AccessionNumber}`` finds the study (or studies) of an
accession number and sends the browser to the viewer with them (``/viewer?StudyInstanceUIDs=...``, the
viewer's own deep link). Both go through the login page first when the browser has no session."""

from __future__ import annotations

import asyncio
import html
from concurrent.futures import Executor
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydicom.dataset import Dataset

from lightbox.api.actor import request_actor
from lightbox.app import Archive
from lightbox.domain.levels import Level

ACCESSION_PREFIX = "/accession/"
_MOST = 20  # studies one accession number may open at once


def is_deep_link(path: str) -> bool:
    return path.startswith(ACCESSION_PREFIX)


def _valid_accession(value: str) -> bool:
    # SH (PS3.5 6.2): at most 16 characters, no backslash or control character; no wildcard either (a
    # link names one accession number, it does not search)
    return 0 < len(value) <= 16 and not any(c in "\\*?" or ord(c) < 0x20 for c in value)


def router(archive: Archive, executor: Executor) -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    @routes.get(ACCESSION_PREFIX + "{accession}")
    async def by_accession(accession: str, request: Request) -> Response:
        if not _valid_accession(accession):
            return _page(400, f"{accession!r} is not an accession number (1 to 16 characters, no wildcard).")
        identifier = Dataset()
        identifier.AccessionNumber, identifier.StudyInstanceUID = accession, ""
        source = request_actor(request, "http")

        def find() -> list[str]:
            result = archive.query.find(Level.STUDY, identifier, source=source)
            try:
                return [match["0020000D"]["Value"][0] for _, match in zip(range(_MOST), result, strict=False)]
            finally:
                result.cancel()

        studies = await asyncio.get_running_loop().run_in_executor(executor, find)
        if not studies:
            return _page(404, f"No study with accession number {accession} is stored here.")
        target = "/viewer?" + urlencode({"StudyInstanceUIDs": ",".join(studies)})
        return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})

    return routes


def _page(status: int, text: str) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Lightbox</title>'
        '<link rel="stylesheet" href="/static/lightbox.css"></head>'
        f'<body><main><section class="card narrow"><p>{html.escape(text)}</p>'
        '<p><a href="/">The study list</a></p></section></main></body></html>'
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
