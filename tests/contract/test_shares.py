"""The share service on every index engine: links made for stored studies by those who may, found by
their token only while valid, listed for their makers, revoked by them or an administrator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydicom.uid import generate_uid

from lightbox.domain.accounts import Role, User
from lightbox.domain.errors import Forbidden, InvalidQuery, NotFound
from lightbox.index.sql import SqlIndex
from lightbox.services.events import EventBus, ShareChanged
from lightbox.services.ingest import IngestService
from lightbox.services.shares import ShareService
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.dicom import part10

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
RITA = User("rita", Role.RADIOLOGIST, False, T0)
ROSE = User("rose", Role.RADIOLOGIST, False, T0)
VERA = User("vera", Role.VIEWER, False, T0)
ADMIN = User("root", Role.ADMIN, False, T0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_share_links(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    events, clock = EventBus(), Clock()
    seen: list[ShareChanged] = []
    events.subscribe(ShareChanged, seen.append)
    study = generate_uid()
    IngestService(index, blob_store, events).ingest([part10(StudyInstanceUID=study)], "t")
    shares = ShareService(index, events, clock)

    with pytest.raises(Forbidden):
        shares.create(VERA, study)
    with pytest.raises(NotFound):
        shares.create(RITA, generate_uid())
    with pytest.raises(InvalidQuery):
        shares.create(RITA, study, days=0)
    token, link = shares.create(RITA, study, days=2, deidentify=True, note="Dr. Who")
    assert (link.created_by, link.deidentify, link.expires_at, link.note) == (
        "rita",
        True,
        T0 + timedelta(2),
        "Dr. Who",
    )
    access = shares.access(token)
    assert access is not None and access.link == link and len(access.key) == 32
    assert shares.access(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert shares.access("lbx_" + token[4:]) is None  # an API token's prefix is not a share's

    _, other = shares.create(ROSE, study)
    assert [s.id for s in shares.list(RITA)] == [link.id]
    assert [s.id for s in shares.list(ADMIN)] == [other.id, link.id]  # newest first
    with pytest.raises(Forbidden):
        shares.list(VERA)
    with pytest.raises(Forbidden):
        shares.revoke(ROSE, link.id)  # someone else's
    with pytest.raises(NotFound):
        shares.revoke(RITA, 10_000)

    clock.now = T0 + timedelta(days=1)
    revoked = shares.revoke(RITA, link.id)
    assert revoked.revoked_at == clock.now and shares.access(token) is None
    assert shares.link_of(token) == revoked  # known, so the page can say it was revoked
    assert shares.revoke(ADMIN, link.id).revoked_at == clock.now  # the first time stays

    token2, _ = shares.create(RITA, study, days=1)
    clock.now += timedelta(days=1)
    assert shares.access(token2) is None  # expired
    assert [e.what for e in seen] == ["created", "created", "revoked", "revoked", "created"]
