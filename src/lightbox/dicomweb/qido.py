"""QIDO-RS (PS3.18 10.6): search for studies, series and instances, answered in DICOM JSON.

Thin: the query parameters become a C-FIND identifier (``qido_params``, ``qido_identifier``) for the query
service, so QIDO-RS and C-FIND share one matching engine. This adds what is HTTP's own: the media type,
paging under the server's maximum with its Warning header, and the Retrieve URLs of the matches.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from lightbox.api.actor import request_actor
from lightbox.app import Archive
from lightbox.deidentify import deidentify_json
from lightbox.dicomweb.media import DICOM_JSON, JSON, negotiate
from lightbox.dicomweb.qido_identifier import Identifier, Resource, build_identifier
from lightbox.dicomweb.qido_params import parse_search
from lightbox.dicomweb.share_scope import deidentification, narrow_search
from lightbox.dicomweb.urls import dicomweb_base
from lightbox.domain.errors import InvalidQuery
from lightbox.domain.levels import Level, Model
from lightbox.domain.uids import is_valid_uid
from lightbox.services.query import QueryOptions

# PS3.18 8.3.4.4.1: matches were left out. The first text is the one PS3.18 has long given for a search
# cut by the server's maximum; the second is for a search cut by the client's own limit.
SERVER_MAXIMUM_WARNING = (
    "The number of results exceeded the maximum supported by the server. Additional results can be requested."
)
MORE_RESULTS_WARNING = "There are additional results that can be requested."

# DICOM JSON tags the response fills in itself.
_STUDY_UID, _SERIES_UID, _SOP_UID = "0020000D", "0020000E", "00080018"
_RETRIEVE_URL, _RETRIEVE_AE_TITLE = "00081190", "00080054"


def router(archive: Archive, executor: Executor) -> APIRouter:
    routes = APIRouter(tags=["dicomweb"])
    server_maximum = min(archive.settings.dicomweb.qido_max_results, archive.query.max_results)
    ae_title = archive.settings.ae_title

    async def search(request: Request, resource: Resource) -> Response:
        params = parse_search(request.query_params.multi_items())
        # PS3.18 10.6.4: application/dicom+json is the default; application/json is its generic name.
        media_type = negotiate(params.accept or request.headers.get("accept"), (DICOM_JSON, JSON), "QIDO-RS")
        _check_path_uids(resource)
        identifier = build_identifier(resource, params)
        page = min(params.limit if params.limit is not None else server_maximum, server_maximum)
        # One match more than the page tells whether matches remain (PS3.18 8.3.4.4.1), without counting
        # them all: a search costs what it returns.
        options = QueryOptions(
            case_insensitive_names=params.fuzzy,  # PS3.18 8.3.4.2
            combined_datetime=True,  # PS3.18 8.3.4.1.1: combined date-time matching shall be performed
            offset=params.offset,
            limit=page + 1,
            newest_first=params.newest_first,
        )
        if not narrow_search(request, identifier.dataset):
            return Response(status_code=204)  # a share link's search for another study: nothing matches
        deidentify = deidentification(request)
        finish = _finisher(resource, identifier, f"{dicomweb_base(request)}/studies", ae_title)
        source = request_actor(request, "qido")

        def run() -> tuple[bytes, int, bool]:
            result = archive.query.find(
                resource.level, identifier.dataset, model=Model.STUDY_ROOT, options=options, source=source
            )
            try:
                matches = list(itertools.islice(result, page + 1))
                remaining = len(matches) > page or result.truncated
            finally:
                result.cancel()  # reports the query if it did not run to its end
            del matches[page:]
            for match in matches:
                finish(match)
            if deidentify is not None:
                matches = [deidentify_json(match, deidentify) for match in matches]
            return orjson.dumps(matches), len(matches), remaining

        body, count, remaining = await asyncio.get_running_loop().run_in_executor(executor, run)
        headers = {}
        if remaining:
            cut_by_server = params.limit is None or params.limit > page
            text = SERVER_MAXIMUM_WARNING if cut_by_server else MORE_RESULTS_WARNING
            headers["Warning"] = f'299 {request.url.netloc} "{text}"'  # RFC 7234 5.5
        if count == 0:
            return Response(status_code=204, headers=headers)  # PS3.18 8.3.4.4.1: no results
        return Response(body, media_type=media_type, headers=headers)

    @routes.get("/studies", summary="Search for studies (QIDO-RS)")
    async def search_for_studies(request: Request) -> Response:
        return await search(request, Resource(Level.STUDY))

    @routes.get("/series", summary="Search for series (QIDO-RS)")
    async def search_for_series(request: Request) -> Response:
        return await search(request, Resource(Level.SERIES))

    @routes.get("/instances", summary="Search for instances (QIDO-RS)")
    async def search_for_instances(request: Request) -> Response:
        return await search(request, Resource(Level.IMAGE))

    @routes.get("/studies/{study}/series", summary="Search for the series of a study (QIDO-RS)")
    async def search_for_study_series(request: Request, study: str) -> Response:
        return await search(request, Resource(Level.SERIES, study=study))

    @routes.get("/studies/{study}/instances", summary="Search for the instances of a study (QIDO-RS)")
    async def search_for_study_instances(request: Request, study: str) -> Response:
        return await search(request, Resource(Level.IMAGE, study=study))

    @routes.get(
        "/studies/{study}/series/{series}/instances",
        summary="Search for the instances of a series (QIDO-RS)",
    )
    async def search_for_series_instances(request: Request, study: str, series: str) -> Response:
        return await search(request, Resource(Level.IMAGE, study=study, series=series))

    return routes


def _check_path_uids(resource: Resource) -> None:
    for name, uid in (("Study", resource.study), ("Series", resource.series)):
        if uid is not None and not is_valid_uid(uid):
            raise InvalidQuery(
                f"{uid!r} in the path is not a valid {name} Instance UID "
                "(PS3.5 9.1: digits and dots, at most 64 characters)"
            )


def _finisher(
    resource: Resource, identifier: Identifier, studies_url: str, ae_title: str
) -> Callable[[dict[str, Any]], None]:
    """Completes a match in place: the values the archive answers itself, and no empty conditional
    attributes (PS3.18 10.6.3.3: "shall be present if known")."""
    drop = identifier.drop_if_empty

    def finish(match: dict[str, Any]) -> None:
        if _RETRIEVE_URL in match:
            match[_RETRIEVE_URL] = {"vr": "UR", "Value": [_retrieve_url(studies_url, resource, match)]}
        if _RETRIEVE_AE_TITLE in match:
            match[_RETRIEVE_AE_TITLE] = {"vr": "AE", "Value": [ae_title]}
        for tag in drop:
            if tag in match and _is_empty(match[tag]):
                del match[tag]

    return finish


def _retrieve_url(studies_url: str, resource: Resource, match: dict[str, Any]) -> str:
    """The WADO-RS URL of the match (PS3.18 10.4.1.1.1): /studies/{study}[/series/{series}[/instances/..]]."""
    url = f"{studies_url}/{_value(match, _STUDY_UID) or resource.study}"
    if resource.level is not Level.STUDY:
        url += f"/series/{_value(match, _SERIES_UID) or resource.series}"
    if resource.level is Level.IMAGE:
        url += f"/instances/{_value(match, _SOP_UID)}"
    return url


def _value(match: dict[str, Any], tag: str) -> Any:
    values = (match.get(tag) or {}).get("Value") or [None]
    return values[0]


def _is_empty(element: dict[str, Any]) -> bool:
    return not (element.get("Value") or element.get("InlineBinary") or element.get("BulkDataURI"))
