"""Errors as RFC 9457 problem details (application/problem+json), in one place for every HTTP route.

Services raise domain errors that carry their HTTP status; this turns them, and FastAPI's own request
validation errors, into a problem document that says what was wrong.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from lightbox.domain.errors import LightboxError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response: ``detail`` tells the client what was wrong and, where it can, what to do."""
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status, "detail": detail}
    return JSONResponse({**body, **extra}, status_code=status, media_type=PROBLEM_JSON)


def install(app: FastAPI) -> None:
    """Answer every domain error, HTTP error and invalid request of ``app`` with problem+json."""

    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LightboxError)
        return problem(exc.http_status, exc.message)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return problem(exc.status_code, str(exc.detail))

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        where = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}" for err in exc.errors()
        )
        return problem(400, f"invalid request: {where}")

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return problem(500, "internal error; the server log has the details")

    app.add_exception_handler(LightboxError, domain_error)
    app.add_exception_handler(Exception, unexpected)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
