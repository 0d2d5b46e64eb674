"""The HTTP application: /api routes now; DICOMweb and the web app mount here as they come."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from lightbox import __version__
from lightbox.app import Archive


def create_http_app(archive: Archive) -> FastAPI:
    app = FastAPI(
        title="Lightbox", version=__version__, openapi_url="/api/openapi.json", docs_url="/api/docs"
    )

    @app.get("/api/health", tags=["system"], summary="Liveness and readiness of the archive")
    async def health() -> JSONResponse:
        checks = await asyncio.to_thread(archive.manage.health)
        ok = all(result == "ok" for result in checks.values())
        body = {"status": "ok" if ok else "error", "version": __version__, "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    return app
