"""What each role may do (the issue's table): admin everything, radiologist read/write/delete own/share,
viewer read only, uploader store only; a disabled user nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lightbox.domain.accounts import Permission, Role, User, parse_role
from lightbox.domain.errors import InvalidQuery

P = Permission


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.ADMIN, set(Permission)),
        (Role.RADIOLOGIST, {P.READ, P.STORE, P.DELETE_OWN, P.SHARE}),
        (Role.VIEWER, {P.READ}),
        (Role.UPLOADER, {P.STORE}),
    ],
)
def test_permissions(role: Role, allowed: set[Permission]) -> None:
    user = User("u", role, False, datetime.now(UTC))
    assert {p for p in Permission if user.may(p)} == allowed
    disabled = User("u", role, True, datetime.now(UTC))
    assert not any(disabled.may(p) for p in Permission)


def test_parse_role() -> None:
    assert parse_role("Radiologist") is Role.RADIOLOGIST
    with pytest.raises(InvalidQuery, match="admin, radiologist, viewer, uploader"):
        parse_role("root")
