"""The accounts part of the Index port: users and API tokens, in domain terms (``domain/accounts.py``).

Secrets never reach the index in the clear: the account service hands it an Argon2id hash of a password
and the SHA-256 of a token.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime

from lightbox.domain.accounts import ApiToken, Role, User


@dataclass(frozen=True, slots=True)
class StoredUser:
    user: User
    password_hash: str | None  # None: the user has no password (tokens only)


@dataclass(frozen=True, slots=True)
class StoredSession:
    csrf_sha256: str
    created_at: datetime
    expires_at: datetime


class AccountStore(abc.ABC):
    @abc.abstractmethod
    def add_user(self, name: str, role: Role, password_hash: str | None, at: datetime) -> User:
        """Raises Conflict when the name is taken."""

    @abc.abstractmethod
    def get_user(self, name: str) -> StoredUser | None: ...

    @abc.abstractmethod
    def list_users(self) -> list[User]:
        """By name."""

    @abc.abstractmethod
    def count_users(self) -> int: ...

    @abc.abstractmethod
    def update_user(
        self,
        name: str,
        *,
        role: Role | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change what is given; raises NotFound for an unknown user."""

    @abc.abstractmethod
    def add_token(
        self, user: str, label: str, token_sha256: str, at: datetime, expires_at: datetime | None
    ) -> ApiToken:
        """Raises NotFound for an unknown user, Conflict when the user has a token of that label."""

    @abc.abstractmethod
    def token(self, token_sha256: str) -> tuple[ApiToken, User] | None:
        """The token of that hash and its user, revoked or expired ones included."""

    @abc.abstractmethod
    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        """Every token (of ``user``), by user then label."""

    @abc.abstractmethod
    def revoke_token(self, user: str, label: str, at: datetime) -> ApiToken:
        """Raises NotFound when the user has no token of that label; revoking twice keeps the first time."""

    @abc.abstractmethod
    def token_used(self, token_sha256: str, at: datetime) -> None:
        """Record the token's last use."""

    @abc.abstractmethod
    def add_session(
        self, user: str, token_sha256: str, csrf_sha256: str, at: datetime, expires_at: datetime
    ) -> None:
        """Raises NotFound for an unknown user."""

    @abc.abstractmethod
    def session(self, token_sha256: str) -> tuple[StoredSession, User] | None:
        """The session of that cookie hash and its user, expired ones included."""

    @abc.abstractmethod
    def end_session(self, token_sha256: str) -> None:
        """Forget the session (logout); nothing when there is none."""

    @abc.abstractmethod
    def end_expired_sessions(self, now: datetime) -> int:
        """Forget the sessions expired at ``now``; how many."""
