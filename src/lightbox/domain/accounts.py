"""People, programs and devices that use the archive: users with a role and the API tokens they hold, and
what remote DICOM application entities may ask.

Roles (one a user): what each may do is checked by the adapters against ``PERMISSIONS``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from lightbox.domain.errors import InvalidQuery


class Role(enum.StrEnum):
    ADMIN = "admin"  # everything, users and AEs included
    RADIOLOGIST = "radiologist"  # read, write, delete own uploads, share
    VIEWER = "viewer"  # read only
    UPLOADER = "uploader"  # store only: devices and scripts


class Permission(enum.StrEnum):
    READ = "read"  # search, retrieve, view
    STORE = "store"
    DELETE_OWN = "delete-own"  # delete what one uploaded
    DELETE = "delete"  # delete anything
    SHARE = "share"
    ADMINISTER = "administer"  # users, tokens of others, AEs, audit trail


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.RADIOLOGIST: frozenset({Permission.READ, Permission.STORE, Permission.DELETE_OWN, Permission.SHARE}),
    Role.VIEWER: frozenset({Permission.READ}),
    Role.UPLOADER: frozenset({Permission.STORE}),
}

# A user name or token label (also the API's schema for them)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
MIN_PASSWORD_LENGTH = 12


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    disabled: bool
    created_at: datetime

    def may(self, permission: Permission) -> bool:
        return not self.disabled and permission in PERMISSIONS[self.role]


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token's record; the token itself is shown once, at creation, and only its hash is kept."""

    user: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def valid_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or moment < self.expires_at)


def check_name(name: str, what: str = "user name") -> str:
    """A user name or token label: 1 to 64 letters, digits and . _ @ -, starting with a letter or digit."""
    if not _NAME.fullmatch(name):
        raise InvalidQuery(
            f"{what} {name!r}: use 1 to 64 letters, digits and . _ @ -, starting with a letter or digit"
        )
    return name


def parse_role(value: str) -> Role:
    try:
        return Role(value.lower())
    except ValueError:
        raise InvalidQuery(f"role {value!r}: one of {', '.join(r.value for r in Role)}") from None


class AePermission(enum.StrEnum):
    """What a remote DICOM application entity may ask of the archive (PS3.4 services)."""

    ECHO = "echo"  # Verification
    STORE = "store"  # Storage: C-STORE
    FIND = "find"  # Query/Retrieve: C-FIND
    GET = "get"  # Query/Retrieve: C-GET (with its C-STORE sub-operations)
    MOVE = "move"  # Query/Retrieve: C-MOVE


ALL_AE_PERMISSIONS = frozenset(AePermission)

# What a user's role adds to its AE's permissions when a DICOM peer names the user (User Identity)
AE_PERMISSIONS_OF_ROLE: dict[Role, frozenset[AePermission]] = {
    Role.ADMIN: ALL_AE_PERMISSIONS,
    Role.RADIOLOGIST: ALL_AE_PERMISSIONS,
    Role.VIEWER: frozenset({AePermission.ECHO, AePermission.FIND, AePermission.GET, AePermission.MOVE}),
    Role.UPLOADER: frozenset({AePermission.ECHO, AePermission.STORE}),
}


def parse_ae_permissions(values: str | Iterable[str]) -> frozenset[AePermission]:
    """``echo,store,find,get,move`` (any of them, comma-separated or a list); ``all`` for every one."""
    items = values.split(",") if isinstance(values, str) else list(values)
    names = [item.strip().lower() for item in items if item.strip()]
    if names == ["all"]:
        return ALL_AE_PERMISSIONS
    try:
        return frozenset(AePermission(name) for name in names)
    except ValueError:
        known = ", ".join(p.value for p in AePermission)
        raise InvalidQuery(f"AE permissions {values!r}: each one of {known}, or all") from None


def format_ae_permissions(permissions: Iterable[AePermission]) -> str:
    """In the order of ``AePermission``, comma-separated: how they are stored and shown."""
    granted = set(permissions)
    return ",".join(p.value for p in AePermission if p in granted)
