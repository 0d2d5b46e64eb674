"""STOW-RS: the Studies Store transaction (PS3.18 10.5), POST /studies and POST /studies/{study}.

The body is read as a stream: each chunk goes through the multipart reader, and each application/dicom
part into an ingest session of its own as its bytes arrive (``stow_parts``); no part, and no upload, is
ever held whole in memory. Metadata and bulk data (application/dicom+json, ``stow_json``) must be
assembled before they are stored, and are held up to a limit. The response names what became of each
instance (PS3.18 10.5.3). A request that breaks off (the client goes away, or the multipart framing is
broken) discards the part being read; application/dicom parts complete before that are durable and
stay stored.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from lightbox.api.actor import request_actor
from lightbox.app import Archive
from lightbox.dicomweb import problems
from lightbox.dicomweb.multipart_related import MultipartError, MultipartReader
from lightbox.dicomweb.stow_json import HeldTooLarge, StowJsonParts
from lightbox.dicomweb.stow_media import DICOM_JSON, request_body, response_type
from lightbox.dicomweb.stow_parts import PartOutcome, PartsReceiver, Stored, StowParts
from lightbox.dicomweb.stow_response import response_body, status_code
from lightbox.dicomweb.urls import dicomweb_base
from lightbox.domain.uids import is_valid_uid

log = logging.getLogger(__name__)


def router(archive: Archive, executor: Executor) -> APIRouter:
    api = APIRouter(tags=["dicomweb"])

    async def store(request: Request, study: str | None) -> Response:
        accept = response_type(request.headers.get("accept"))  # 406 before reading the body
        body = request_body(request.headers.get("content-type"))  # 415 likewise
        if study is not None and not is_valid_uid(study):
            return problems.problem(400, f"{study!r} is not a valid Study Instance UID (PS3.5 9.1)")
        client = request.client.host if request.client else "unknown"
        source = request_actor(request, "stow")
        parts: PartsReceiver
        if body.root_type == DICOM_JSON:
            parts = StowJsonParts(archive.ingest, executor, source, study)
        else:
            parts = StowParts(archive.ingest, executor, source, study)
        outcomes = await _receive(request, body.boundary, parts, client)
        if isinstance(outcomes, Response):
            return outcomes
        if not outcomes:
            return problems.problem(400, f"the request holds no instance: no {DICOM_JSON} part")
        studies_url = f"{dicomweb_base(request)}/studies"  # PS3.18 10.4.1: where Retrieve URLs point
        content = orjson.dumps(response_body(outcomes, studies_url, study))
        return Response(content, status_code=status_code(outcomes), media_type=accept)

    responses: dict[int | str, dict[str, object]] = {
        200: {"description": "All instances stored (PS3.18 10.5.3.1)"},
        202: {"description": "Some instances stored; the others are in FailedSOPSequence"},
        400: {"description": "Malformed multipart body (problem+json)"},
        406: {"description": "The Accept header takes neither application/dicom+json nor application/json"},
        409: {"description": "No instance stored; reasons in FailedSOPSequence"},
        413: {"description": "application/dicom+json metadata and bulk data beyond the limit (problem+json)"},
        415: {"description": "Not multipart/related with application/dicom or application/dicom+json parts"},
    }

    @api.post(
        "/studies",
        summary="Store instances (STOW-RS, PS3.18 10.5)",
        responses=responses,
    )
    async def store_instances(request: Request) -> Response:
        return await store(request, None)

    @api.post(
        "/studies/{study}",
        summary="Store instances of one study (STOW-RS, PS3.18 10.5)",
        responses=responses,
    )
    async def store_study_instances(study: str, request: Request) -> Response:
        return await store(request, study)

    return api


async def _receive(
    request: Request, boundary: str, parts: PartsReceiver, client: str
) -> list[PartOutcome] | Response:
    """Read the body into ``parts``; the outcome of each part, or the problem that ended the request."""
    try:
        reader = MultipartReader(boundary)
        async for chunk in request.stream():
            for event in reader.feed(chunk):
                await parts.handle(event)
        reader.close()
        if not reader.parts:
            raise MultipartError("the body has no part (RFC 2046 5.1.1: at least one is required)")
    except MultipartError as exc:
        await parts.abort()
        stored = [o.result.sop_instance_uid for o in await parts.outcomes() if isinstance(o, Stored)]
        detail = exc.args[0]
        if stored:
            detail += f"; the {len(stored)} instance(s) complete before the error were stored"
        log.warning("STOW-RS from %s: %s", client, detail)
        return problems.problem(400, detail, **({"stored": stored} if stored else {}))
    except HeldTooLarge as exc:
        await parts.abort()
        log.warning("STOW-RS from %s: %s", client, exc)
        return problems.problem(413, str(exc))
    except ClientDisconnect:
        await parts.abort()
        count = sum(isinstance(o, Stored) for o in await parts.outcomes())
        log.warning(
            "STOW-RS from %s: the client disconnected; the part in progress was discarded, "
            "%d instance(s) complete before were stored",
            client,
            count,
        )
        return Response(status_code=400)  # nobody is listening any more
    finally:
        parts.discard()  # cancelled (server stopping) or any error: nothing half-written stays behind
    return await parts.outcomes()
