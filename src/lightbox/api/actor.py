"""Who an HTTP request acts for: the user the authentication middleware found, and the client's address."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from lightbox.domain.actor import Actor


def request_actor(request: HTTPConnection, protocol: str) -> Actor:
    user = getattr(request.state, "user", None)
    address = request.client.host if request.client else None
    return Actor(protocol, user=user.name if user is not None else None, address=address)
