"""The metadata version on every index backend: it changes whenever the headers of a selection may, and only
then, so that a revalidated copy of a series' metadata is never stale."""

from __future__ import annotations

from pydicom.uid import generate_uid

from lightbox.domain.levels import Level
from lightbox.index.base import DuplicatePolicy
from lightbox.index.sql import SqlIndex
from lightbox.services.events import EventBus
from lightbox.services.ingest import IngestService
from lightbox.services.manage import ManageService
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.dicom import part10


def test_the_version_follows_every_change_of_the_headers(
    index: SqlIndex, blob_store: FileSystemBlobStore
) -> None:
    ingest = IngestService(index, blob_store, EventBus(), DuplicatePolicy.REPLACE)
    manage = ManageService(index, blob_store, ingest, EventBus())
    study, series, other_series = generate_uid(), generate_uid(), generate_uid()
    assert index.metadata_version(study) is None

    def store(series_uid: str, **attrs: object) -> str:
        data = part10(StudyInstanceUID=study, SeriesInstanceUID=series_uid, **attrs)
        return ingest.ingest([data], "t").sop_instance_uid

    first = store(series, InstanceNumber=1)
    one = index.metadata_version(study, series)
    assert one is not None and one.instances == 1
    assert index.metadata_version(study, series) == one  # nothing changed, the same version

    second = store(series, InstanceNumber=2)
    two = index.metadata_version(study, series)
    assert two is not None and two.instances == 2 and two.digest != one.digest
    only_first = index.metadata_version(study, series, first)
    assert only_first is not None and only_first.instances == 1

    store(other_series, InstanceNumber=1)  # another series: that series' version is unchanged
    assert index.metadata_version(study, series) == two
    whole_study = index.metadata_version(study)
    assert whole_study is not None and whole_study.instances == 3

    # the same SOP Instance UID stored again with other content replaces the instance
    store(series, InstanceNumber=7, SOPInstanceUID=second)
    replaced = index.metadata_version(study, series)
    assert replaced is not None and replaced.instances == 2 and replaced.digest != two.digest
    assert index.metadata_version(study, series, first) == only_first

    manage.delete(Level.IMAGE, second, "t")
    after_delete = index.metadata_version(study, series)
    assert after_delete is not None and after_delete.instances == 1
    assert after_delete.digest not in {two.digest, replaced.digest}
    assert index.metadata_version(study, series, second) is None
    assert index.metadata_version(study, generate_uid()) is None
