"""The HTTP application: /api routes, DICOMweb at /dicom-web, and the web app: Lightbox's own pages and the
diagnostic viewer at the root."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor, ThreadPoolExecutor

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware

from lightbox import __version__
from lightbox.api import aes, audit, auth, content, login, observability, shares, system, users
from lightbox.app import Archive, dicom_settings
from lightbox.dicomweb import problems
from lightbox.dicomweb.router import dicomweb_router
from lightbox.dicomweb.wado_uri import router as wado_uri_router
from lightbox.services.echo import EchoService
from lightbox.services.oidc import OidcVerifier, verifier_from_settings
from lightbox.web import deep_links, pages, viewer


def create_http_app(
    archive: Archive, executor: Executor | None = None, oidc: OidcVerifier | None = None
) -> FastAPI:
    """``executor`` runs blocking work (storage, index, codecs): the server shares its DIMSE pool."""
    executor = executor or ThreadPoolExecutor(
        max_workers=archive.settings.ingest.workers, thread_name_prefix="http"
    )
    app = FastAPI(
        title="Lightbox", version=__version__, openapi_url="/api/openapi.json", docs_url="/api/docs"
    )
    oidc = oidc or verifier_from_settings(archive.settings.security)
    problems.install(app)
    web_viewer = viewer.Viewer(archive.settings.web.viewer())
    # Innermost: CORS answers a browser's preflight (which carries no credentials) before it
    app.add_middleware(
        auth.Authentication,
        accounts=archive.accounts,
        executor=executor,
        oidc=oidc,
        shares=archive.shares,
        viewer=web_viewer,
    )
    _install_http_middleware(app, archive.settings.dicomweb.cors_origins)
    observability.install(app, archive.metrics)
    app.include_router(dicomweb_router(archive, executor))
    app.include_router(content.router(archive, executor))
    app.include_router(system.router(archive, executor))
    app.include_router(login.router(archive, executor))
    app.include_router(audit.router(archive, executor))
    app.include_router(shares.router(archive, executor))
    app.include_router(users.router(archive, executor))
    app.include_router(aes.router(archive, executor, EchoService(dicom_settings(archive.settings))))
    app.include_router(wado_uri_router(archive, executor))  # WADO-URI at the root: /wado (PS3.18 9)
    app.include_router(pages.router())
    app.include_router(deep_links.router(archive, executor))
    app.mount(pages.STATIC_PREFIX.rstrip("/"), StaticFiles(directory=pages.STATIC_DIR), name="static")
    viewer.install(app, web_viewer)  # last: the router's fallback, after every route of the archive

    @app.get("/api/health", tags=["system"], summary="Liveness and readiness of the archive")
    async def health() -> JSONResponse:
        checks = await asyncio.to_thread(archive.manage.health)
        ok = all(result == "ok" for result in checks.values())
        body = {"status": "ok" if ok else "error", "version": __version__, "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    auth.document(app)
    return app


# Compressed already, or large binary streams a viewer wants as fast as the disk gives them: JSON (QIDO,
# metadata, the API) is what gzip pays for.
# The viewer's text files come precompressed (Content-Encoding set: left alone); its fonts are compressed.
_NOT_GZIPPED = (
    "multipart/*",
    "application/dicom",
    "application/octet-stream",
    "image/*",
    "video/*",
    "font/woff2",
)


def _install_http_middleware(app: FastAPI, cors_origins: list[str]) -> None:
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6, exclude_content_types=_NOT_GZIPPED)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["ETag", "Warning", "Content-Location"],
            max_age=600,
        )
