"""QIDO-RS latency: the query benchmark's STUDY-level searches as ``GET /dicom-web/studies?...``.

One httpx client keeps one connection open for every search, as a viewer's would. A search's time runs
from sending the request until the JSON answer has been read and parsed, every page of it: a search whose
answer the server's maximum (``dicomweb.qido_max_results``) cut short is followed, as a client would, with
``offset`` until the last page, which has no ``Warning``. No match is ``204 No Content``, zero matches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
from pydicom.dataset import Dataset

from bench.query_bench import KindResult, Query, time_queries

# What a browser-based viewer sends: gzip is what the server compresses JSON answers with.
HEADERS = {"Accept": "application/dicom+json", "Accept-Encoding": "gzip"}
# The C-FIND identifier asks for StudyDescription, which is not a QIDO-RS default attribute.
INCLUDE = ("StudyDescription",)


class SearchFailed(RuntimeError):
    """The server answered a search with an error status."""


def search_params(identifier: Dataset) -> list[tuple[str, str]]:
    """The query parameters of a C-FIND identifier: its matching keys, by keyword, and ``includefield``."""
    params = [(e.keyword, str(e.value)) for e in identifier if e.keyword and e.value not in (None, "")]
    return [*params, *(("includefield", keyword) for keyword in INCLUDE)]


def _search(client: httpx.Client) -> Callable[[Dataset], int]:
    def one(identifier: Dataset) -> int:
        params = search_params(identifier)
        matches = 0
        while True:
            paging = [("offset", str(matches))] if matches else []
            response = client.get("/dicom-web/studies", params=[*params, *paging])
            if response.status_code == 204:
                return matches
            if response.status_code != 200:
                raise SearchFailed(f"HTTP {response.status_code}: {response.text[:300]}")
            matches += len(orjson.loads(response.content))
            if "warning" not in response.headers:
                return matches

    return one


def run(
    base_url: str, auth: dict[str, str], queries: list[Query], warmup: list[Query]
) -> dict[str, KindResult]:
    """Warm up, then time ``queries`` over one keep-alive connection (``auth``: its Authorization)."""
    with httpx.Client(base_url=base_url, headers={**HEADERS, **auth}, timeout=60) as client:
        return time_queries(_search(client), queries, warmup)


def server_maximum(base_url: str, auth: dict[str, str]) -> dict[str, Any]:
    """The server's maximum as a client sees it: the size of the first page of every study, and its
    Warning."""
    with httpx.Client(base_url=base_url, headers={**HEADERS, **auth}, timeout=60) as client:
        response = client.get("/dicom-web/studies")
        page = len(orjson.loads(response.content)) if response.status_code == 200 else 0
        return {"page": page, "warning": response.headers.get("warning")}
