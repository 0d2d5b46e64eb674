"""OpenID Connect bearer tokens: a JWT signed by the configured issuer stands for a user with the roles its
claims map to (RFC 9068 access tokens, or ID tokens; RFC 7519 checks).

The signature is checked against the issuer's published keys (its JWKS, found through its discovery
document and cached by PyJWT), then the issuer, the audience, the expiry and not-before times (30 s of
clock skew allowed). Only asymmetric algorithms are accepted: a token claiming ``none`` or an HMAC
algorithm is refused, so the public key can never serve as a shared secret. The users are not stored:
the token says who they are, each time.
"""

from __future__ import annotations

import functools
import json
import logging
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jwt

from lightbox.config import SecuritySettings
from lightbox.domain.accounts import Role, User

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
_POWER = [Role.ADMIN, Role.RADIOLOGIST, Role.VIEWER, Role.UPLOADER]  # most powerful first
_LEEWAY_S = 30


class OidcVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        jwks_url: str | None = None,
        username_claim: str = "preferred_username",
        roles_claim: str = "roles",
        role_map: Mapping[str, str] | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._jwks_url = jwks_url
        self.username_claim = username_claim
        self.roles_claim = roles_claim
        self.role_map = {**{role.value: role.value for role in Role}, **(role_map or {})}

    @functools.cached_property
    def _keys(self) -> jwt.PyJWKClient:
        url = self._jwks_url or _discover_jwks_url(self.issuer)
        return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=10)

    def user_of(self, token: str) -> User | None:
        """The user a JWT stands for, or None when it is not one this issuer signed for this audience,
        now; blocking (the first token fetches the keys)."""
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=_LEEWAY_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, OSError, ValueError) as exc:
            log.info("refused a JWT: %s", exc)
            return None
        name = claims.get(self.username_claim) or claims.get("sub")
        role = self._role(_claim(claims, self.roles_claim))
        if not isinstance(name, str) or not name or role is None:
            log.info("refused a JWT of %r: no user name or no role it maps to", name)
            return None
        issued = claims.get("iat")
        since = datetime.fromtimestamp(issued, UTC) if isinstance(issued, int | float) else datetime.now(UTC)
        return User(name, role, False, since)

    def _role(self, values: Any) -> Role | None:
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list):
            return None
        mapped = {Role(self.role_map[v]) for v in values if isinstance(v, str) and v in self.role_map}
        return next((role for role in _POWER if role in mapped), None)


def verifier_from_settings(security: SecuritySettings) -> OidcVerifier | None:
    """The verifier the settings describe, or None when no issuer is configured."""
    if not security.oidc_issuer or not security.oidc_audience:
        return None
    return OidcVerifier(
        security.oidc_issuer,
        security.oidc_audience,
        jwks_url=security.oidc_jwks_url,
        username_claim=security.oidc_username_claim,
        roles_claim=security.oidc_roles_claim,
        role_map=security.oidc_role_map,
    )


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _discover_jwks_url(issuer: str) -> str:
    """The jwks_uri of the issuer's OpenID Connect discovery document (OIDC Discovery 1.0, section 4)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=10) as answer:
        document = json.loads(answer.read())
    jwks = document.get("jwks_uri")
    if not isinstance(jwks, str) or document.get("issuer") != issuer:
        raise ValueError(f"{url} names no jwks_uri, or another issuer")
    return jwks
