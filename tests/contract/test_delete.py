"""Deletes and listings on every index backend: rows, counters and objects go together, and a crash between
the index commit and the object removal never brings deleted content back nor leaves anything behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import Connection

from lightbox.domain.actor import Actor
from lightbox.domain.errors import Forbidden, InvalidQuery, NotFound
from lightbox.domain.levels import Level
from lightbox.index.base import ContentFilter, Deletion, DuplicatePolicy, IndexStatistics
from lightbox.index.sql import SqlIndex
from lightbox.services.events import EventBus, InstancesDeleted
from lightbox.services.ingest import IngestService
from lightbox.services.manage import ManageService
from lightbox.storage.base import BlobStoreError
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.dicom import part10

ALL = ContentFilter()


class Archive:
    """Ingest and manage on one index and blob store, and the events they publish."""

    def __init__(self, index: SqlIndex, blobs: FileSystemBlobStore) -> None:
        self.index, self.blobs = index, blobs
        self.events = EventBus()
        self.deleted: list[InstancesDeleted] = []
        self.events.subscribe(InstancesDeleted, self.deleted.append)
        self.ingest = IngestService(index, blobs, self.events, DuplicatePolicy.REPLACE)
        self.manage = ManageService(index, blobs, self.ingest, self.events)

    def store(self, **attrs: object) -> str:
        return self.ingest.ingest([part10(**attrs)], "t").sop_instance_uid

    def blob_key(self, sop_uid: str) -> str:
        found = self.index.find_instance(sop_uid)
        assert found is not None
        return found.blob_key

    def stats(self) -> IndexStatistics:
        return self.index.statistics()


@pytest.fixture
def archive(index: SqlIndex, blob_store: FileSystemBlobStore) -> Archive:
    return Archive(index, blob_store)


def _two_studies(archive: Archive) -> tuple[str, str, str, str]:
    """Patient P1: study A (CT series of 2 instances, MR series of 1), study B (1 CT instance)."""
    study_a, study_b = generate_uid(), generate_uid()
    ct, mr = generate_uid(), generate_uid()
    for n in (1, 2):
        archive.store(PatientID="P1", StudyInstanceUID=study_a, SeriesInstanceUID=ct, InstanceNumber=n)
    archive.store(PatientID="P1", StudyInstanceUID=study_a, SeriesInstanceUID=mr, Modality="MR")
    archive.store(PatientID="P1", StudyInstanceUID=study_b)
    return study_a, study_b, ct, mr


def _assert_counters_match_rows(index: SqlIndex) -> None:
    """Every counter equals what the rows below it hold: nothing drifted, nothing left empty."""
    instances = list(index.list_instances(ALL, None, 1000))
    for s in index.list_series(ALL, None, 1000):
        mine = [i for i in instances if i.series_instance_uid == s.series_instance_uid]
        assert (s.num_instances, s.size_bytes) == (len(mine), sum(i.size for i in mine)) and mine
    all_series = list(index.list_series(ALL, None, 1000))
    for st in index.list_studies(ALL, None, 1000):
        mine = [i for i in instances if i.study_instance_uid == st.study_instance_uid]
        series = [s for s in all_series if s.study_instance_uid == st.study_instance_uid]
        assert (st.num_instances, st.num_series, st.size_bytes) == (
            len(mine),
            len(series),
            sum(i.size for i in mine),
        )
        assert sorted(st.modalities_in_study) == sorted({s.modality for s in series})
    studies = list(index.list_studies(ALL, None, 1000))
    for p in index.list_patients(ALL, None, 1000):
        mine = [i for i in instances if i.patient_id == p.patient_id]
        assert (p.num_studies, p.num_instances, p.size_bytes) == (
            len([s for s in studies if s.patient_id == p.patient_id]),
            len(mine),
            sum(i.size for i in mine),
        )
        assert p.num_series == len([s for s in all_series if s.patient_id == p.patient_id])
    stats = index.statistics()
    assert stats.size_bytes == sum(i.size for i in instances)


# --- listings ----------------------------------------------------------------------------------------------
def test_listings_page_by_keyset_and_filter_by_unique_keys(archive: Archive) -> None:
    study_a, study_b, ct, mr = _two_studies(archive)
    archive.store(PatientID="P2")
    index = archive.index
    first = index.list_instances(ALL, None, 3)
    rest = index.list_instances(ALL, first[-1].id, 3)
    assert len(first) == 3 and len(rest) == 2
    assert len({i.sop_instance_uid for i in [*first, *rest]}) == 5
    assert [p.patient_id for p in index.list_patients(ALL, None, 10)] == ["P1", "P2"]
    assert [s.study_instance_uid for s in index.list_studies(ContentFilter(patient_id="P1"), None, 10)] == [
        study_a,
        study_b,
    ]
    assert {
        s.series_instance_uid for s in index.list_series(ContentFilter(study_instance_uid=study_a), None, 10)
    } == {
        ct,
        mr,
    }
    in_ct = index.list_instances(ContentFilter(series_instance_uid=ct), None, 10)
    assert [i.instance_number for i in in_ct] == [1, 2]
    study = index.list_studies(ContentFilter(study_instance_uid=study_a), None, 1)[0]
    assert (study.num_series, study.num_instances, study.modalities_in_study) == (2, 3, ("CT", "MR"))
    assert study.size_bytes == sum(
        i.size for i in index.list_instances(ContentFilter(study_instance_uid=study_a), None, 10)
    )
    assert study.created_at.tzinfo is not None and study.updated_at >= study.created_at
    with pytest.raises(ValueError):
        index.list_studies(ContentFilter(series_instance_uid=ct), None, 10)  # a key below the level


# --- deletes -----------------------------------------------------------------------------------------------
def test_delete_instance_keeps_its_parents_and_their_counters_right(archive: Archive) -> None:
    study_a, _, ct, _ = _two_studies(archive)
    uid = archive.index.list_instances(ContentFilter(series_instance_uid=ct), None, 1)[0].sop_instance_uid
    key = archive.blob_key(uid)
    deletion = archive.manage.delete(Level.IMAGE, uid, "test")
    assert deletion.sop_instance_uids == (uid,) and deletion.blob_keys == (key,)
    assert not archive.blobs.exists(key)
    assert archive.index.find_instance(uid) is None
    assert archive.index.pending_blob_deletions(10) == []
    assert archive.stats() == IndexStatistics(1, 2, 3, 3, archive.stats().size_bytes)
    _assert_counters_match_rows(archive.index)
    event = archive.deleted[-1]
    assert (event.level, event.uid, event.study_instance_uid, str(event.source)) == (
        "IMAGE",
        uid,
        study_a,
        "test",
    )


def test_delete_series_recomputes_modalities_and_removes_nothing_else(archive: Archive) -> None:
    study_a, _, _, mr = _two_studies(archive)
    keys = [
        i.blob_key
        for i in archive.index.locate(
            Level.SERIES, {"StudyInstanceUID": [study_a], "SeriesInstanceUID": [mr]}
        )
    ]
    archive.manage.delete(Level.SERIES, mr, "test")
    assert not any(archive.blobs.exists(k) for k in keys)
    study = archive.index.list_studies(ContentFilter(study_instance_uid=study_a), None, 1)[0]
    assert (study.num_series, study.num_instances, study.modalities_in_study) == (1, 2, ("CT",))
    assert archive.stats().instances == 3 and len(list(archive.blobs.keys())) == 3
    _assert_counters_match_rows(archive.index)


def test_delete_last_series_of_a_study_removes_the_study(archive: Archive) -> None:
    _, study_b, _, _ = _two_studies(archive)
    series = archive.index.list_series(ContentFilter(study_instance_uid=study_b), None, 1)[0]
    archive.manage.delete(Level.SERIES, series.series_instance_uid, "test")
    assert archive.index.list_studies(ContentFilter(study_instance_uid=study_b), None, 1) == []
    assert archive.stats().studies == 1
    _assert_counters_match_rows(archive.index)


def test_delete_study_keeps_the_patients_other_studies(archive: Archive) -> None:
    study_a, study_b, _, _ = _two_studies(archive)
    deletion = archive.manage.delete(Level.STUDY, study_a, "test")
    assert len(deletion.sop_instance_uids) == 3 and deletion.size_bytes > 0
    assert archive.stats() == IndexStatistics(1, 1, 1, 1, archive.stats().size_bytes)
    assert len(list(archive.blobs.keys())) == 1
    _assert_counters_match_rows(archive.index)
    assert [i.study_instance_uid for i in archive.index.locate(Level.PATIENT, {"PatientID": ["P1"]})] == [
        study_b
    ]


def test_delete_last_study_removes_the_patient_and_every_object(archive: Archive) -> None:
    study_a, study_b, _, _ = _two_studies(archive)
    archive.manage.delete(Level.STUDY, study_a, "test")
    archive.manage.delete(Level.STUDY, study_b, "test")
    assert archive.stats() == IndexStatistics(0, 0, 0, 0, 0)
    assert list(archive.blobs.keys()) == []
    assert archive.index.pending_blob_deletions(10) == []


def test_deleted_content_can_be_stored_again(archive: Archive) -> None:
    study = generate_uid()
    uid = archive.store(StudyInstanceUID=study)
    archive.manage.delete(Level.STUDY, study, "test")
    archive.ingest.ingest([part10(StudyInstanceUID=study, SOPInstanceUID=uid)], "t")
    assert archive.stats().instances == 1
    _assert_counters_match_rows(archive.index)


def test_unknown_or_invalid_uid(archive: Archive) -> None:
    archive.store()
    with pytest.raises(NotFound):
        archive.manage.delete(Level.STUDY, "1.2.3.4", "test")
    with pytest.raises(InvalidQuery):
        archive.manage.delete(Level.SERIES, "not-a-uid", "test")
    with pytest.raises(InvalidQuery):
        archive.manage.delete(Level.PATIENT, "P1", "test")
    assert archive.stats().instances == 1


# --- crash safety ------------------------------------------------------------------------------------------
def test_crash_after_the_index_commit_is_finished_at_start(archive: Archive) -> None:
    """The rows are gone and the process dies before removing the objects: recovery removes them and must
    not index them again (that would undo an acknowledged delete)."""
    study_a, _, _, _ = _two_studies(archive)
    deletion = archive.index.delete_content(Level.STUDY, study_a)  # the commit, then the crash
    assert all(archive.blobs.exists(k) for k in deletion.blob_keys)
    assert sorted(archive.index.pending_blob_deletions(10)) == sorted(deletion.blob_keys)

    restarted = Archive(archive.index, archive.blobs)
    restarted.manage.recover()
    assert not any(archive.blobs.exists(k) for k in deletion.blob_keys)
    assert archive.index.pending_blob_deletions(10) == []
    assert archive.stats().instances == 1
    assert archive.index.list_studies(ContentFilter(study_instance_uid=study_a), None, 1) == []


def test_crash_before_the_index_commit_changes_nothing(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    study_a, _, _, _ = _two_studies(archive)
    before = archive.stats()

    original = archive.index._delete

    def dies_before_commit(conn: Connection, level: Level, uid: str, only_by: str | None) -> Deletion:
        original(conn, level, uid, only_by)
        raise SimulatedCrash  # the process stops inside the transaction: nothing of it commits

    monkeypatch.setattr(archive.index, "_delete", dies_before_commit)
    with pytest.raises(SimulatedCrash):
        archive.manage.delete(Level.STUDY, study_a, "test")
    monkeypatch.undo()
    assert archive.stats() == before
    assert archive.index.pending_blob_deletions(10) == []
    assert len(list(archive.blobs.keys())) == 4
    _assert_counters_match_rows(archive.index)


class SimulatedCrash(BaseException):
    """Not an Exception: nothing on the way up may catch it, as nothing survives a crash."""


class _FailingStore(FileSystemBlobStore):
    """Storage that fails after ``allowed`` deletes."""

    def __init__(self, root: Path, allowed: int) -> None:
        super().__init__(root)
        self.allowed = allowed

    def delete(self, key: str) -> None:
        if self.allowed <= 0:
            raise BlobStoreError(5, "simulated I/O error")
        self.allowed -= 1
        super().delete(key)


def test_storage_failure_midway_leaves_the_rest_pending(index: SqlIndex, tmp_path: Path) -> None:
    failing = _FailingStore(tmp_path / "objects", allowed=1)
    archive = Archive(index, failing)
    study_a, _, _, _ = _two_studies(archive)
    failing.allowed = 1
    deletion = archive.manage.delete(Level.STUDY, study_a, "test")  # acknowledged: the rows are gone
    left = archive.index.pending_blob_deletions(10)
    assert len(left) == 2 and set(left) < set(deletion.blob_keys)
    assert all(failing.exists(k) for k in left)

    # Storage still failing at the next start: the objects stay pending, and are not indexed again.
    failing.allowed = 0
    report = archive.manage.recover()
    assert report.indexed == 0 and archive.stats().instances == 1
    failing.allowed = 100
    archive.manage.recover()
    assert archive.index.pending_blob_deletions(10) == []
    assert len(list(failing.keys())) == 1


def test_reindex_does_not_bring_back_a_deleted_study(archive: Archive) -> None:
    study_a, _, _, _ = _two_studies(archive)
    archive.index.delete_content(Level.STUDY, study_a)  # crash before the objects went
    report = archive.manage.reindex()
    assert report.indexed == 1 and archive.stats().instances == 1
    assert len(list(archive.blobs.keys())) == 1


def test_killed_process_between_commit_and_removal(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    """A real crash: another process deletes a study and dies as it starts removing the objects."""
    archive = Archive(index, blob_store)
    study_a, _, _, _ = _two_studies(archive)
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path

        from lightbox.domain.levels import Level
        from lightbox.index.sql import SqlIndex
        from lightbox.services.events import EventBus
        from lightbox.services.ingest import IngestService
        from lightbox.services.manage import ManageService
        from lightbox.storage.filesystem import FileSystemBlobStore

        index = SqlIndex({index.url!r})
        blobs = FileSystemBlobStore(Path({str(blob_store.root)!r}))
        blobs.delete = lambda key: os._exit(17)
        manage = ManageService(index, blobs, IngestService(index, blobs, EventBus()))
        manage.delete(Level.STUDY, {study_a!r}, "t")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == 17, result.stderr.decode()
    assert archive.stats().instances == 1  # the delete committed
    assert len(list(blob_store.keys())) == 4  # and no object was removed

    restarted = Archive(index, blob_store)
    restarted.manage.recover()
    assert archive.stats().instances == 1
    assert len(list(blob_store.keys())) == 1
    assert archive.index.pending_blob_deletions(10) == []


def test_durable_delete_leaves_the_connection_as_configured(index: SqlIndex, tmp_path: Path) -> None:
    """The delete's commit waits for the disk; later commits on the same connection do not."""
    url = index.url if index.dialect == "postgresql" else f"sqlite:///{tmp_path / 'one.db'}"
    single = SqlIndex(url, pool_size=1)
    try:
        single.migrate()
        archive = Archive(single, FileSystemBlobStore(tmp_path / "one-objects"))
        study = generate_uid()
        archive.store(StudyInstanceUID=study)
        archive.manage.delete(Level.STUDY, study, "test")
        with single.engine.connect() as conn:
            if single.dialect == "sqlite":
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            else:
                assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    finally:
        single.close()


