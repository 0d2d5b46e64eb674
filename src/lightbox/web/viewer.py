"""The diagnostic viewer, OHIF Viewer 3, served from the folder ``make viewer`` installs it in.

Three kinds of request reach it, after every archive route has had its chance (it is the router's
fallback, so the archive's own 404 and 405 answers stay theirs):

- the viewer's files: scripts, styles, WebAssembly, fonts, images. They hold no patient data and need no
  credentials (the authentication middleware asks ``is_open``). Content-hashed names never change, so
  browsers keep them a year without asking again; the others (index.html, the CSS chunks, whose names are
  only chunk numbers, the manifest, the images) are revalidated with their ETag on every use. A ``.br``
  or ``.gz`` sibling written at install is sent with ``Content-Encoding`` when the browser accepts it
  (brotli first: a fifth to a third smaller).
- the single-page app's routes (``/``, ``/viewer?StudyInstanceUIDs=...``, ``/segmentation``...): its
  index.html, for a logged-in user. Only the routes OHIF has are pages; any other path stays a 404.
- ``/app-config.js``: written by Lightbox (``app_config``).

Files are looked up in a table of the folder made at start, never by joining a path from the request:
nothing outside the folder can be named. A new install needs a restart of the archive.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from lightbox.web.app_config import APP_CONFIG_PATH, app_config_js
from lightbox.web.pages import templates

log = logging.getLogger(__name__)

# The routes of OHIF 3.13's app: its modes' routeName and its own pages, less those for development
VIEWER_ROUTES = frozenset(
    {
        "viewer",
        "basic",
        "segmentation",
        "tmtv",
        "microscopy",
        "dynamic-volume",
        "usAnnotation",
        "local",
        "localbasic",
        "notfoundstudy",
        "notfoundserver",
    }
)
INDEX = "index.html"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# webpack's content hashes: app.bundle.0f6159c501addfe9.js, 0ddf166f7a343eda.wasm, a34f9d1faa5f3315.woff2
_CONTENT_HASHED = re.compile(r"(?:.+\.)?[0-9a-f]{16}\.(?:js|wasm|woff2)")
_ENCODINGS = (("br", ".br"), ("gzip", ".gz"))  # preferred first; the install writes both
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".jsonc": "text/plain; charset=utf-8",
    ".wasm": "application/wasm",  # WebAssembly.instantiateStreaming requires it
    ".woff2": "font/woff2",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".webapp": "application/x-web-app-manifest+json",
}
_READ_METHODS = frozenset({"GET", "HEAD"})


def is_page(path: str) -> bool:
    """A route of the viewer's single-page app: answered with index.html, to a logged-in user."""
    return path in ("/", "/" + INDEX) or path[1:].split("/", 1)[0] in VIEWER_ROUTES


@dataclass(frozen=True)
class _File:
    path: Path
    media_type: str
    cache_control: str
    encodings: tuple[str, ...]  # the precompressed siblings there are, by content coding


