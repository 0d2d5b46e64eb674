"""Accounts: users, their passwords and their API tokens.

Passwords are hashed with Argon2id (argon2-cffi's defaults: RFC 9106's second recommended setting, 64 MiB
and 3 passes), and rehashed on a successful check when those defaults have moved on. An API token is
``lbx_`` and 256 random bits in base64url; the index keeps only its SHA-256, which is enough for a secret
that cannot be guessed (a slow hash protects guessable secrets; this one is not), and lets a request's token
be found with one indexed lookup.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lightbox.domain.accounts import MIN_PASSWORD_LENGTH, ApiToken, Role, User, check_name
from lightbox.domain.actor import Actor, as_actor
from lightbox.domain.errors import Conflict, InvalidQuery, NotFound
from lightbox.index.accounts import AccountStore
from lightbox.services.events import EventBus, LoginAttempted, SettingsChanged

TOKEN_PREFIX = "lbx_"
_LAST_USE_GRANULARITY = timedelta(minutes=1)
FIRST_ADMIN = "admin"
_REFUSAL_REPEAT = timedelta(
    minutes=1
)  # the same refused credential from one address is recorded once a minute
_MAX_REFUSALS_KEPT = 10_000


@functools.cache
def _dummy_hash() -> str:
    """Checked when a name is unknown, so that a wrong name costs as long as a wrong password."""
    return PasswordHasher().hash(secrets.token_urlsafe(16))


def _now() -> datetime:
    return datetime.now(UTC)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AccountService:
    """Changes are published as ``SettingsChanged`` and password checks as ``LoginAttempted`` events, for
    the audit trail; ``source`` says who acts (a plain label for the CLI)."""

    def __init__(
        self, store: AccountStore, clock: Callable[[], datetime] = _now, events: EventBus | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.hasher = PasswordHasher()
        self.events = events or EventBus()
        self._refusals: dict[tuple[str | None, str, str, str | None], datetime] = {}
        self._refusals_lock = threading.Lock()

    # --- users -------------------------------------------------------------------------------------------
    def add_user(self, name: str, role: Role, password: str | None, source: Actor | str = "cli") -> User:
        """A new user; ``password`` None makes an account for tokens only (a device, a script)."""
        check_name(name)
        digest = self._hash(password) if password is not None else None
        user = self.store.add_user(name, role, digest, self.clock())
        self._changed(source, f"user added ({role.value})", name)
        return user

    def list_users(self) -> list[User]:
        return self.store.list_users()

    def get_user(self, name: str) -> User:
        stored = self.store.get_user(name)
        if stored is None:
            raise NotFound(f"no user {name!r}")
        return stored.user

    def update_user(
        self,
        name: str,
        *,
        role: Role | None = None,
        disabled: bool | None = None,
        password: str | None = None,
        source: Actor | str = "cli",
    ) -> User:
        """Change what is given, each change audited as its own; all is checked before anything changes.
        An administrator acting on their own account may not disable it or give up the admin role: another
        administrator (or the CLI) can, so that nobody locks themselves out by a slip."""
        user = self.get_user(name)
        if as_actor(source).user == name and (disabled or role not in (None, Role.ADMIN)):
            raise Conflict("you cannot disable your own account or give up your own admin role")
        if password is not None:
            self._check_password(password)
        if role is not None and role is not user.role:
            user = self.set_role(name, role, source)
        if disabled is not None and disabled != user.disabled:
            user = self.disable_user(name, source) if disabled else self.enable_user(name, source)
        if password is not None:
            user = self.set_password(name, password, source)
        return user

    def disable_user(self, name: str, source: Actor | str = "cli") -> User:
        """The user can no longer log in, and none of their tokens is accepted (they are kept)."""
        user = self.store.update_user(name, disabled=True)
        self._changed(source, "user disabled", name)
        return user

    def enable_user(self, name: str, source: Actor | str = "cli") -> User:
        user = self.store.update_user(name, disabled=False)
        self._changed(source, "user enabled", name)
        return user

    def set_password(self, name: str, password: str, source: Actor | str = "cli") -> User:
        user = self.store.update_user(name, password_hash=self._hash(password))
        self._changed(source, "password changed", name)
        return user

    def set_role(self, name: str, role: Role, source: Actor | str = "cli") -> User:
        user = self.store.update_user(name, role=role)
        self._changed(source, f"role changed ({role.value})", name)
        return user

    def check_password(self, name: str, password: str, source: Actor | str | None = None) -> User | None:
        """The user, when the password is theirs and the account enabled; None otherwise (whatever the
        reason: callers must not tell a wrong name from a wrong password). With ``source``, the attempt is
        published, with the reason for the audit trail's eyes only."""
        stored = self.store.get_user(name)
        if stored is None or stored.password_hash is None:
            self._verify(_dummy_hash(), password)
            reason = "unknown user" if stored is None else "the user has no password"
            return self._attempt(source, name, None, reason)
        if not self._verify(stored.password_hash, password):
            return self._attempt(source, name, None, "wrong password")
        if stored.user.disabled:
            return self._attempt(source, name, None, "account disabled")
        if self.hasher.check_needs_rehash(stored.password_hash):
            self.store.update_user(name, password_hash=self._hash(password))
        return self._attempt(source, name, stored.user, "")

    def login_failed(self, source: Actor | str, method: str, reason: str, user: str | None = None) -> None:
        """Publish a refused credential the caller checked itself (a bearer token, a JWT, a share link):
        once a minute for the same refusal from the same address, so that a client that polls with a bad
        token does not write a record per request."""
        actor = as_actor(source)
        key = (actor.address, method, reason, user)
        now = self.clock()
        with self._refusals_lock:
            last = self._refusals.get(key)
            if last is not None and now - last < _REFUSAL_REPEAT:
                return
            if len(self._refusals) >= _MAX_REFUSALS_KEPT:
                self._refusals.clear()  # bounded: a flood of addresses costs memory, not correctness
            self._refusals[key] = now
        self.events.publish(LoginAttempted(actor, user, False, method, reason))

    def ensure_first_admin(self) -> str | None:
        """With no user at all, create ``admin`` with a random password and return it (to be shown once);
        None when there are users already."""
        if self.store.count_users():
            return None
        password = secrets.token_urlsafe(18)
        self.store.add_user(FIRST_ADMIN, Role.ADMIN, self._hash(password), self.clock())
        self._changed("serve", "first administrator created (admin)", FIRST_ADMIN)
        return password

    # --- API tokens --------------------------------------------------------------------------------------
    def create_token(
        self, user: str, label: str, expires_in_days: int | None = None, source: Actor | str = "cli"
    ) -> tuple[str, ApiToken]:
        """A new token for ``user``: the token itself (shown once, never stored) and its record."""
        check_name(label, "token name")
        if expires_in_days is not None and expires_in_days < 1:
            raise InvalidQuery("a token expires after 1 day or more")
        now = self.clock()
        expires = now + timedelta(days=expires_in_days) if expires_in_days is not None else None
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = self.store.add_token(user, label, token_digest(token), now, expires)
        self._changed(source, "token created", f"{user}/{label}")
        return token, record

    def revoke_token(self, user: str, label: str, source: Actor | str = "cli") -> ApiToken:
        record = self.store.revoke_token(user, label, self.clock())
        self._changed(source, "token revoked", f"{user}/{label}")
        return record

    def list_tokens(self, user: str | None = None) -> list[ApiToken]:
        return self.store.list_tokens(user)

    def authenticate_token(self, token: str, source: Actor | str | None = None) -> User | None:
        """The user a token stands for, when it is well formed, known, not revoked nor expired, and its
        user enabled; None otherwise. With ``source``, a refusal is published (a success is not: it
        happens on every request)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            self._token_refused(source, "malformed API token")
            return None
        digest = token_digest(token)
        found = self.store.token(digest)
        if found is None:
            self._token_refused(source, "unknown API token")
            return None
        record, user = found
        now = self.clock()
        if not record.valid_at(now) or user.disabled:
            why = "account disabled" if user.disabled else f"token {record.label!r} revoked or expired"
            self._token_refused(source, why, user.name)
            return None
        if record.last_used_at is None or now - record.last_used_at >= _LAST_USE_GRANULARITY:
            self.store.token_used(digest, now)  # not a write on every request of a busy client
        return user

    # --- web sessions ------------------------------------------------------------------------------------
    def open_session(self, user: User, hours: float) -> tuple[str, str]:
        """A new session for ``user`` (logged in): its cookie value and its CSRF token, both random and
        known to the index only by their SHA-256."""
        now = self.clock()
        self.store.end_expired_sessions(now)  # housekeeping, on the rare path
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        expires = now + timedelta(hours=hours)
        self.store.add_session(user.name, token_digest(session), token_digest(csrf), now, expires)
        return session, csrf

    def session_user(self, session: str) -> tuple[User, str] | None:
        """The user of a session cookie and the session's CSRF token hash, when the session is known, not
        expired, and its user enabled."""
        if not session or len(session) > 128:
            return None
        found = self.store.session(token_digest(session))
        if found is None:
            return None
        record, user = found
        if self.clock() >= record.expires_at or user.disabled:
            return None
        return user, record.csrf_sha256

    def close_session(self, session: str) -> None:
        self.store.end_session(token_digest(session))

    # --- helpers -----------------------------------------------------------------------------------------
    def _changed(self, source: Actor | str, what: str, subject: str) -> None:
        self.events.publish(SettingsChanged(as_actor(source), what, subject))

    def _attempt(self, source: Actor | str | None, name: str, user: User | None, reason: str) -> User | None:
        if source is not None:
            self.events.publish(LoginAttempted(as_actor(source), name, user is not None, "password", reason))
        return user

    def _token_refused(self, source: Actor | str | None, reason: str, user: str | None = None) -> None:
        if source is not None:
            self.login_failed(source, "token", reason, user)

    def _hash(self, password: str) -> str:
        self._check_password(password)
        return self.hasher.hash(password)

    @staticmethod
    def _check_password(password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidQuery(f"a password has at least {MIN_PASSWORD_LENGTH} characters")

    def _verify(self, digest: str, password: str) -> bool:
        try:
            return self.hasher.verify(digest, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
