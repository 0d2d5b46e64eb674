"""Share links over HTTP: made, listed and revoked at /api/shares; opened at /share/{token}.

Opening a link sets a cookie that stands for it (HttpOnly, SameSite=Lax, Secure on HTTPS, until the link
expires) and answers a page naming the study (unless the link de-identifies it), until when the link
works, and a link to the images, which its script follows at once: the outside doctor lands in the viewer.
A DICOMweb client can send the token as a bearer token instead.
"""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from lightbox.api import schemas
from lightbox.api.actor import request_actor
from lightbox.api.share_access import SHARE_COOKIE
from lightbox.app import Archive
from lightbox.dicomweb.urls import dicomweb_base
from lightbox.domain.shares import DEFAULT_SHARE_DAYS, MAX_SHARE_DAYS, ShareLink
from lightbox.services.shares import MAX_NOTE
from lightbox.web.display import dicom_date, person_name
from lightbox.web.pages import templates


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
            context = {"title": "Link not available", "gone": gone}
            answer = templates.TemplateResponse(
                request, "share_gone.html", context, status_code=410 if gone else 404
            )
            answer.headers["Cache-Control"] = "no-store"
            return answer
        await call(lambda: shares.opened(access, request_actor(request, "http")))
        study = await call(lambda: shares.named_study(access))
        link = access.link
        expires = link.expires_at.astimezone(UTC)
        context = {
            "title": "Shared study",
            "deidentify": link.deidentify,
            "patient": person_name(study.patient_name) if study else "",
            "description": study.study_description if study else "",
            "date": dicom_date(study.study_date) if study else "",
            "expires": f"{expires:%Y-%m-%d %H:%M} UTC",
            "expires_iso": expires.isoformat(timespec="seconds"),
            "viewer": "/viewer?" + urlencode({"StudyInstanceUIDs": link.study_instance_uid}, safe=","),
            "dicomweb": f"{dicomweb_base(request)}/studies/{link.study_instance_uid}",
        }
        answer = templates.TemplateResponse(request, "share.html", context)
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
