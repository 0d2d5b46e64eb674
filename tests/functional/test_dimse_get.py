"""``lightbox serve`` as a C-GET SCP (PS3.4 C.4.3), against pynetdicom and dcmtk's getscu."""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dcmtk import retrieve_study
from tests.support.dicom import data_set_bytes, part10
from tests.support.retrieve import c_get
from tests.support.server import RunningServer, running_server

STUDY, SERIES_1, SERIES_2 = generate_uid(), generate_uid(), generate_uid()


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, dict[str, bytes]]]:
    data = tmp_path_factory.mktemp("get") / "data"
    archive = build_archive(load_settings(data_dir=data))
    objects: dict[str, bytes] = {}
    for i in range(5):
        blob = part10(
            StudyInstanceUID=STUDY, SeriesInstanceUID=SERIES_1 if i < 3 else SERIES_2, InstanceNumber=i
        )
        objects[archive.ingest.ingest([blob], "t").sop_instance_uid] = blob
    archive.close()
    with running_server(data, aes=["PYNETDICOM", "GETSCU"]) as server:
        yield server, objects


def test_get_study_series_instance_byte_identical(stored: tuple[RunningServer, dict[str, bytes]]) -> None:
    server, objects = stored
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = STUDY
    received, final, _ = c_get(server, ds, [ExplicitVRLittleEndian])
    assert final.Status == 0 and final.NumberOfCompletedSuboperations == 5
    assert received == {uid: data_set_bytes(blob) for uid, blob in objects.items()}
    ds.QueryRetrieveLevel = "SERIES"
    ds.SeriesInstanceUID = SERIES_2
    received, final, _ = c_get(server, ds, [ExplicitVRLittleEndian])
    assert final.Status == 0 and len(received) == 2
    one = next(iter(objects))  # the first object stored, in SERIES_1
    ds.QueryRetrieveLevel = "IMAGE"
    ds.SeriesInstanceUID = SERIES_1
    ds.SOPInstanceUID = one
    received, _, _ = c_get(server, ds, [ExplicitVRLittleEndian])
    assert list(received) == [one]


def test_implicit_only_peer_gets_objects_converted(stored: tuple[RunningServer, dict[str, bytes]]) -> None:
    server, objects = stored
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = STUDY
    received, final, _ = c_get(server, ds, [ImplicitVRLittleEndian])  # stored explicit: converted
    assert final.Status == 0 and final.NumberOfCompletedSuboperations == 5
    assert set(received) == set(objects)
    for uid, data in received.items():
        original = dcmread(BytesIO(objects[uid]))
        assert data != data_set_bytes(objects[uid])  # re-encoded, not sent as stored
        assert read_dataset(BytesIO(data), True, True) == original


def test_no_acceptable_context_is_a_failed_sub_operation(
    stored: tuple[RunningServer, dict[str, bytes]],
) -> None:
    server, objects = stored
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = STUDY
    received, final, failed = c_get(server, ds, [JPEGBaseline8Bit])  # converted to uncompressed only
    assert received == {}
    assert final.Status == 0xB000 and final.NumberOfFailedSuboperations == 5
    assert failed is not None and set(failed.FailedSOPInstanceUIDList) == set(objects)


def test_getscu(stored: tuple[RunningServer, dict[str, bytes]], tmp_path: Path) -> None:
    server, objects = stored
    result = retrieve_study("getscu", server.dicom_port, STUDY, "-od", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    files = sorted(tmp_path.iterdir())
    assert len(files) == len(objects)
    assert {data_set_bytes(f.read_bytes()) for f in files} == {data_set_bytes(b) for b in objects.values()}


def test_compressed_syntax_offered_first_still_gets_every_object(
    stored: tuple[RunningServer, dict[str, bytes]],
) -> None:
    """A peer offering [JPEG baseline, explicit VR] in one context, as SCP: the archive takes explicit VR
    (it can send every object so; it never compresses), and the objects arrive as stored."""
    server, objects = stored
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = STUDY
    received, final, _ = c_get(server, ds, [JPEGBaseline8Bit, ExplicitVRLittleEndian])
    assert final.Status == 0 and final.NumberOfCompletedSuboperations == len(objects)
    assert received == {uid: data_set_bytes(blob) for uid, blob in objects.items()}


def test_object_missing_from_storage_fails_alone(tmp_path: Path) -> None:
    """A blob gone from storage is a failed sub-operation; the association and the other objects go on."""
    data = tmp_path / "data"
    archive = build_archive(load_settings(data_dir=data))
    study = generate_uid()
    uids = [archive.ingest.ingest([part10(StudyInstanceUID=study)], "t").sop_instance_uid for _ in range(3)]
    lost = archive.retrieve.instance(uids[1])
    (data / "objects" / lost.blob_key).unlink()
    archive.close()
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study
    with running_server(data, aes=["PYNETDICOM", "GETSCU"]) as server:
        received, final, failed = c_get(server, ds, [ExplicitVRLittleEndian])
    assert set(received) == {uids[0], uids[2]}
    assert final.Status == 0xB000 and final.NumberOfFailedSuboperations == 1
    assert failed is not None and failed.FailedSOPInstanceUIDList == uids[1]
