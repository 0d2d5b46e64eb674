"""Share links: one study, read-only, for someone outside the archive's users (an outside doctor).

The link carries a random token (``lbs_`` and 256 bits); the index keeps its SHA-256 only. It expires,
can be revoked, and may show the study de-identified (PS3.15 Basic Profile with the Retain UIDs Option,
so that the links inside DICOMweb answers keep working).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SHARE_PREFIX = "lbs_"
MAX_SHARE_DAYS = 90  # a share is for a consultation, not a standing account
DEFAULT_SHARE_DAYS = 7


@dataclass(frozen=True, slots=True)
class ShareLink:
    id: int
    study_instance_uid: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    deidentify: bool
    revoked_at: datetime | None = None
    note: str = ""  # for people: whom it was given to, why

    def valid_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and moment < self.expires_at


@dataclass(frozen=True, slots=True)
class ShareAccess:
    """What a request that came with a share link may see: one study, maybe de-identified. ``key`` keys
    the pseudonyms of that share's de-identification (the same patient pseudonym on every request)."""

    link: ShareLink
    key: bytes
