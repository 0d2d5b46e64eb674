"""Users and API tokens on every Index backend, through the account service: what is stored is what comes
back, secrets are kept only as hashes, and every refusal holds (revoked, expired, disabled, unknown)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from lightbox.domain.accounts import Permission, Role
from lightbox.domain.actor import Actor
from lightbox.domain.errors import Conflict, InvalidQuery, NotFound
from lightbox.index.models import api_tokens, sessions, users
from lightbox.index.sql import SqlIndex
from lightbox.services.accounts import TOKEN_PREFIX, AccountService, token_digest
from lightbox.services.events import EventBus, LoginAttempted, SettingsChanged

PASSWORD = "correct horse battery staple"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(index: SqlIndex, clock: Clock) -> AccountService:
    return AccountService(index, clock)


def test_users_round_trip(accounts: AccountService, clock: Clock) -> None:
    accounts.add_user("alice", Role.RADIOLOGIST, PASSWORD)
    accounts.add_user("scanner-2", Role.UPLOADER, None)
    listed = accounts.list_users()
    assert [(u.name, u.role, u.disabled) for u in listed] == [
        ("alice", Role.RADIOLOGIST, False),
        ("scanner-2", Role.UPLOADER, False),
    ]
    assert listed[0].created_at == clock.now
    with pytest.raises(Conflict):
        accounts.add_user("alice", Role.VIEWER, PASSWORD)
    assert accounts.set_role("alice", Role.VIEWER).role is Role.VIEWER
    with pytest.raises(NotFound):
        accounts.disable_user("nobody")


def test_update_user_changes_what_is_given_and_checks_first(accounts: AccountService) -> None:
    events = []
    accounts.events.subscribe(SettingsChanged, events.append)
    accounts.add_user("alice", Role.RADIOLOGIST, PASSWORD)
    admin = Actor("api", user="ada")
    changed = accounts.update_user("alice", role=Role.VIEWER, disabled=True, source=admin)
    assert (changed.role, changed.disabled) == (Role.VIEWER, True)
    assert [e.what for e in events[1:]] == ["role changed (viewer)", "user disabled"]
    assert all(e.source == admin for e in events[1:])
    with pytest.raises(InvalidQuery, match="12 characters"):  # nothing changes: the password is checked first
        accounts.update_user("alice", role=Role.ADMIN, disabled=False, password="short", source=admin)
    assert accounts.get_user("alice").role is Role.VIEWER and accounts.get_user("alice").disabled
    assert accounts.update_user("alice", source=admin) == accounts.get_user("alice")  # nothing to change
    with pytest.raises(NotFound):
        accounts.update_user("nobody", disabled=True, source=admin)


def test_an_administrator_cannot_lock_themselves_out(accounts: AccountService) -> None:
    accounts.add_user("ada", Role.ADMIN, PASSWORD)
    myself = Actor("api", user="ada")
    for change in ({"disabled": True}, {"role": Role.VIEWER}):
        with pytest.raises(Conflict, match="your own"):
            accounts.update_user("ada", source=myself, **change)  # type: ignore[arg-type]
    assert accounts.update_user("ada", password="a new long password", source=myself).role is Role.ADMIN
    assert accounts.update_user("ada", disabled=True, source=Actor("api", user="bob")).disabled  # another may


def test_password_is_kept_as_an_argon2id_hash(accounts: AccountService, index: SqlIndex) -> None:
    accounts.add_user("alice", Role.VIEWER, PASSWORD)
    stored = index.get_user("alice")
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash


def test_password_check(accounts: AccountService) -> None:
    accounts.add_user("alice", Role.VIEWER, PASSWORD)
    accounts.add_user("device", Role.UPLOADER, None)
    user = accounts.check_password("alice", PASSWORD)
    assert user is not None and user.name == "alice" and user.may(Permission.READ)
    assert accounts.check_password("alice", PASSWORD + "!") is None
    assert accounts.check_password("nobody", PASSWORD) is None
    assert accounts.check_password("device", "") is None  # no password: tokens only
    accounts.disable_user("alice")
    assert accounts.check_password("alice", PASSWORD) is None
    accounts.enable_user("alice")
    accounts.set_password("alice", "another long password")
    assert accounts.check_password("alice", PASSWORD) is None
    assert accounts.check_password("alice", "another long password") is not None


def test_weak_or_malformed_input_is_refused(accounts: AccountService) -> None:
    with pytest.raises(InvalidQuery, match="12 characters"):
        accounts.add_user("alice", Role.VIEWER, "short")
    for name in ("", "../etc", "a b", "x" * 65, "-dash", "robert'); drop table users;--"):
        with pytest.raises(InvalidQuery):
            accounts.add_user(name, Role.VIEWER, PASSWORD)
    accounts.add_user("alice", Role.VIEWER, PASSWORD)
    with pytest.raises(InvalidQuery):
        accounts.create_token("alice", "bad label!")
    with pytest.raises(InvalidQuery):
        accounts.create_token("alice", "ok", expires_in_days=0)
    assert accounts.list_users()[0].name == "alice"


def test_token_authenticates_its_user_and_only_its_hash_is_stored(
    accounts: AccountService, index: SqlIndex, clock: Clock
) -> None:
    accounts.add_user("device", Role.UPLOADER, None)
    secret, record = accounts.create_token("device", "ct-scanner", expires_in_days=30)
    assert secret.startswith(TOKEN_PREFIX) and len(secret) > 40
    assert record.expires_at == clock.now + timedelta(days=30)
    with index.engine.connect() as conn:
        stored = conn.execute(select(api_tokens.c.token_sha256)).scalars().all()
    assert stored == [token_digest(secret)]

    clock.now += timedelta(minutes=5)
    user = accounts.authenticate_token(secret)
    assert user is not None and user.name == "device" and user.role is Role.UPLOADER
    [listed] = accounts.list_tokens("device")
    assert listed.last_used_at == clock.now


def test_refused_tokens(accounts: AccountService, clock: Clock) -> None:
    accounts.add_user("alice", Role.RADIOLOGIST, PASSWORD)
    expiring, _ = accounts.create_token("alice", "laptop", expires_in_days=1)
    revoked, _ = accounts.create_token("alice", "old")
    kept, _ = accounts.create_token("alice", "desk")

    accounts.revoke_token("alice", "old")
    assert accounts.authenticate_token(revoked) is None
    assert accounts.authenticate_token(kept) is not None

    tampered = kept[:-1] + ("A" if kept[-1] != "A" else "B")
    for bad in (tampered, kept[len(TOKEN_PREFIX) :], "", TOKEN_PREFIX, kept + "x" * 200):
        assert accounts.authenticate_token(bad) is None

    assert accounts.authenticate_token(expiring) is not None
    clock.now += timedelta(days=1)
    assert accounts.authenticate_token(expiring) is None  # expired at that very moment

    accounts.disable_user("alice")
    assert accounts.authenticate_token(kept) is None  # a disabled user's tokens stop working
    accounts.enable_user("alice")
    assert accounts.authenticate_token(kept) is not None


def test_token_names_and_revocation(accounts: AccountService, clock: Clock) -> None:
    accounts.add_user("alice", Role.VIEWER, PASSWORD)
    accounts.add_user("bob", Role.VIEWER, PASSWORD)
    accounts.create_token("alice", "laptop")
    accounts.create_token("bob", "laptop")  # names are per user
    with pytest.raises(Conflict):
        accounts.create_token("alice", "laptop")
    with pytest.raises(NotFound):
        accounts.create_token("nobody", "laptop")
    with pytest.raises(NotFound):
        accounts.revoke_token("alice", "phone")
    first = accounts.revoke_token("alice", "laptop")
    clock.now += timedelta(hours=1)
    assert (
        accounts.revoke_token("alice", "laptop").revoked_at
        == first.revoked_at
        == clock.now - timedelta(hours=1)
    )
    assert [(t.user, t.label, t.revoked_at is not None) for t in accounts.list_tokens()] == [
        ("alice", "laptop", True),
        ("bob", "laptop", False),
    ]


def test_first_admin_only_when_there_is_no_user(accounts: AccountService, index: SqlIndex) -> None:
    password = accounts.ensure_first_admin()
    assert password is not None and len(password) >= 20
    admin = accounts.check_password("admin", password)
    assert admin is not None and admin.role is Role.ADMIN and admin.may(Permission.ADMINISTER)
    assert accounts.ensure_first_admin() is None
    with index.engine.connect() as conn:
        assert conn.execute(select(users.c.name)).scalars().all() == ["admin"]


def test_sessions(accounts: AccountService, index: SqlIndex, clock: Clock) -> None:
    user = accounts.add_user("alice", Role.RADIOLOGIST, PASSWORD)
    session, csrf = accounts.open_session(user, hours=2)
    found = accounts.session_user(session)
    assert found is not None and found[0].name == "alice" and found[1] == token_digest(csrf)
    with index.engine.connect() as conn:
        stored = conn.execute(select(sessions.c.token_sha256, sessions.c.csrf_sha256)).one()
    assert session not in stored and csrf not in stored  # hashes only

    assert accounts.session_user(session + "x") is None
    assert accounts.session_user("") is None
    accounts.disable_user("alice")
    assert accounts.session_user(session) is None
    accounts.enable_user("alice")
    clock.now += timedelta(hours=2)
    assert accounts.session_user(session) is None  # expired at that very moment

    clock.now -= timedelta(hours=1)
    other, _ = accounts.open_session(user, hours=2)  # housekeeping forgets the expired ones
    assert accounts.session_user(other) is not None
    accounts.close_session(other)
    assert accounts.session_user(other) is None


def test_a_repeated_refusal_is_published_once_a_minute(index: SqlIndex, clock: Clock) -> None:
    events = EventBus()
    seen: list[LoginAttempted] = []
    events.subscribe(LoginAttempted, seen.append)
    accounts = AccountService(index, clock, events)
    poller, other = Actor("http", address="10.0.0.7"), Actor("http", address="10.0.0.8")
    for _ in range(5):  # a client polling with a bad token
        assert accounts.authenticate_token("lbx_" + "A" * 43, poller) is None
    accounts.authenticate_token("lbx_" + "A" * 43, other)
    assert [e.source.address for e in seen] == ["10.0.0.7", "10.0.0.8"]
    clock.now += timedelta(seconds=61)
    accounts.authenticate_token("lbx_" + "A" * 43, poller)
    assert len(seen) == 3 and not any(e.succeeded for e in seen)
    # a password login is always recorded, whatever came before
    accounts.check_password("nobody", "wrong password!", poller)
    accounts.check_password("nobody", "wrong password!", poller)
    assert len(seen) == 5
