"""Users and API tokens on SQL (SQLite and PostgreSQL): the AccountStore part of SqlIndex."""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Dialect

from lightbox.domain.accounts import ApiToken, Role, User
from lightbox.domain.errors import Conflict, NotFound
from lightbox.index.accounts import AccountStore, StoredSession, StoredUser
from lightbox.index.models import api_tokens, sessions, users
from lightbox.index.prepared import Prepared
from lightbox.index.utc import aware, aware_or_none

T = TypeVar("T")


class SqlAccounts(AccountStore):
    """Mixed into SqlIndex, whose units of work it runs in."""

    @abc.abstractmethod
    def read(self, fn: Callable[[Connection], T]) -> T:
        """SqlIndex's read-only unit of work."""

    @abc.abstractmethod
    def write(self, fn: Callable[[Connection], T]) -> T:
        """SqlIndex's read-write unit of work."""

    @property
    @abc.abstractmethod
    def sql_dialect(self) -> Dialect:
        """SqlIndex's engine's dialect, which statements are prepared for."""

    def add_user(self, name: str, role: Role, password_hash: str | None, at: datetime) -> User:
        def run(conn: Connection) -> User:
            if conn.execute(select(users.c.id).where(users.c.name == name)).first():
                raise Conflict(f"user {name!r} exists already")
            values = {"name": name, "role": role.value, "password_hash": password_hash, "disabled": False}
            conn.execute(insert(users).values(**values, created_at=at))
            return User(name, role, False, at)

        return self.write(run)

    def get_user(self, name: str) -> StoredUser | None:
        def run(conn: Connection) -> StoredUser | None:
            row = conn.execute(select(users).where(users.c.name == name)).first()
            return StoredUser(_user(row._mapping), row.password_hash) if row else None

        return self.read(run)

    def list_users(self) -> list[User]:
        return self.read(
            lambda conn: [_user(r._mapping) for r in conn.execute(select(users).order_by(users.c.name))]
        )

    def count_users(self) -> int:
        return self.read(lambda conn: int(conn.execute(select(func.count()).select_from(users)).scalar_one()))

    def update_user(
        self,
        name: str,
        *,
        role: Role | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
    ) -> User:
        changes: dict[str, Any] = {}
        if role is not None:
            changes["role"] = role.value
        if password_hash is not None:
            changes["password_hash"] = password_hash
        if disabled is not None:
            changes["disabled"] = disabled

        def run(conn: Connection) -> User:
            if changes:
                conn.execute(update(users).where(users.c.name == name).values(**changes))
            row = conn.execute(select(users).where(users.c.name == name)).first()
            if row is None:
                raise NotFound(f"no user {name!r}")
            return _user(row._mapping)

        return self.write(run)

    def add_token(
        self, user: str, label: str, token_sha256: str, at: datetime, expires_at: datetime | None
    ) -> ApiToken:
        def run(conn: Connection) -> ApiToken:
            user_id = conn.execute(select(users.c.id).where(users.c.name == user)).scalar()
            if user_id is None:
                raise NotFound(f"no user {user!r}")
            taken = select(api_tokens.c.id).where(
                api_tokens.c.user_fk == user_id, api_tokens.c.label == label
            )
            if conn.execute(taken).first():
                raise Conflict(f"user {user!r} has a token named {label!r} already: choose another name")
            conn.execute(
                insert(api_tokens).values(
                    user_fk=user_id,
                    label=label,
                    token_sha256=token_sha256,
                    created_at=at,
                    expires_at=expires_at,
                )
            )
            return ApiToken(user, label, at, expires_at, None, None)

        return self.write(run)

    @functools.cached_property
    def _per_request(self) -> _PerRequestStatements:
        return _PerRequestStatements(self.sql_dialect)

    def token(self, token_sha256: str) -> tuple[ApiToken, User] | None:
        def run(conn: Connection) -> tuple[ApiToken, User] | None:
            m = self._per_request.token.first_by_name(conn, {"digest": token_sha256})
            return None if m is None else (_token(m), _user(m))

        return self.read(run)

    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        stmt = _TOKENS.order_by(users.c.name, api_tokens.c.label)
        if user is not None:
            stmt = stmt.where(users.c.name == user)
        return self.read(lambda conn: [_token(r._mapping) for r in conn.execute(stmt)])

    def revoke_token(self, user: str, label: str, at: datetime) -> ApiToken:
        def run(conn: Connection) -> ApiToken:
            row = conn.execute(_TOKENS.where(users.c.name == user, api_tokens.c.label == label)).first()
            if row is None:
                raise NotFound(f"user {user!r} has no token named {label!r}")
            if row.revoked_at is None:
                conn.execute(update(api_tokens).where(api_tokens.c.id == row.token_id).values(revoked_at=at))
            row = conn.execute(_TOKENS.where(api_tokens.c.id == row.token_id)).one()
            return _token(row._mapping)

        return self.write(run)

    def token_used(self, token_sha256: str, at: datetime) -> None:
        stmt = update(api_tokens).where(api_tokens.c.token_sha256 == token_sha256).values(last_used_at=at)
        self.write(lambda conn: conn.execute(stmt))

    def add_session(
        self, user: str, token_sha256: str, csrf_sha256: str, at: datetime, expires_at: datetime
    ) -> None:
        def run(conn: Connection) -> None:
            user_id = conn.execute(select(users.c.id).where(users.c.name == user)).scalar()
            if user_id is None:
                raise NotFound(f"no user {user!r}")
            values = {"token_sha256": token_sha256, "csrf_sha256": csrf_sha256, "user_fk": user_id}
            conn.execute(insert(sessions).values(**values, created_at=at, expires_at=expires_at))

        self.write(run)

    def session(self, token_sha256: str) -> tuple[StoredSession, User] | None:
        def run(conn: Connection) -> tuple[StoredSession, User] | None:
            m = self._per_request.session.first_by_name(conn, {"digest": token_sha256})
            if m is None:
                return None
            session = StoredSession(m["csrf_sha256"], aware(m["session_created_at"]), aware(m["expires_at"]))
            return session, _user(m)

        return self.read(run)

    def end_session(self, token_sha256: str) -> None:
        self.write(lambda conn: conn.execute(delete(sessions).where(sessions.c.token_sha256 == token_sha256)))

    def end_expired_sessions(self, now: datetime) -> int:
        return int(
            self.write(
                lambda conn: conn.execute(delete(sessions).where(sessions.c.expires_at <= now)).rowcount
            )
        )


