"""The retrieve service on every Index backend: selections resolve to stored objects, streamed back."""

from __future__ import annotations

import hashlib

import pytest
from pydicom.uid import generate_uid

from lightbox.domain.errors import InvalidQuery, NotFound
from lightbox.domain.levels import Level
from lightbox.index import sql
from lightbox.index.base import DuplicatePolicy
from lightbox.index.sql import SqlIndex
from lightbox.services.events import EventBus, InstancesRetrieved
from lightbox.services.ingest import IngestService
from lightbox.services.retrieve import RetrieveService
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.dicom import part10


@pytest.fixture
def stored(index: SqlIndex, blob_store: FileSystemBlobStore) -> tuple[RetrieveService, dict[str, bytes], str]:
    ingest = IngestService(index, blob_store, EventBus(), DuplicatePolicy.REPLACE)
    study, other_study = generate_uid(), generate_uid()
    series_a, series_b = generate_uid(), generate_uid()
    objects: dict[str, bytes] = {}
    for study_uid, series_uid, n in (
        (study, series_a, 3),
        (study, series_b, 2),
        (other_study, generate_uid(), 1),
    ):
        for i in range(n):
            data = part10(StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid, InstanceNumber=i)
            objects[ingest.ingest([data], "t").sop_instance_uid] = data
    return RetrieveService(index, blob_store, EventBus()), objects, study


def test_resolve_each_level(stored: tuple[RetrieveService, dict[str, bytes], str]) -> None:
    retrieve, objects, study = stored
    in_study = list(retrieve.resolve(Level.STUDY, {"StudyInstanceUID": [study]}))
    assert len(in_study) == 5 and {loc.study_instance_uid for loc in in_study} == {study}
    series_uid = in_study[0].series_instance_uid
    in_series = list(retrieve.resolve(Level.SERIES, {"SeriesInstanceUID": [series_uid]}))
    assert {loc.series_instance_uid for loc in in_series} == {series_uid}
    two = [in_study[0].sop_instance_uid, in_study[-1].sop_instance_uid]
    assert {loc.sop_instance_uid for loc in retrieve.resolve(Level.IMAGE, {"SOPInstanceUID": two})} == set(
        two
    )
    everything = list(retrieve.resolve(Level.PATIENT, {"PatientID": ["PID-1"]}))
    assert len(everything) == len(objects)


def test_selections_read_in_pages_agree(
    stored: tuple[RetrieveService, dict[str, bytes], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One value a key and several values a key are located by different statements; both page."""
    retrieve, objects, study = stored
    monkeypatch.setattr(sql, "_LOCATE_PAGE", 2)
    in_study = list(retrieve.resolve(Level.STUDY, {"StudyInstanceUID": [study]}))
    assert len(in_study) == 5
    series_uids = sorted({loc.series_instance_uid for loc in in_study})
    both_series = list(retrieve.resolve(Level.SERIES, {"SeriesInstanceUID": series_uids}))
    assert both_series == in_study  # the same locations, in the same (storage) order
    everything = list(retrieve.resolve(Level.PATIENT, {"PatientID": ["PID-1"]}))
    assert len(everything) == len(objects) == 6
    one = in_study[3]
    uids = {
        "StudyInstanceUID": [study],
        "SeriesInstanceUID": [one.series_instance_uid],
        "SOPInstanceUID": [one.sop_instance_uid],
    }
    assert list(retrieve.resolve(Level.IMAGE, uids)) == [one]
    elsewhere = {**uids, "StudyInstanceUID": [generate_uid()]}
    assert list(retrieve.resolve(Level.IMAGE, elsewhere)) == []


def test_streams_are_byte_identical(stored: tuple[RetrieveService, dict[str, bytes], str]) -> None:
    retrieve, objects, _ = stored
    for uid, data in objects.items():
        location = retrieve.instance(uid)
        with retrieve.open(location) as f:
            assert f.read() == data
        assert b"".join(retrieve.chunks(location)) == data
        assert b"".join(retrieve.chunks(location, 128, 132)) == b"DICM"
        assert location.sha256 == hashlib.sha256(data).hexdigest()


def test_bad_selections(stored: tuple[RetrieveService, dict[str, bytes], str]) -> None:
    retrieve, _, study = stored
    with pytest.raises(InvalidQuery):
        list(retrieve.resolve(Level.SERIES, {"StudyInstanceUID": [study]}))  # the level's own key is required
    with pytest.raises(InvalidQuery):
        list(retrieve.resolve(Level.STUDY, {"StudyInstanceUID": ["1.2.3' OR '1'='1"]}))
    with pytest.raises(InvalidQuery):
        retrieve.instance("../../etc/passwd")
    with pytest.raises(NotFound):
        retrieve.instance(generate_uid())
    assert list(retrieve.resolve(Level.STUDY, {"StudyInstanceUID": [generate_uid()]})) == []


def test_missing_object_is_not_found(
    stored: tuple[RetrieveService, dict[str, bytes], str], blob_store: FileSystemBlobStore
) -> None:
    retrieve, objects, _ = stored
    location = retrieve.instance(next(iter(objects)))
    blob_store.delete(location.blob_key)
    with pytest.raises(NotFound):
        retrieve.open(location)
    with pytest.raises(NotFound):
        list(retrieve.chunks(location))


def test_retrieved_event(index: SqlIndex, blob_store: FileSystemBlobStore) -> None:
    events = EventBus()
    seen: list[InstancesRetrieved] = []
    events.subscribe(InstancesRetrieved, seen.append)
    ingest = IngestService(index, blob_store, EventBus())
    uid = ingest.ingest([part10()], "t").sop_instance_uid
    retrieve = RetrieveService(index, blob_store, events)
    location = retrieve.instance(uid)
    retrieve.retrieved("dimse:PEER", [location])
    assert [(str(e.source), e.study_instance_uids, e.instances) for e in seen] == [
        ("dimse:PEER", (location.study_instance_uid,), 1)
    ]