class Viewer:
    """The installed viewer's files (none when ``folder`` is None) and the answers made of them."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.files = _scan(folder) if folder is not None else {}
        self.index = self.files.pop(INDEX, None)  # served for the app's routes, not as a file
        self.config_js = app_config_js().encode()

    @property
    def installed(self) -> bool:
        return self.index is not None

    def is_open(self, method: str, path: str) -> bool:
        """A file of the viewer, or its configuration: no patient data, no credentials needed."""
        return method in _READ_METHODS and (path == APP_CONFIG_PATH or path[1:] in self.files)

    def app_config(self) -> Response:
        headers = {"Cache-Control": REVALIDATE, "X-Content-Type-Options": "nosniff"}
        return Response(self.config_js, media_type=_TYPES[".js"], headers=headers)

    def fallback(self, default: ASGIApp) -> ASGIApp:
        """The router's fallback: the viewer's answer to a GET or HEAD it has one for, else ``default``."""

        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            answer = self.answer(scope) if scope["type"] == "http" else None
            if answer is None:
                await default(scope, receive, send)
            else:
                await answer(scope, receive, send)

        return serve

    def answer(self, scope: Scope) -> Response | None:
        if scope["method"] not in _READ_METHODS:
            return None
        path = scope["path"]
        if is_page(path):
            if self.index is None:
                return _missing(scope)
            return _send(self.index, scope)
        found = self.files.get(path[1:])
        return _send(found, scope) if found is not None else None


def install(app: FastAPI, viewer: Viewer) -> None:
    """Serve ``viewer`` from ``app``: its configuration as a route, the rest as the router's fallback."""

    @app.get(APP_CONFIG_PATH, include_in_schema=False)
    async def app_config() -> Response:
        return viewer.app_config()

    app.router.default = viewer.fallback(app.router.default)
    if viewer.installed:
        log.info("viewer: %d files from %s", len(viewer.files) + 1, viewer.folder)
    else:
        log.warning(
            "the viewer is not installed: `make viewer` installs it (it needs npm); serving without it"
        )


def _scan(folder: Path) -> dict[str, _File]:
    """The folder's regular files by their path relative to it ("assets/favicon.ico"), with their
    precompressed siblings; hidden files (the install's stamp) and symbolic links are left out."""
    files: dict[str, _File] = {}
    for directory, subdirectories, names in os.walk(folder):
        subdirectories[:] = [d for d in subdirectories if not d.startswith(".")]
        here = Path(directory)
        present = set(names)
        for name in names:
            path = here / name
            if name.startswith(".") or name.endswith((".gz", ".br")) or not _regular(path):
                continue
            encodings = tuple(coding for coding, suffix in _ENCODINGS if name + suffix in present)
            files[path.relative_to(folder).as_posix()] = _File(
                path,
                _media_type(name),
                IMMUTABLE if _CONTENT_HASHED.fullmatch(name) else REVALIDATE,
                encodings,
            )
    return files


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _media_type(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _send(file: _File, scope: Scope) -> Response:
    asked = Headers(scope=scope)
    coding = _negotiate(asked.get("accept-encoding", ""), file.encodings)
    path = file.path.with_name(file.path.name + dict(_ENCODINGS)[coding]) if coding else file.path
    headers = {"Cache-Control": file.cache_control, "X-Content-Type-Options": "nosniff"}
    if file.encodings:
        headers["Vary"] = "Accept-Encoding"
    if coding:
        headers["Content-Encoding"] = coding
    answer = FileResponse(path, media_type=file.media_type, headers=headers, stat_result=path.stat())
    if _not_modified(asked, answer.headers):
        kept = ("etag", "cache-control", "vary", "last-modified")
        return Response(status_code=304, headers={k: answer.headers[k] for k in kept if k in answer.headers})
    return answer


def _negotiate(accept_encoding: str, available: tuple[str, ...]) -> str | None:
    """The first available content coding the request accepts (RFC 9110 12.5.3), None for identity."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *parameters = (part.strip() for part in item.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding.lower()] = weight
    for coding in available:
        if weights.get(coding, weights.get("*", 0.0)) > 0:
            return coding
    return None


def _not_modified(asked: Headers, answer: Headers) -> bool:
    """The browser's copy is current: RFC 9110 13.1.2 If-None-Match (weak comparison), else 13.1.3
    If-Modified-Since."""
    etag = answer.get("etag", "")
    if_none_match = asked.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags
    since, modified = asked.get("if-modified-since"), answer.get("last-modified")
    if since is None or modified is None:
        return False
    try:
        return parsedate_to_datetime(modified) <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False


def _missing(scope: Scope) -> Response:
    page = templates.TemplateResponse(
        Request(scope), "viewer_missing.html", {"title": "Viewer not installed"}, status_code=503
    )
    page.headers["Cache-Control"] = "no-store"
    return page
