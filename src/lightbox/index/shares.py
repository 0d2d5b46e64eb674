"""The share-link part of the Index port (``domain/shares.py``)."""

from __future__ import annotations

import abc
from datetime import datetime

from lightbox.domain.shares import ShareLink


class ShareStore(abc.ABC):
    @abc.abstractmethod
    def add_share(
        self,
        token_sha256: str,
        study_instance_uid: str,
        created_by: str,
        at: datetime,
        expires_at: datetime,
        deidentify: bool,
        key: bytes,
        note: str,
    ) -> ShareLink: ...

    @abc.abstractmethod
    def share(self, token_sha256: str) -> tuple[ShareLink, bytes] | None:
        """The link of that token hash and its de-identification key, revoked or expired ones included."""

    @abc.abstractmethod
    def get_share(self, share_id: int) -> ShareLink | None: ...

    @abc.abstractmethod
    def list_shares(self, created_by: str | None = None) -> list[ShareLink]:
        """Every link (made by ``created_by``), newest first."""

    @abc.abstractmethod
    def revoke_share(self, share_id: int, at: datetime) -> ShareLink:
        """Raises NotFound for an unknown id; revoking twice keeps the first time."""
