"""Share links on SQL (SQLite and PostgreSQL): the ShareStore part of SqlIndex."""

from __future__ import annotations

import abc
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, RowMapping, insert, select, update

from lightbox.domain.errors import NotFound
from lightbox.domain.shares import ShareLink
from lightbox.index.models import share_links
from lightbox.index.shares import ShareStore
from lightbox.index.utc import aware, aware_or_none

T = TypeVar("T")


class SqlShares(ShareStore):
    """Mixed into SqlIndex, whose units of work it runs in."""

    @abc.abstractmethod
    def read(self, fn: Callable[[Connection], T]) -> T:
        """SqlIndex's read-only unit of work."""

    @abc.abstractmethod
    def write(self, fn: Callable[[Connection], T]) -> T:
        """SqlIndex's read-write unit of work."""

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
    ) -> ShareLink:
        values = {
            "token_sha256": token_sha256,
            "study_instance_uid": study_instance_uid,
            "created_by": created_by,
            "created_at": at,
            "expires_at": expires_at,
            "deidentify": deidentify,
            "pseudonym_key": key.hex(),
            "note": note,
        }

        def run(conn: Connection) -> ShareLink:
            share_id = conn.execute(
                insert(share_links).values(**values).returning(share_links.c.id)
            ).scalar_one()
            return ShareLink(
                int(share_id), study_instance_uid, created_by, at, expires_at, deidentify, None, note
            )

        return self.write(run)

    def share(self, token_sha256: str) -> tuple[ShareLink, bytes] | None:
        query = select(share_links).where(share_links.c.token_sha256 == token_sha256)
        row = self.read(lambda conn: conn.execute(query).first())
        return (_link(row._mapping), bytes.fromhex(row.pseudonym_key)) if row else None

    def get_share(self, share_id: int) -> ShareLink | None:
        query = select(share_links).where(share_links.c.id == share_id)
        row = self.read(lambda conn: conn.execute(query).first())
        return _link(row._mapping) if row else None

    def list_shares(self, created_by: str | None = None) -> list[ShareLink]:
        query = select(share_links).order_by(share_links.c.id.desc())
        if created_by is not None:
            query = query.where(share_links.c.created_by == created_by)
        return self.read(lambda conn: [_link(r._mapping) for r in conn.execute(query)])

    def revoke_share(self, share_id: int, at: datetime) -> ShareLink:
        def run(conn: Connection) -> ShareLink:
            row = conn.execute(select(share_links).where(share_links.c.id == share_id)).first()
            if row is None:
                raise NotFound(f"no share link {share_id}")
            if row.revoked_at is None:
                conn.execute(update(share_links).where(share_links.c.id == share_id).values(revoked_at=at))
                row = conn.execute(select(share_links).where(share_links.c.id == share_id)).one()
            return _link(row._mapping)

        return self.write(run)


def _link(row: RowMapping) -> ShareLink:
    return ShareLink(
        int(row["id"]),
        row["study_instance_uid"],
        row["created_by"],
        aware(row["created_at"]),
        aware(row["expires_at"]),
        bool(row["deidentify"]),
        aware_or_none(row["revoked_at"]),
        row["note"],
    )
