"""The remote AE registry over HTTP, for administrators: what ``lightbox ae`` does on the command line, and
a C-ECHO from the archive to a registered AE, to check that it can be reached."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from lightbox.api import schemas
from lightbox.api.actor import request_actor
from lightbox.app import Archive
from lightbox.domain.accounts import ALL_AE_PERMISSIONS, AePermission
from lightbox.index.base import RemoteAE as RemoteAERecord
from lightbox.services.echo import EchoService

# PS3.5 6.2: 16 characters of the default repertoire but backslash, not all spaces (those are padding)
AE_TITLE_PATTERN = r"^[\x20-\x5b\x5d-\x7e]*[\x21-\x5b\x5d-\x7e][\x20-\x5b\x5d-\x7e]*$"
HOST_PATTERN = r"^[A-Za-z0-9.\-:\[\]]{1,253}$"  # a host name, an IPv4 or an IPv6 address
# ``path``: an AE title may hold a slash; without it, "/api/aes/A/echo" could name two routes
AeTitle = Annotated[str, Path(pattern=AE_TITLE_PATTERN, max_length=16, description="The remote AE's title")]


class RemoteAE(BaseModel):
    ae_title: str
    host: str
    port: int
    description: str
    permissions: list[AePermission] = Field(description="What it may ask of the archive")


class NewRemoteAE(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ae_title: str = Field(pattern=AE_TITLE_PATTERN, max_length=16)
    host: str = Field(pattern=HOST_PATTERN, max_length=253, description="Host name or address")
    port: int = Field(ge=1, le=65535, description="Its DICOM port")
    description: str = Field("", max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$", description="For people")
    permissions: list[AePermission] = Field(
        default_factory=lambda: sorted(ALL_AE_PERMISSIONS),
        max_length=len(AePermission),
        description="What it may ask of the archive (echo, store, find, get, move); by default everything",
    )


class EchoAnswer(BaseModel):
    ok: bool = Field(description="The AE answered the C-ECHO with success")
    status: int | None = Field(description="The C-ECHO-RSP's status; null when none came")
    milliseconds: float = Field(description="From opening the connection to the answer or the failure")
    error: str | None = Field(None, description="What went wrong, when something did")


def _ae(ae: RemoteAERecord) -> RemoteAE:
    permissions = [p for p in AePermission if p in ae.permissions]  # in the enum's order, as shown elsewhere
    return RemoteAE(
        ae_title=ae.ae_title,
        host=ae.host,
        port=ae.port,
        description=ae.description,
        permissions=permissions,
    )


def router(archive: Archive, executor: Executor, echo: EchoService) -> APIRouter:
    routes = APIRouter(prefix="/api/aes", tags=["remote AEs"])
    manage = archive.manage

    async def call(fn: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, fn)

    @routes.get(
        "",
        summary="The registered remote AEs",
        response_model=list[RemoteAE],
        responses=schemas.problem_responses(),
    )
    async def listing() -> Any:
        return [_ae(ae) for ae in await call(manage.list_remote_aes)]

    @routes.post(
        "",
        summary="Register a remote AE (a C-MOVE destination, a modality, a workstation)",
        status_code=201,
        response_model=RemoteAE,
        responses=schemas.problem_responses(400, 409),
    )
    async def add(body: NewRemoteAE, request: Request) -> Any:
        actor = request_actor(request, "api")
        added = await call(
            lambda: manage.add_remote_ae(
                body.ae_title, body.host, body.port, body.description, frozenset(body.permissions), actor
            )
        )
        return _ae(added)

    @routes.delete(
        "/{ae_title:path}",
        summary="Remove a remote AE from the registry",
        response_model=RemoteAE,
        responses=schemas.problem_responses(400, 404),
    )
    async def remove(ae_title: AeTitle, request: Request) -> Any:
        actor = request_actor(request, "api")
        return _ae(await call(lambda: manage.remove_remote_ae(ae_title, actor)))

    @routes.post(
        "/{ae_title:path}/echo",
        summary="Send a C-ECHO from the archive to a registered AE",
        description="The archive opens an association to the AE, as it would for a C-MOVE, and sends a "
        "C-ECHO. An AE that cannot be reached, rejects the association or does not answer within a few "
        "seconds is an answer with `ok` false and the reason in `error`.",
        response_model=EchoAnswer,
        responses=schemas.problem_responses(400, 404),
    )
    async def verify(ae_title: AeTitle) -> Any:
        ae = await call(lambda: manage.get_remote_ae(ae_title))
        result = await echo.echo(ae)
        return EchoAnswer(
            ok=result.ok, status=result.status, milliseconds=result.milliseconds, error=result.error
        )

    return routes
