"""Who may call which HTTP route: bearer API tokens (RFC 6750; PS3.18 8.1.5 leaves the mechanism to the
origin server) or a web login's session cookie, and the roles of their users.

One ASGI middleware in front of every route: a request without valid credentials gets 401 with a
``WWW-Authenticate: Bearer`` challenge, one whose user's role may not do it 403, both as problem+json; the
user goes on in ``scope["state"]["user"]`` for the routes and the audit trail. Only the health check, the
login and the viewer's files (scripts, styles, fonts: no patient data) are open. A page of the viewer's app
asked for without credentials is a browser's: it is sent to the login page (303) instead of a 401. A
request that changes something and is authenticated by the session cookie (which a browser sends by
itself) must also carry the session's CSRF token in ``X-CSRF-Token``; a bearer token is never sent by
itself, so it needs none. What each route needs is one table, ``required_permission``:
reads, stores, deletes, the rest administration; an unlisted route needs administration, so that a new
route is closed until listed.
"""

from __future__ import annotations

import asyncio
import hmac
from concurrent.futures import Executor
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from lightbox.api.schemas import problem_responses
from lightbox.api.share_access import SHARE_COOKIE, SHARE_LANDING, share_allows
from lightbox.dicomweb.problems import problem
from lightbox.domain.accounts import Permission, Role, User
from lightbox.domain.actor import Actor
from lightbox.domain.shares import SHARE_PREFIX, ShareAccess
from lightbox.services.accounts import TOKEN_PREFIX, AccountService, token_digest
from lightbox.services.oidc import OidcVerifier
from lightbox.services.shares import ShareService
from lightbox.web import pages
from lightbox.web.deep_links import is_deep_link
from lightbox.web.pages import FAVICON_PATH, LOGIN_PATH, STATIC_PREFIX
from lightbox.web.viewer import Viewer, is_page

