"""Storage tiers on both index engines: the lifecycle rules move studies between tiers with retrieval
working throughout, the rules on modality and last access pick the right studies, retention deletes and
says so, and a move that meets a change leaves the instance on one whole object."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from lightbox.config import LifecycleRule, RetentionRule, StorageSettings
from lightbox.index.sql import SqlIndex
from lightbox.services.events import EventBus, InstancesDeleted, InstancesRetrieved
from lightbox.services.ingest import IngestService
from lightbox.services.lifecycle import RETENTION, AccessNotes, LifecycleService
from lightbox.services.manage import ManageService
from lightbox.storage.filesystem import FileSystemBlobStore
from lightbox.storage.tiered import TieredBlobStore
from tests.support.dicom import part10


class Tiers:
    def __init__(self, index: SqlIndex, root: Path, **rules: object) -> None:
        self.index = index
        self.hot = FileSystemBlobStore(root / "hot")
        self.cold = FileSystemBlobStore(root / "cold")
        self.blobs = TieredBlobStore(self.hot, {"cold": self.cold})
        self.events = EventBus()
        self.ingest = IngestService(index, self.blobs, self.events)
        self.manage = ManageService(index, self.blobs, self.ingest, self.events)
        settings = StorageSettings(tiers={"cold": f"file://{root / 'cold'}"}, **rules)  # type: ignore[arg-type]
        self.lifecycle = LifecycleService(index, self.blobs, self.manage, settings)

    def study(self, modality: str = "CT", instances: int = 2) -> str:
        uid = generate_uid()
        for n in range(instances):
            self.ingest.ingest([part10(StudyInstanceUID=uid, Modality=modality, InstanceNumber=n)], "t")
        return uid

    def keys_of(self, study: str) -> list[str]:
        return [key for _, key, _ in self.index.objects_outside_tier(study, "nowhere")]


def test_a_rule_moves_old_studies_to_the_cold_tier_and_they_stay_readable(
    index: SqlIndex, tmp_path: Path
) -> None:
    tiers = Tiers(index, tmp_path, lifecycle=[LifecycleRule(to="cold", older_than_days=0)])
    study = tiers.study(instances=3)
    before = tiers.keys_of(study)
    with tiers.blobs.open(before[0]) as f:
        original = f.read()
    report = tiers.lifecycle.apply()
    assert report.moved == {"cold": 3} and report.failed == 0
    after = tiers.keys_of(study)
    assert all(key.startswith("@cold/") for key in after)
    with tiers.blobs.open(after[0]) as f:
        assert f.read() == original  # the same object, now in the cold tier
    assert all(tiers.cold.exists(key.removeprefix("@cold/")) for key in after)
    # the hot copies stay for readers that located them, as pending deletions, then go
    assert all(tiers.hot.exists(key) for key in before)
    assert sorted(index.pending_blob_deletions(10, among=before)) == sorted(before)
    assert tiers.lifecycle.usage() == {"hot": (0, 0), "cold": (3, sum(map(tiers.blobs.size, after)))}
    assert tiers.lifecycle.apply().moved == {}  # nothing moves twice
    # and back, when a rule says so
    back = Tiers(index, tmp_path, lifecycle=[LifecycleRule(to="hot", older_than_days=0)])
    assert back.lifecycle.apply().moved == {"hot": 3}
    assert all(not key.startswith("@") for key in back.keys_of(study))


def test_rules_by_modality_and_last_access(index: SqlIndex, tmp_path: Path) -> None:
    rules = [LifecycleRule(to="cold", not_accessed_days=0.5, modality="CT")]
    tiers = Tiers(index, tmp_path, lifecycle=rules)
    AccessNotes(index, tiers.events)
    ct_read, ct_unread, mr = tiers.study("CT"), tiers.study("CT"), tiers.study("MR")
    tiers.events.publish(InstancesRetrieved(RETENTION, (ct_read,), 2))  # read just now
    later = datetime.now(UTC) + timedelta(days=1)  # a day on: the unread study was not read for a day
    tiers.events.publish(InstancesRetrieved(RETENTION, (ct_read,), 2))
    index.note_study_access([ct_read], later)  # read again, a day on
    report = tiers.lifecycle.apply(now=later)
    assert report.moved == {"cold": 2}
    assert all(key.startswith("@cold/") for key in tiers.keys_of(ct_unread))
    assert not any(key.startswith("@") for key in tiers.keys_of(ct_read) + tiers.keys_of(mr))


def test_retention_deletes_old_studies_and_says_so(index: SqlIndex, tmp_path: Path) -> None:
    tiers = Tiers(index, tmp_path, retention=[RetentionRule(older_than_days=30, modality="MR")])
    deleted: list[InstancesDeleted] = []
    tiers.events.subscribe(InstancesDeleted, deleted.append)
    ct, mr = tiers.study("CT"), tiers.study("MR")
    assert tiers.lifecycle.apply().deleted_studies == 0  # nothing is 30 days old yet
    report = tiers.lifecycle.apply(now=datetime.now(UTC) + timedelta(days=31))
    assert report.deleted_studies == 1
    assert [(d.study_instance_uid, d.source) for d in deleted] == [(mr, RETENTION)]
    assert tiers.keys_of(mr) == [] and len(tiers.keys_of(ct)) == 2


def test_a_move_meeting_a_change_keeps_the_instance_whole(index: SqlIndex, tmp_path: Path) -> None:
    tiers = Tiers(index, tmp_path, lifecycle=[LifecycleRule(to="cold", older_than_days=0)])
    study = tiers.study(instances=1)
    [(sop, key, _)] = index.objects_outside_tier(study, "cold")
    new_key = "@cold/" + key
    tiers.blobs.put(new_key, [b"a copy"])
    index.note_pending_deletions(sop, [new_key], not_before=datetime.now(UTC) + timedelta(hours=1))
    assert not index.move_object(sop, "2020/01/01/00/" + key.rsplit("/", 1)[1], new_key, "cold", timedelta(0))
    assert tiers.keys_of(study) == [key]  # the instance did not point at that object: nothing changed
    assert index.pending_blob_deletions(10, among=[new_key]) == [new_key]  # the copy goes, in time


def test_a_tiered_store_refuses_keys_of_unknown_tiers(tmp_path: Path) -> None:
    blobs = TieredBlobStore(
        FileSystemBlobStore(tmp_path / "hot"), {"cold": FileSystemBlobStore(tmp_path / "cold")}
    )
    with pytest.raises(ValueError):
        blobs.open("@warm/2025/03/04/10/00000000000000000000-0000000000000000.dcm")
    with pytest.raises(ValueError):
        TieredBlobStore(
            FileSystemBlobStore(tmp_path / "hot"), {"Cold Tier": FileSystemBlobStore(tmp_path / "c")}
        )