_TOKENS = select(
    api_tokens.c.id.label("token_id"),
    api_tokens.c.label,
    api_tokens.c.created_at.label("token_created_at"),
    api_tokens.c.expires_at,
    api_tokens.c.revoked_at,
    api_tokens.c.last_used_at,
    users.c.name,
    users.c.role,
    users.c.disabled,
    users.c.created_at,
).join(users, users.c.id == api_tokens.c.user_fk)


_SESSION = (
    select(
        sessions.c.csrf_sha256,
        sessions.c.created_at.label("session_created_at"),
        sessions.c.expires_at,
    )
    .add_columns(users.c.name, users.c.role, users.c.disabled, users.c.created_at)
    .join(users, users.c.id == sessions.c.user_fk)
)


class _PerRequestStatements:
    """The look-ups every authenticated request makes, prepared: Core's own set-up of a statement cost
    several times what SQLite spends running it."""

    def __init__(self, dialect: Dialect) -> None:
        digest: Any = bindparam("digest")
        self.token = Prepared(_TOKENS.where(api_tokens.c.token_sha256 == digest), dialect)
        self.session = Prepared(_SESSION.where(sessions.c.token_sha256 == digest), dialect)


def _user(m: Any) -> User:
    return User(m["name"], Role(m["role"]), bool(m["disabled"]), aware(m["created_at"]))


def _token(m: Any) -> ApiToken:
    return ApiToken(
        m["name"],
        m["label"],
        aware(m["token_created_at"]),
        aware_or_none(m["expires_at"]),
        aware_or_none(m["revoked_at"]),
        aware_or_none(m["last_used_at"]),
    )
