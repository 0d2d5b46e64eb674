"""HTTP side of the metrics: request latency by route template, and the /metrics exposition.

A plain ASGI middleware rather than Starlette's BaseHTTPMiddleware, which would buffer streamed responses
(WADO-RS sends whole studies). The latency runs to the end of the response body. The route label is the
matched route's template (``/dicom-web/studies/{study}/metadata``), never the raw path: UIDs in labels would
make a time series per study.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lightbox.metrics import CONTENT_TYPE, Metrics

UNMATCHED = "<unmatched>"


class RequestTiming:
    def __init__(self, app: ASGIApp, metrics: Metrics, routes: FastAPI) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self._templates: dict[int, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # unless a response starts: an exception before it is answered with a 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            # the router writes the matched route into the scope it was given, which is this one
            template = self._template(scope.get("route"))
            self.metrics.observe_http(template, scope["method"], status, time.perf_counter() - start)

    def _template(self, route: Any) -> str:
        if route is None:
            return UNMATCHED
        if self._templates is None:
            self._templates = _full_templates(self.routes)  # once: the routes are all in place by now
        path = self._templates.get(id(route)) or getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED


def _full_templates(app: FastAPI) -> dict[int, str]:
    """The full path template of each route by the route object the router puts in the scope: a route of
    an included router carries only its path within that router."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies included routes with their full path
        return {}
    return {id(c.original_route): c.path for c in iter_route_contexts(app.routes) if c.path}


def install(app: FastAPI, metrics: Metrics) -> None:
    """Time every HTTP request of ``app`` and serve the metrics at /metrics."""
    app.add_middleware(RequestTiming, metrics=metrics, routes=app)

    @app.get(
        "/metrics",
        tags=["system"],
        summary="Prometheus metrics",
        description="Request latencies and store, retrieve and delete counters (Prometheus text format).",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}}},
    )
    async def metrics_exposition() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)
