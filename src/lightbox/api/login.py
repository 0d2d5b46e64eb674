"""Web logins: POST /api/login with a user name and password opens a session (an HttpOnly cookie, and a
CSRF token for the requests that change something); POST /api/logout closes it; GET /api/me says who the
credentials stand for. Repeated failures are refused for a while (429, ``Retry-After``)."""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import Executor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from lightbox.api import schemas
from lightbox.api.actor import request_actor
from lightbox.api.auth import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from lightbox.app import Archive
from lightbox.dicomweb.problems import problem
from lightbox.domain.accounts import User
from lightbox.services.login_throttle import LoginThrottle


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoggedIn(BaseModel):
    user: str
    role: str
    csrf_token: str = Field(description=f"Send it as {CSRF_HEADER} with every POST and DELETE of the session")
    expires_in: int = Field(description="Seconds the session lasts")


class Identity(BaseModel):
    user: str
    role: str
    via: str = Field(description="token (an API token), oidc (an OpenID Connect JWT) or session (cookie)")


def router(archive: Archive, executor: Executor) -> APIRouter:
    routes = APIRouter(prefix="/api", tags=["login"])
    accounts = archive.accounts
    security = archive.settings.security
    throttle = LoginThrottle(security.login_attempts, security.login_lockout_minutes * 60)
    lifetime = int(security.session_hours * 3600)

    @routes.post(
        "/login",
        summary="Log in with a user name and password: a session cookie and a CSRF token",
        response_model=LoggedIn,
        responses={**schemas.problem_responses(400), 401: _problem("Wrong user name or password")}
        | {429: _problem("Too many failed logins: try again after Retry-After seconds")},
    )
    async def login(credentials: Credentials, request: Request) -> Response:
        address = request.client.host if request.client else "unknown"
        wait = throttle.retry_after(credentials.username, address)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            answer = problem(429, f"too many failed logins: try again in {seconds} s")
            answer.headers["Retry-After"] = str(seconds)
            return answer
        loop = asyncio.get_running_loop()
        # Argon2 takes tens of milliseconds of CPU by design: never on the event loop
        user = await loop.run_in_executor(
            executor,
            accounts.check_password,
            credentials.username,
            credentials.password,
            request_actor(request, "http"),
        )
        if user is None:
            throttle.failed(credentials.username, address)
            return problem(401, "wrong user name or password, or the account is disabled")
        throttle.succeeded(credentials.username)
        session, csrf = await loop.run_in_executor(
            executor, accounts.open_session, user, security.session_hours
        )
        body = LoggedIn(user=user.name, role=user.role.value, csrf_token=csrf, expires_in=lifetime)
        answer = JSONResponse(body.model_dump())
        secure = request.url.scheme == "https"
        answer.set_cookie(
            SESSION_COOKIE, session, max_age=lifetime, httponly=True, secure=secure, samesite="lax", path="/"
        )
        # Readable by the web app's scripts, which send it back as the CSRF header (double submit)
        answer.set_cookie(CSRF_COOKIE, csrf, max_age=lifetime, secure=secure, samesite="lax", path="/")
        return answer

    @routes.post(
        "/logout",
        summary="Close the session of the cookie",
        status_code=204,
        responses=schemas.problem_responses(),
    )
    async def logout(request: Request) -> Response:
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            await asyncio.get_running_loop().run_in_executor(executor, accounts.close_session, session)
        answer = Response(status_code=204)
        answer.delete_cookie(SESSION_COOKIE, path="/")
        answer.delete_cookie(CSRF_COOKIE, path="/")
        return answer

    @routes.get(
        "/me",
        summary="Who the request's credentials stand for",
        response_model=Identity,
        responses=schemas.problem_responses(),
    )
    async def me(request: Request) -> Identity:
        user: User = request.state.user
        return Identity(user=user.name, role=user.role.value, via=request.state.credentials)

    return routes


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": schemas.problem_responses()["default"]["content"]}
