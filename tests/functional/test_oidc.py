"""OpenID Connect JWT bearer tokens against ``lightbox serve``, with a real issuer of our own: an HTTP
server publishing a discovery document and a JWKS, and tokens signed with its RSA key. Accepted: the
issuer's tokens for the archive's audience, in time, with a role; everything else is 401."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.server import RunningServer, running_server

AUDIENCE = "lightbox"
KID = "key-1"


class Issuer:
    """A minimal OpenID provider: discovery and JWKS over HTTP, and a signing key."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks.json"}
                elif self.path == "/jwks.json":
                    body = issuer.jwks
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, key: Any = None, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "iat": now, "exp": now + 300, "sub": "u-1"} | claims
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": KID, **(headers or {})})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Issuer]]:
    issuer = Issuer()
    env = {
        "LIGHTBOX_SECURITY_OIDC_ISSUER": issuer.url,
        "LIGHTBOX_SECURITY_OIDC_AUDIENCE": AUDIENCE,
        "LIGHTBOX_SECURITY_OIDC_ROLES_CLAIM": "realm_access.roles",
        "LIGHTBOX_SECURITY_OIDC_ROLE_MAP": json.dumps({"pacs-admins": "admin", "referrers": "viewer"}),
    }
    data: Path = tmp_path_factory.mktemp("oidc") / "data"
    with running_server(data, env=env) as running:
        yield running, issuer
    issuer.server.shutdown()


def _me(server: RunningServer, token: str) -> httpx.Response:
    return httpx.get(server.base_url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_issuer_tokens_stand_for_their_user_and_role(setup: tuple[RunningServer, Issuer]) -> None:
    server, issuer = setup
    admin = issuer.token(preferred_username="dr.who", realm_access={"roles": ["referrers", "pacs-admins"]})
    assert _me(server, admin).json() == {"user": "dr.who", "role": "admin", "via": "oidc"}
    viewer = issuer.token(preferred_username="gp.smith", realm_access={"roles": ["referrers", "other"]})
    assert _me(server, viewer).json()["role"] == "viewer"
    headers = {"Authorization": f"Bearer {viewer}"}
    assert httpx.get(server.base_url + "/api/studies", headers=headers).status_code == 200
    assert httpx.get(server.base_url + "/api/system", headers=headers).status_code == 403
    named_like_a_role = issuer.token(preferred_username="rad", realm_access={"roles": ["radiologist"]})
    assert _me(server, named_like_a_role).json()["role"] == "radiologist"


def test_every_other_token_is_refused(setup: tuple[RunningServer, Issuer]) -> None:
    server, issuer = setup
    roles = {"realm_access": {"roles": ["pacs-admins"]}, "preferred_username": "x"}
    good = issuer.token(**roles)
    head, _, signature = good.split(".")
    tampered_body = jwt.utils.base64url_encode(
        json.dumps(
            {**jwt.decode(good, options={"verify_signature": False}), "preferred_username": "admin"}
        ).encode()
    ).decode()
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    refused = {
        "expired": issuer.token(exp=now - 120, **roles),
        "not yet valid": issuer.token(nbf=now + 300, **roles),
        "another issuer": issuer.token(iss="https://evil.example.org", **roles),
        "another audience": issuer.token(aud="someone-else", **roles),
        "no expiry": issuer.token(exp=None, **roles),
        "tampered claims": f"{head}.{tampered_body}.{signature}",
        "another key, same kid": issuer.token(key=other_key, **roles),
        "unknown kid": issuer.token(headers={"kid": "key-9"}, **roles),
        "alg none": jwt.encode(
            {**jwt.decode(good, options={"verify_signature": False})}, None, algorithm="none"
        ),
        "HMAC with the public key": _hmac_with_public_key(issuer, good),
        "no role": issuer.token(preferred_username="x", realm_access={"roles": ["nobody-knows"]}),
        "not a JWT": "a.b",
    }
    for why, token in refused.items():
        answer = _me(server, token)
        assert answer.status_code == 401, why
    assert _me(server, good).status_code == 200


def _hmac_with_public_key(issuer: Issuer, good: str) -> str:
    """The classic confusion attack: an HS256 token keyed with the issuer's public key."""
    public = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(good, options={"verify_signature": False})
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": KID, "typ": "JWT"}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(claims).encode())
    signing_input = header + b"." + payload
    signature = jwt.utils.base64url_encode(hmac.new(public, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()
