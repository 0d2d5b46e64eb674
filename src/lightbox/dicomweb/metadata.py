"""WADO-RS metadata resources (PS3.18 10.4.1.1.2 and F.2): study, series and instance headers as DICOM JSON.

Thin: the metadata service gives each instance's stored header; this adds the URLs of bulk data values,
negotiates the media type and lets a client revalidate with the ETag (a viewer asks for the same series'
metadata again and again). The ETag is made from the index's version of the selection, so that a
revalidation is answered without building the documents.
"""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import Executor

import orjson
from fastapi import APIRouter, Request, Response

import lightbox
from lightbox.api.actor import request_actor
from lightbox.app import Archive
from lightbox.deidentify import deidentify_json
from lightbox.dicomweb.media import DICOM_JSON, JSON, choose
from lightbox.dicomweb.problems import problem
from lightbox.dicomweb.share_scope import deidentification
from lightbox.dicomweb.urls import dicomweb_base
from lightbox.index.base import InstanceLocation, MetadataVersion

# Part of every ETag made from a metadata version: change it when the documents made from the same index
# rows change (what the metadata service or this module puts in them), so that clients fetch them again.
_DOCUMENTS_REVISION = "1"


def router(archive: Archive, executor: Executor) -> APIRouter:
    routes = APIRouter(tags=["dicomweb"])

    async def answer(request: Request, study: str, series: str | None, instance: str | None) -> Response:
        if choose(request.headers.get("accept"), (DICOM_JSON, JSON)) is None:
            return problem(406, f"metadata is served as {DICOM_JSON}; the request accepts none of it")
        base = dicomweb_base(request)

        def bulk_uri(location: InstanceLocation, tag: str) -> str:
            return (
                f"{base}/studies/{location.study_instance_uid}/series/{location.series_instance_uid}"
                f"/instances/{location.sop_instance_uid}/bulkdata/{tag}"
            )

        deidentify = deidentification(request)
        listed = _listed_etags(request.headers.get("if-none-match", ""))

        def build() -> tuple[bytes | None, str, int]:
            """The body (None: the client's copy is current), its ETag and how many instances it has."""
            # The version is read before the documents: a change in between gives the body a tag that no
            # longer matches, so the next revalidation fetches it again, never the other way round.
            version = None if deidentify is not None else archive.metadata.version(study, series, instance)
            if version is not None:
                etag = _version_etag(version, base)
                if etag in listed:
                    return None, etag, version.instances
            documents = list(archive.metadata.documents(bulk_uri, study, series, instance))
            if deidentify is not None:
                documents = [deidentify_json(document, deidentify) for document in documents]
            # PS3.18 F.2.2: attributes in ascending tag order. orjson sorts as it writes (every object's
            # members, "Value" before "vr" too, which is all the same to JSON), faster than sorting each
            # document in Python first (600 instances: 5.6-6.2 ms for documents and JSON, against 9.2-9.8).
            body = orjson.dumps(documents, option=orjson.OPT_SORT_KEYS)
            if version is None:  # de-identified (its pseudonyms' key is the link's), or stored meanwhile
                etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
            return body, etag, len(documents)

        body, etag, count = await asyncio.get_running_loop().run_in_executor(executor, build)
        archive.retrieve.viewed(request_actor(request, "wado"), study, count)
        headers = {"ETag": etag, "Cache-Control": "no-cache"}  # revalidate each time: cheap with the ETag
        if body is None or etag in listed:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=DICOM_JSON, headers=headers)

    @routes.get("/studies/{study}/metadata", summary="Metadata of every instance of a study")
    async def study_metadata(request: Request, study: str) -> Response:
        return await answer(request, study, None, None)

    @routes.get("/studies/{study}/series/{series}/metadata", summary="Metadata of every instance of a series")
    async def series_metadata(request: Request, study: str, series: str) -> Response:
        return await answer(request, study, series, None)

    @routes.get(
        "/studies/{study}/series/{series}/instances/{instance}/metadata", summary="Metadata of an instance"
    )
    async def instance_metadata(request: Request, study: str, series: str, instance: str) -> Response:
        return await answer(request, study, series, instance)

    return routes


def _version_etag(version: MetadataVersion, base: str) -> str:
    """The tag of the metadata made from ``version`` with bulk data URLs under ``base``, by this release."""
    made_of = f"{_DOCUMENTS_REVISION}|{lightbox.__version__}|{base}|{version.digest}"
    return f'"m{hashlib.sha256(made_of.encode()).hexdigest()[:32]}"'


def _listed_etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
