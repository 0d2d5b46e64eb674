"""Share links: a radiologist or an administrator gives one study, read-only, to someone outside the
archive's users, for a limited time, de-identified if asked; and can take it back."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from lightbox.domain.accounts import Permission, User
from lightbox.domain.actor import Actor, as_actor
from lightbox.domain.errors import Forbidden, InvalidQuery, NotFound
from lightbox.domain.shares import DEFAULT_SHARE_DAYS, MAX_SHARE_DAYS, SHARE_PREFIX, ShareAccess, ShareLink
from lightbox.domain.uids import is_valid_uid
from lightbox.index.base import ContentFilter, Index, StudyRecord
from lightbox.services.accounts import token_digest
from lightbox.services.events import EventBus, ShareChanged

MAX_NOTE = 200


def _now() -> datetime:
    return datetime.now(UTC)


class ShareService:
    def __init__(self, index: Index, events: EventBus, clock: Callable[[], datetime] = _now) -> None:
        self.index = index
        self.events = events
        self.clock = clock

    def create(
        self,
        user: User,
        study_instance_uid: str,
        *,
        days: float = DEFAULT_SHARE_DAYS,
        deidentify: bool = False,
        note: str = "",
        source: Actor | str = "cli",
    ) -> tuple[str, ShareLink]:
        """A new link to a stored study: the token (shown once, never stored) and the link's record."""
        if not user.may(Permission.SHARE):
            raise Forbidden(f"user {user.name} ({user.role.value}) may not share studies")
        if not is_valid_uid(study_instance_uid):
            raise InvalidQuery(f"{study_instance_uid!r} is not a valid Study Instance UID")
        if not 0 < days <= MAX_SHARE_DAYS:
            raise InvalidQuery(f"a share link lasts more than 0 and at most {MAX_SHARE_DAYS} days")
        if len(note) > MAX_NOTE:
            raise InvalidQuery(f"a share link's note has at most {MAX_NOTE} characters")
        if not self.index.study_patients([study_instance_uid]):
            raise NotFound(f"no study {study_instance_uid} is stored here")
        now = self.clock()
        token = SHARE_PREFIX + secrets.token_urlsafe(32)
        link = self.index.add_share(
            token_digest(token),
            study_instance_uid,
            user.name,
            now,
            now + timedelta(days=days),
            deidentify,
            secrets.token_bytes(32),
            note,
        )
        self._publish(source, "created", link)
        return token, link

    def list(self, user: User) -> list[ShareLink]:
        """Every link for an administrator; one's own for someone who may share."""
        if user.may(Permission.ADMINISTER):
            return self.index.list_shares()
        if user.may(Permission.SHARE):
            return self.index.list_shares(created_by=user.name)
        raise Forbidden(f"user {user.name} ({user.role.value}) may not share studies")

    def revoke(self, user: User, share_id: int, source: Actor | str = "cli") -> ShareLink:
        """Revoke a link: refused from now on. Its maker or an administrator may."""
        link = self.index.get_share(share_id)
        if link is None:
            raise NotFound(f"no share link {share_id}")
        if not user.may(Permission.ADMINISTER) and not (
            user.may(Permission.SHARE) and link.created_by == user.name
        ):
            raise Forbidden(
                f"share link {share_id} is {link.created_by}'s: only they or an administrator revoke it"
            )
        revoked = self.index.revoke_share(share_id, self.clock())
        self._publish(source, "revoked", revoked)
        return revoked

    def access(self, token: str) -> ShareAccess | None:
        """What a request holding ``token`` may see; None for an unknown, expired or revoked link."""
        found = self._lookup(token)
        if found is None or not found[0].valid_at(self.clock()):
            return None
        return ShareAccess(*found)

    def link_of(self, token: str) -> ShareLink | None:
        """The link of ``token`` whatever its state (to tell an expired link from a wrong one)."""
        found = self._lookup(token)
        return found[0] if found else None

    def _lookup(self, token: str) -> tuple[ShareLink, bytes] | None:
        if not token.startswith(SHARE_PREFIX) or len(token) > 128:
            return None  # not a share link's token: no index look-up
        return self.index.share(token_digest(token))

    def named_study(self, access: ShareAccess) -> StudyRecord | None:
        """The study a link opens, for its landing page to name; None when the link de-identifies it (the
        page then names no one) or the study is no longer stored."""
        if access.link.deidentify:
            return None
        where = ContentFilter(study_instance_uid=access.link.study_instance_uid)
        found = self.index.list_studies(where, None, 1)
        return found[0] if found else None

    def opened(self, access: ShareAccess, source: Actor | str) -> None:
        """Someone opened the link (its landing page): recorded, as each use of it is."""
        self._publish(source, "opened", access.link)

    def _publish(self, source: Actor | str, what: str, link: ShareLink) -> None:
        self.events.publish(ShareChanged(as_actor(source), what, link))
