"""Lightbox's own pages, server-rendered from Jinja2 templates with a little JavaScript: small and fast,
with no build step, and usable without the viewer. The pages call the same REST API as any client.

Templates escape every value (autoescape); ``next`` targets are checked so that a login can never send
the browser to another site (an open redirect).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from lightbox import __version__
from lightbox.domain.accounts import MIN_PASSWORD_LENGTH, AePermission, Role
from lightbox.domain.audit import AuditAction

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/static/"
LOGIN_PATH = "/login"
FAVICON_PATH = "/favicon.ico"
DASHBOARD_PATH = "/dashboard"
STUDIES_PATH = "/studies"
UPLOAD_PATH = "/upload"


@dataclass(frozen=True, slots=True)
class AppPage:
    """A page for a logged-in user: without a session, the login page first. It holds no data: its script
    asks the REST API, which answers what the user may see. ``admin``: listed in the navigation for
    administrators only."""

    path: str
    template: str
    title: str
    admin: bool = False


# In the navigation's order
APP_PAGES = (
    AppPage(STUDIES_PATH, "studies.html", "Studies"),
    AppPage(UPLOAD_PATH, "upload.html", "Upload"),
    AppPage(DASHBOARD_PATH, "dashboard.html", "Dashboard"),
    AppPage("/admin/users", "admin_users.html", "Users", admin=True),
    AppPage("/admin/aes", "admin_aes.html", "Remote AEs", admin=True),
    AppPage("/admin/audit", "admin_audit.html", "Audit log", admin=True),
)
PAGES = frozenset(page.path for page in APP_PAGES)
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["version"] = __version__
# What the administration pages' forms offer: the archive's own lists, not copies of them
templates.env.globals["roles"] = [role.value for role in Role]
templates.env.globals["min_password_length"] = MIN_PASSWORD_LENGTH
templates.env.globals["ae_permissions"] = [permission.value for permission in AePermission]
templates.env.globals["audit_actions"] = [action.value for action in AuditAction]


def is_page(path: str) -> bool:
    return path in PAGES


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only ("/viewer?..."), else the start page."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 0x20 or c == "\\" for c in target):
        return "/"
    return target


def router() -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    @routes.get(LOGIN_PATH, response_class=HTMLResponse)
    async def login(request: Request, next: str | None = None) -> HTMLResponse:
        answer = templates.TemplateResponse(
            request, "login.html", {"title": "Log in", "next": safe_next(next)}
        )
        answer.headers["Cache-Control"] = "no-store"
        return answer

    for page in APP_PAGES:
        routes.add_api_route(page.path, _page_handler(page), methods=["GET"], response_class=HTMLResponse)

    @routes.get(FAVICON_PATH)
    async def favicon() -> FileResponse:
        # Browsers ask for it on any page, JSON ones included: open, so that it never shows as an error
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    return routes


def _page_handler(page: AppPage) -> Callable[[Request], Awaitable[HTMLResponse]]:
    async def show(request: Request) -> HTMLResponse:
        user = request.state.user
        admin = user.role is Role.ADMIN
        context = {
            "title": page.title,
            "user": user.name,
            "role": user.role.value,
            "here": page.path,
            "navigation": [p for p in APP_PAGES if admin or not p.admin],
        }
        if page.admin and not admin:  # the page would show nothing: its API answers 403
            answer = templates.TemplateResponse(request, "admin_only.html", context, status_code=403)
        else:
            answer = templates.TemplateResponse(request, page.template, context)
        answer.headers["Cache-Control"] = "no-store"
        return answer

    return show
