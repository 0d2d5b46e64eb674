"""Share links over HTTP: made, listed and revoked at /api/shares; opened at /share/{token}.

Opening a link sets a cookie that stands for it (HttpOnly, SameSite=Lax, Secure on HTTPS, until the link
expires) and answers a page naming the study and its DICOMweb address; the web app's viewer takes over
from there. A DICOMweb client can send the token as a bearer token instead.
"""

from __future__ import annotations

import asyncio
import html
import math
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from lightbox.api import schemas
from lightbox.api.actor import request_actor
from lightbox.api.share_access import SHARE_COOKIE
from lightbox.app import Archive
from lightbox.dicomweb.urls import dicomweb_base
from lightbox.domain.shares import DEFAULT_SHARE_DAYS, MAX_SHARE_DAYS, ShareLink
from lightbox.services.shares import MAX_NOTE


class NewShare(BaseModel):
    study_instance_uid: str = Field(
        min_length=1, max_length=64, pattern=schemas.UID_PATTERN, description="The study to share"
    )
    days: float = Field(DEFAULT_SHARE_DAYS, gt=0, le=MAX_SHARE_DAYS, description="How long the link works")
    deidentify: bool = Field(False, description="Show the study de-identified (PS3.15 Basic Profile)")
    note: str = Field("", max_length=MAX_NOTE, description="For people: whom it is for, why")


class Share(BaseModel):
    id: int
    study_instance_uid: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    deidentify: bool
    note: str


class CreatedShare(Share):
    url: str = Field(description="The link to give; it holds the token, which is not shown again")
    token: str = Field(description="The same token, for a DICOMweb client (Authorization: Bearer)")


def _share(link: ShareLink) -> Share:
    return Share(
        id=link.id,
        study_instance_uid=link.study_instance_uid,
        created_by=link.created_by,
        created_at=link.created_at,
        expires_at=link.expires_at,
        revoked_at=link.revoked_at,
        deidentify=link.deidentify,
        note=link.note,
    )


def router(archive: Archive, executor: Executor) -> APIRouter:
    routes = APIRouter(tags=["shares"])
    shares = archive.shares

    async def call(fn: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, fn)

    @routes.post(
        "/api/shares",
        summary="Share one study, read-only, with someone outside the archive's users",
        status_code=201,
        response_model=CreatedShare,
        responses=schemas.problem_responses(400, 404),
    )
    async def create(body: NewShare, request: Request) -> Any:
        user, actor = request.state.user, request_actor(request, "api")
        token, link = await call(
            lambda: shares.create(
                user,
                body.study_instance_uid,
                days=body.days,
                deidentify=body.deidentify,
                note=body.note,
                source=actor,
            )
        )
        url = f"{str(request.base_url).rstrip('/')}/share/{token}"
        return CreatedShare(**_share(link).model_dump(), url=url, token=token)

    @routes.get(
        "/api/shares",
        summary="Share links: all of them for an administrator, one's own otherwise",
        response_model=list[Share],
        responses=schemas.problem_responses(),
    )
    async def listing(request: Request) -> Any:
        user = request.state.user
        return [_share(link) for link in await call(lambda: shares.list(user))]

    @routes.delete(
        "/api/shares/{share_id}",
        summary="Revoke a share link: it opens nothing from now on",
        response_model=Share,
        responses=schemas.problem_responses(404),
    )
    async def revoke(share_id: Annotated[int, Path(ge=1, le=2**63 - 1)], request: Request) -> Any:
        user, actor = request.state.user, request_actor(request, "api")
        return _share(await call(lambda: shares.revoke(user, share_id, actor)))

    @routes.get("/share/{token}", include_in_schema=False)
    async def landing(token: str, request: Request) -> Response:
        access = await call(lambda: shares.access(token))
        if access is None:
            link = await call(lambda: shares.link_of(token))
            gone = link is not None  # known, but expired or revoked
            text = "This link has expired or was revoked." if gone else "This link is not valid."
            return HTMLResponse(
                _page("Link not available", f"<p>{text}</p>"), status_code=410 if gone else 404
            )
        await call(lambda: shares.opened(access, request_actor(request, "http")))
        link = access.link
        study = html.escape(link.study_instance_uid)
        dicomweb = html.escape(f"{dicomweb_base(request)}/studies/{link.study_instance_uid}")
        how = "de-identified" if link.deidentify else "with the patient's identity"
        body = (
            f"<p>A study has been shared with you, read-only and {how}, until "
            f"{link.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC.</p>"
            f"<p>Study Instance UID: <code>{study}</code></p>"
            f'<p><a href="/viewer?StudyInstanceUIDs={study}">Open it in the viewer</a></p>'
            f"<p>DICOMweb: <code>{dicomweb}</code></p>"
        )
        answer = HTMLResponse(_page("Shared study", body))
        seconds = max(1, math.floor((link.expires_at - datetime.now(UTC)).total_seconds()))
        answer.set_cookie(
            SHARE_COOKIE,
            token,
            max_age=seconds,
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="lax",
            path="/",
        )
        answer.headers["Cache-Control"] = "no-store"
        answer.headers["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
        return answer

    return routes


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} - Lightbox</title></head>"
        f"<body><main><h1>{title}</h1>{body}</main></body></html>"
    )
