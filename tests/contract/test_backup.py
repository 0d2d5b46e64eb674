"""Backup and restore on every index backend: the snapshot is one moment of the index, the objects it refers
to are all in the backup and copied once, and an object deleted or replaced in the archive between the
snapshot and its copy never fails the backup nor leaves the snapshot referring to what the backup lacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from lightbox.app import folder_store, opened_snapshot
from lightbox.domain.errors import Conflict
from lightbox.domain.levels import Level
from lightbox.index.base import ContentFilter, DuplicatePolicy, RemoteAE
from lightbox.index.sql import SqlIndex
from lightbox.services.backup import BackupReport, BackupService
from lightbox.services.backup_layout import list_backups, objects_path, read_manifest
from lightbox.services.events import EventBus
from lightbox.services.ingest import IngestService
from lightbox.services.manage import ManageService
from lightbox.services.restore import RestoreService
from lightbox.storage.base import BlobStore
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.contract.test_blob_store import s3_store
from tests.support.dicom import part10
from tests.support.postgres import create_database
from tests.support.s3 import S3Server


class Archive:
    def __init__(self, index: SqlIndex, blobs: BlobStore) -> None:
        self.index, self.blobs = index, blobs
        self.ingest = IngestService(index, blobs, EventBus(), DuplicatePolicy.REPLACE)
        self.manage = ManageService(index, blobs, self.ingest)

    def store(self, **attrs: object) -> str:
        return self.ingest.ingest([part10(**attrs)], "t").sop_instance_uid

    def backup(self, dest: Path) -> BackupReport:
        return BackupService(self.index, self.blobs, opened_snapshot).backup(
            dest, folder_store(objects_path(dest)), engine=self.index.dialect
        )


@pytest.fixture
def archive(index: SqlIndex, blob_store: FileSystemBlobStore) -> Archive:
    return Archive(index, blob_store)


def _restore(dest: Path, target: Path, name: str | None = None) -> tuple[SqlIndex, FileSystemBlobStore]:
    name = name or list_backups(dest)[-1]
    service = RestoreService(dest, folder_store(objects_path(dest)), opened_snapshot)
    report = service.restore(name, target, lambda: FileSystemBlobStore(target / "objects"))
    assert report.problems == []
    assert report.restored == report.instances
    return SqlIndex(f"sqlite:///{target / 'index.db'}"), FileSystemBlobStore(target / "objects")


def _read(store: BlobStore, key: str) -> bytes:
    with store.open(key) as f:
        return f.read()


def _sops(index: SqlIndex) -> set[str]:
    return {r.sop_instance_uid for r in index.list_instances(ContentFilter(), None, 1000)}


def test_incremental_backups_and_restore_of_each(archive: Archive, tmp_path: Path) -> None:
    study = generate_uid()
    first = {archive.store(StudyInstanceUID=study, InstanceNumber=n) for n in range(3)}
    archive.index.add_remote_ae(RemoteAE("VIEWER", "10.0.0.7", 104))
    dest = tmp_path / "backup"

    one = archive.backup(dest)
    assert (one.copied, one.already_there, one.instances) == (3, 0, 3)
    second = {archive.store(InstanceNumber=n) for n in range(2)}
    two = archive.backup(dest)
    assert (two.copied, two.already_there, two.instances) == (2, 3, 5)
    assert list_backups(dest) == [one.name, two.name]
    manifest = read_manifest(dest, two.name)
    assert manifest["content"]["instances"] == 5 and manifest["objects"]["count"] == 5
    assert manifest["schema_revision"] == archive.index.schema_revision()
    assert manifest["index_engine"] == archive.index.dialect

    restored, blobs = _restore(dest, tmp_path / "new")
    try:
        assert _sops(restored) == first | second
        assert restored.statistics() == archive.index.statistics()
        assert restored.get_remote_ae("VIEWER") == RemoteAE("VIEWER", "10.0.0.7", 104)
        for location in restored.stored_objects(None, 100):
            assert _read(blobs, location.blob_key) == _read(archive.blobs, location.blob_key)
    finally:
        restored.close()
    older, _ = _restore(dest, tmp_path / "older", one.name)
    try:
        assert _sops(older) == first
    finally:
        older.close()


def test_objects_deleted_or_replaced_after_the_snapshot(archive: Archive, tmp_path: Path) -> None:
    study, series_uid = generate_uid(), generate_uid()
    same = {"StudyInstanceUID": study, "SeriesInstanceUID": series_uid}
    kept, deleted, replaced = (archive.store(**same, InstanceNumber=n) for n in range(3))
    gone_study = archive.store()  # its whole study goes
    before = archive.index.find_instance(replaced)
    assert before is not None

    class Racing(BackupService):
        def take_snapshot(self, dest: Path) -> tuple[Path, str]:
            taken = super().take_snapshot(dest)
            # After the snapshot, before the copies: the objects these rows refer to go
            archive.manage.delete(Level.IMAGE, deleted, "t")
            archive.manage.delete(Level.IMAGE, gone_study, "t")
            archive.store(**same, SOPInstanceUID=replaced, InstanceNumber=9)
            archive.store()  # stored after the snapshot: not in this backup
            return taken

    dest = tmp_path / "backup"
    report = Racing(archive.index, archive.blobs, opened_snapshot).backup(
        dest, folder_store(objects_path(dest))
    )
    assert sorted(report.deleted) == sorted([deleted, gone_study])
    assert report.replaced == [replaced] and report.problems == []
    manifest = read_manifest(dest, report.name)
    assert manifest["content"]["instances"] == manifest["objects"]["count"] == 2
    assert manifest["content"]["studies"] == 1 and manifest["deleted_during_backup"]

    restored, blobs = _restore(dest, tmp_path / "new")
    try:
        assert _sops(restored) == {kept, replaced}
        after = restored.find_instance(replaced)
        now = archive.index.find_instance(replaced)
        assert after is not None and now is not None
        assert after.sha256 == now.sha256 != before.sha256
        assert blobs.exists(after.blob_key) and not blobs.exists(before.blob_key)
        (series,) = restored.list_series(ContentFilter(), None, 10)
        assert series.num_instances == 2
        assert restored.pending_blob_deletions(10) == []
    finally:
        restored.close()


def test_missing_object_in_the_archive_is_left_out_and_reported(archive: Archive, tmp_path: Path) -> None:
    good, lost = archive.store(), archive.store()
    location = archive.index.find_instance(lost)
    assert location is not None
    archive.blobs.delete(location.blob_key)  # the index still refers to it
    dest = tmp_path / "backup"
    report = archive.backup(dest)
    assert [(p.sop_instance_uid, p.problem) for p in report.problems] == [
        (lost, "missing from the archive's storage")
    ]
    restored, _ = _restore(dest, tmp_path / "new")
    try:
        assert _sops(restored) == {good}
    finally:
        restored.close()


def test_restore_into_an_empty_postgresql_database(
    archive: Archive, tmp_path: Path, postgres_url: str
) -> None:
    sops = {archive.store(InstanceNumber=n) for n in range(3)}
    dest = tmp_path / "backup"
    name = archive.backup(dest).name
    url = create_database(
        postgres_url.rsplit("/", 1)[0] + "/postgres", f"lightbox_restore_{archive.index.dialect}"
    )
    target = SqlIndex(url)
    target.migrate()
    try:
        service = RestoreService(dest, folder_store(objects_path(dest)), opened_snapshot)
        report = service.restore(
            name, tmp_path / "new", lambda: FileSystemBlobStore(tmp_path / "new" / "objects"), target
        )
        assert report.problems == [] and report.instances == 3
        assert _sops(target) == sops
        assert not (tmp_path / "new" / "index.db").exists()
        # The id sequences continue after the restored rows
        archive_after = Archive(target, FileSystemBlobStore(tmp_path / "new" / "objects"))
        archive_after.store()
        assert target.statistics().instances == 4
        with pytest.raises(Conflict, match="not empty"):
            service.restore(name, tmp_path / "again", lambda: FileSystemBlobStore(tmp_path / "again"), target)
        assert not (tmp_path / "again").exists()  # nothing half-restored stays behind
    finally:
        target.close()


def test_archive_on_s3_backs_up_and_restores(tmp_path: Path, s3: S3Server) -> None:
    index = SqlIndex(f"sqlite:///{tmp_path / 'index.db'}")
    index.migrate()
    archive = Archive(index, s3_store(s3, tmp_path))
    try:
        kept = {archive.store(InstanceNumber=n) for n in range(3)}
        deleted = archive.store()

        class Racing(BackupService):
            def take_snapshot(self, dest: Path) -> tuple[Path, str]:
                taken = super().take_snapshot(dest)
                archive.manage.delete(Level.IMAGE, deleted, "t")  # gone from the bucket before its copy
                return taken

        dest = tmp_path / "backup"
        report = Racing(index, archive.blobs, opened_snapshot).backup(dest, folder_store(objects_path(dest)))
        assert (report.copied, report.deleted, report.problems) == (3, [deleted], [])
        restored, blobs = _restore(dest, tmp_path / "new")
        try:
            assert _sops(restored) == kept
            for location in restored.stored_objects(None, 100):
                assert _read(blobs, location.blob_key) == _read(archive.blobs, location.blob_key)
        finally:
            restored.close()
    finally:
        archive.ingest.close()
        index.close()


def test_objects_in_other_tiers_and_moved_during_the_backup(tmp_path: Path) -> None:
    from lightbox.config import StorageSettings
    from lightbox.services.lifecycle import LifecycleReport, LifecycleService
    from lightbox.storage.tiered import TieredBlobStore

    index = SqlIndex(f"sqlite:///{tmp_path / 'index.db'}")
    index.migrate()
    cold = tmp_path / "cold"
    blobs = TieredBlobStore(FileSystemBlobStore(tmp_path / "hot"), {"cold": FileSystemBlobStore(cold)})
    archive = Archive(index, blobs)
    settings = StorageSettings(tiers={"cold": f"file://{cold}"})
    lifecycle = LifecycleService(index, blobs, archive.manage, settings)
    try:
        study_a, study_b = generate_uid(), generate_uid()
        sops = {
            archive.store(StudyInstanceUID=s, InstanceNumber=n) for s in (study_a, study_b) for n in range(2)
        }
        lifecycle.move_study(study_a, "cold", LifecycleReport())  # in the cold tier before the backup

        class Racing(BackupService):
            def take_snapshot(self, dest: Path) -> tuple[Path, str]:
                taken = super().take_snapshot(dest)
                hot = {sop: archive.index.find_instance(sop) for sop in sops}
                lifecycle.move_study(study_b, "cold", LifecycleReport())
                for location in hot.values():  # the readers' grace is over: the hot objects go
                    assert location is not None
                    if not location.blob_key.startswith("@"):
                        blobs.delete(location.blob_key)
                return taken

        dest = tmp_path / "backup"
        report = Racing(index, blobs, opened_snapshot).backup(
            dest, folder_store(objects_path(dest), ["cold"])
        )
        assert len(report.moved) == 2 and report.problems == [] and report.deleted == []
        assert report.copied == 4  # the cold tier's two, and the two moved copies of the hot ones that went
        assert len(list((dest / "objects" / "@cold").rglob("*.dcm"))) == 4

        restored, restored_blobs = _restore(dest, tmp_path / "new")
        try:
            assert _sops(restored) == sops
            assert restored.tier_usage() == {None: index.tier_usage()["cold"]}  # all in the first tier now
            assert restored.pending_blob_deletions(100) == []
            for sop in sops:
                now, back = index.find_instance(sop), restored.find_instance(sop)
                assert now is not None and back is not None and back.blob_key[0] != "@"
                assert _read(restored_blobs, back.blob_key) == _read(blobs, now.blob_key)
        finally:
            restored.close()
    finally:
        archive.ingest.close()
        index.close()