def test_deletes_racing_stores_of_the_same_study(archive: Archive) -> None:
    """Stores into a study while it is deleted again and again: whatever wins, the counters match the rows
    and every object has its row and every row its object."""
    study, other = generate_uid(), generate_uid()
    archive.store(PatientID="P1", StudyInstanceUID=other)
    stop = threading.Event()
    errors: list[BaseException] = []

    def store() -> None:
        try:
            for n in range(30):
                archive.store(PatientID="P1", StudyInstanceUID=study, InstanceNumber=n)
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    def delete() -> None:
        while not stop.is_set():
            try:
                archive.manage.delete(Level.STUDY, study, "test")
            except NotFound:
                time.sleep(0.001)  # nothing stored yet: let the store run

    threads = [threading.Thread(target=store), threading.Thread(target=delete)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    _assert_counters_match_rows(archive.index)
    indexed = {i.sop_instance_uid: i for i in archive.index.list_instances(ALL, None, 1000)}
    keys = set(archive.blobs.keys())
    assert len(keys) == len(indexed) and archive.index.indexed_blob_keys(keys) == keys
    assert archive.index.pending_blob_deletions(10) == []


def test_own_only_deletes_what_the_user_stored_and_nothing_else(archive: Archive) -> None:
    study, shared = generate_uid(), generate_uid()
    rita, bob = Actor("stow", user="rita"), Actor("stow", user="bob")

    def store(actor: Actor, study_uid: str) -> str:
        return archive.ingest.ingest([part10(StudyInstanceUID=study_uid)], actor).sop_instance_uid

    store(rita, study)
    mine = store(rita, shared)
    store(bob, shared)
    anonymous = archive.store(StudyInstanceUID=shared)  # no user: an AE, an import
    for target in (shared, study):  # bob stored only some of one, none of the other
        with pytest.raises(Forbidden):
            archive.manage.delete(Level.STUDY, target, bob, own_only=True)
    with pytest.raises(Forbidden):
        archive.manage.delete(Level.IMAGE, anonymous, rita, own_only=True)
    with pytest.raises(Forbidden):
        archive.manage.delete(Level.STUDY, study, "cli", own_only=True)  # no user named
    assert archive.manage.delete(Level.IMAGE, mine, rita, own_only=True).sop_instance_uids == (mine,)
    assert len(archive.manage.delete(Level.STUDY, study, rita, own_only=True).sop_instance_uids) == 1
    assert archive.stats().studies == 1  # the shared study, with bob's and the anonymous instance
    _assert_counters_match_rows(archive.index)