SESSION_COOKIE = "lightbox_session"
CSRF_COOKIE = "lightbox_csrf"
CSRF_HEADER = "x-csrf-token"
OPEN_ROUTES = frozenset({("GET", "/api/health"), ("HEAD", "/api/health"), ("POST", "/api/login")})
ANY_USER_ROUTES = frozenset({("GET", "/api/me"), ("POST", "/api/logout")})
_READ_METHODS = frozenset({"GET", "HEAD"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CONTENT_LISTS = ("/api/patients", "/api/studies", "/api/series", "/api/instances")


def required_permission(method: str, path: str) -> Permission | None:
    """What a request needs, by its method and path; None: any authenticated user may."""
    if (method, path) in ANY_USER_ROUTES or (method in _READ_METHODS and _app_page(path)):
        return None  # the pages hold no data: what they show, the API and DICOMweb check
    if is_deep_link(path) and method in _READ_METHODS:
        return Permission.READ  # it searches, then the viewer shows what the user may see
    if path.startswith("/dicom-web/") or path == "/dicom-web" or path == "/wado":
        if method in _READ_METHODS:
            return Permission.READ  # QIDO-RS, WADO-RS, WADO-URI: search, retrieve, view
        if method == "POST" and path.startswith("/dicom-web/studies"):
            return Permission.STORE  # STOW-RS
    if path == "/api/shares" or path.startswith("/api/shares/"):
        return Permission.SHARE  # the share service decides whose links one may see and revoke
    if path == "/api/statistics" or any(path == p or path.startswith(p + "/") for p in _CONTENT_LISTS):
        if method in _READ_METHODS:
            return Permission.READ
        if method == "DELETE":
            return Permission.DELETE_OWN  # the route lets those without DELETE remove their own uploads
    return Permission.ADMINISTER  # system information, metrics, the API's documents, anything new


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    header = _header(scope, b"cookie")
    return cookie_parser(header).get(name) if header else None


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 2.1), None without one."""
    header = _header(scope, b"authorization")
    scheme, _, credentials = (header or "").strip().partition(" ")
    return (credentials.strip() or None) if scheme.lower() == "bearer" else None


class Authentication:
    def __init__(
        self,
        app: ASGIApp,
        accounts: AccountService,
        executor: Executor,
        oidc: OidcVerifier | None = None,
        shares: ShareService | None = None,
        viewer: Viewer | None = None,
    ) -> None:
        self.app = app
        self.accounts = accounts
        self.executor = executor
        self.oidc = oidc  # JWT bearer tokens of an OpenID Connect issuer, when one is configured
        self.shares = shares  # share links: one study, read-only
        self.viewer = viewer  # its files are open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._open(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        found = await self._user(scope)
        if found is None and (access := await self._share(scope)) is not None:
            await self._as_share(access, scope, receive, send)
            return
        if found is None and scope["method"] in _READ_METHODS and _browser_page(scope["path"]):
            await _to_login(scope, receive, send)
            return
        if found is None:
            detail = (
                "authentication required: send Authorization: Bearer <API token>, or log in (POST /api/login)"
            )
            await _refuse(scope, receive, send, 401, detail)
            return
        user, credentials, csrf_sha256 = found
        if csrf_sha256 is not None and scope["method"] not in _SAFE_METHODS:
            sent = _header(scope, CSRF_HEADER.encode())
            if sent is None or not hmac.compare_digest(token_digest(sent), csrf_sha256):
                detail = "CSRF token missing or wrong: send the login's csrf_token as X-CSRF-Token"
                await _refuse(scope, receive, send, 403, detail)
                return
        needed = required_permission(scope["method"], scope["path"])
        if needed is not None and not user.may(needed):
            detail = f"user {user.name} ({user.role.value}) may not {needed.value} here"
            await _refuse(scope, receive, send, 403, detail)
            return
        state = scope.setdefault("state", {})
        state["user"], state["credentials"] = user, credentials
        await self.app(scope, receive, send)

    def _open(self, method: str, path: str) -> bool:
        return _open(method, path) or (self.viewer is not None and self.viewer.is_open(method, path))

    async def _share(self, scope: Scope) -> ShareAccess | None:
        """The share link of the request's bearer token or share cookie, when it is valid."""
        token = bearer_token(scope) or _cookie(scope, SHARE_COOKIE)
        if self.shares is None or token is None or not token.startswith(SHARE_PREFIX):
            return None
        access = await asyncio.get_running_loop().run_in_executor(self.executor, self.shares.access, token)
        if access is None:
            client = scope.get("client")
            actor = Actor("http", address=client[0] if client else None)
            self.accounts.login_failed(actor, "share", "share link unknown, expired or revoked")
        return access

    async def _as_share(self, access: ShareAccess, scope: Scope, receive: Receive, send: Send) -> None:
        link = access.link
        if not share_allows(
            scope["method"], scope["path"], scope.get("query_string", b""), link.study_instance_uid
        ):
            detail = f"this share link opens study {link.study_instance_uid} only, read-only"
            await _refuse(scope, receive, send, 403, detail)
            return
        state = scope.setdefault("state", {})
        # A viewer by the name of the link, for the routes and the audit trail; and what it may see
        state["user"] = User(f"share-{link.id}", Role.VIEWER, False, link.created_at)
        state["credentials"], state["share"] = "share", access
        await self.app(scope, receive, send)

    async def _user(self, scope: Scope) -> tuple[User, str, str | None] | None:
        """The request's user, how it authenticated, and the CSRF token hash its session requires."""
        loop = asyncio.get_running_loop()
        token = bearer_token(scope)
        if token is not None and token.startswith(SHARE_PREFIX):
            return None  # a share link's, not a user's
        client = scope.get("client")
        actor = Actor("http", address=client[0] if client else None)
        if token is not None and token.startswith(TOKEN_PREFIX):
            user = await loop.run_in_executor(self.executor, self.accounts.authenticate_token, token, actor)
            return (user, "token", None) if user else None
        if token is not None:
            if self.oidc is None or token.count(".") != 2:  # a JWT is three base64url parts
                self.accounts.login_failed(actor, "token", "bearer token neither an API token nor a JWT")
                return None
            user = await loop.run_in_executor(self.executor, self.oidc.user_of, token)
            if user is None:
                self.accounts.login_failed(actor, "oidc", "JSON Web Token refused")
            return (user, "oidc", None) if user else None
        session = _cookie(scope, SESSION_COOKIE)
        if session is None:
            return None
        found = await loop.run_in_executor(self.executor, self.accounts.session_user, session)
        return (found[0], "session", found[1]) if found else None


def _open(method: str, path: str) -> bool:
    """The health check, the login (the API's and the page's, with the pages' own scripts and styles), and
    the page a share link opens (it checks its own token)."""
    if (method, path) in OPEN_ROUTES:
        return True
    page = method in ("GET", "HEAD")
    return page and (path in (LOGIN_PATH, FAVICON_PATH) or path.startswith((SHARE_LANDING, STATIC_PREFIX)))


def _app_page(path: str) -> bool:
    """A page of the web app: the viewer's, or one of Lightbox's own."""
    return is_page(path) or pages.is_page(path)


def _browser_page(path: str) -> bool:
    """A page a person opens (the app's, a deep link): without a session, the login page first."""
    return _app_page(path) or is_deep_link(path)


async def _to_login(scope: Scope, receive: Receive, send: Send) -> None:
    """303 to the login page, which comes back to this page (path and query) once logged in."""
    here = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    target = (here + b"?" + query if query else here).decode("latin-1")
    location = f"{LOGIN_PATH}?{urlencode({'next': target})}"
    await Response(status_code=303, headers={"Location": location, "Cache-Control": "no-store"})(
        scope, receive, send
    )


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    answer = problem(status, detail)
    if status == 401:
        answer.headers["WWW-Authenticate"] = 'Bearer realm="lightbox"'  # RFC 6750 3: the challenge
    await answer(scope, receive, send)


def document(app: FastAPI) -> None:
    """Declare the bearer scheme in the OpenAPI document (RFC 6750 over HTTP, OpenAPI's ``http`` scheme),
    required by every operation but the open ones, with their 401 and 403 answers."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: lightbox token create --user NAME --name LABEL",
        }
        schema["security"] = [{"bearer": []}]
        content = problem_responses()["default"]["content"]
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if (method.upper(), path) in OPEN_ROUTES:
                    operation["security"] = []
                    continue
                responses = operation.setdefault("responses", {})
                responses["401"] = {"description": "No valid credentials", "content": content}
                responses["403"] = {"description": "The user's role may not do this", "content": content}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
