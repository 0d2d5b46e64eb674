"""WADO-RS metadata against ``lightbox serve``: every attribute as stored, bulk data by URI, revalidation."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.formats.dicom_json import dataset_to_json
from tests.support.dicom import make_dataset, to_part10
from tests.support.multipart import DICOM_MULTIPART, related_body
from tests.support.server import RunningServer, running_server

STUDY, SERIES = generate_uid(), generate_uid()


def _objects() -> list[bytes]:
    series = []
    for number in (3, 1, 2):  # stored out of order: metadata comes by instance number
        ds = make_dataset(StudyInstanceUID=STUDY, SeriesInstanceUID=SERIES, InstanceNumber=number)
        ds.add_new(0x00091010, "LO", "LIGHTBOX TEST")
        ds.add_new(0x00091011, "OB", bytes(range(256)) * 20)  # 5 kB: bulk data
        reference = pydicom.Dataset()
        reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID = ds.SOPClassUID, generate_uid()
        ds.ReferencedImageSequence = [reference]
        series.append(to_part10(ds))
    other = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    other.StudyInstanceUID = STUDY  # a second series of the same study (and patient), from a real file
    other.PatientID, other.PatientName = "PID-1", "Doe^Jane"
    buf = io.BytesIO()
    other.save_as(buf, enforce_file_format=True)
    return [*series, buf.getvalue()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, list[bytes]]]:
    data = tmp_path_factory.mktemp("metadata") / "data"
    objects = _objects()
    archive = build_archive(load_settings(data_dir=data))
    for blob in objects:
        archive.ingest.ingest([blob], "t")
    archive.close()
    with running_server(data) as running:
        yield running, objects


def _expected(blob: bytes) -> dict[str, Any]:
    """The header as DICOM JSON, bulk values out: what metadata must hold besides the BulkDataURIs."""
    ds = pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True)
    return dataset_to_json(ds)


def test_series_metadata_holds_every_attribute(server: tuple[RunningServer, list[bytes]]) -> None:
    running, objects = server
    client = running.dicomweb()
    found = client.retrieve_series_metadata(STUDY, SERIES)
    assert [doc["00200013"]["Value"][0] for doc in found] == [1, 2, 3]
    expected = {_expected(b)["00080018"]["Value"][0]: _expected(b) for b in objects[:3]}
    for doc in found:
        uid = doc["00080018"]["Value"][0]
        bulk = {tag: doc.pop(tag) for tag in ("00091011", "7FE00010")}
        assert doc == expected[uid]
        for tag, element in bulk.items():
            assert element["BulkDataURI"].endswith(f"/instances/{uid}/bulkdata/{tag}")
        assert bulk["00091011"]["vr"] == "OB"


def _in_tag_order(document: dict[str, Any]) -> bool:
    """PS3.18 F.2.2: attributes in ascending tag order, in the document and in each sequence item."""
    items = [
        item for element in document.values() if element["vr"] == "SQ" for item in element.get("Value", [])
    ]
    return list(document) == sorted(document) and all(_in_tag_order(item) for item in items)


def test_metadata_attributes_come_in_tag_order(server: tuple[RunningServer, list[bytes]]) -> None:
    """Order as written on the wire (the attributes of the series, the study and the patient among the
    instance's own), read without re-sorting: a JSON object keeps the order of its members."""
    running, _ = server
    answer = httpx.get(f"{running.base_url}/dicom-web/studies/{STUDY}/metadata", headers=running.headers)
    documents = answer.json()
    assert len(documents) == 4 and all(_in_tag_order(doc) for doc in documents)
    referencing = [doc for doc in documents if "00081140" in doc]
    assert len(referencing) == 3 and all(len(doc["00081140"]["Value"][0]) == 2 for doc in referencing)


def test_study_and_instance_metadata(server: tuple[RunningServer, list[bytes]]) -> None:
    running, objects = server
    client = running.dicomweb()
    study = client.retrieve_study_metadata(STUDY)
    assert len(study) == len(objects)
    real = pydicom.dcmread(io.BytesIO(objects[3]), stop_before_pixels=True)
    one = client.retrieve_instance_metadata(STUDY, str(real.SeriesInstanceUID), str(real.SOPInstanceUID))
    assert one["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": str(real.PatientName)}]}
    assert "BulkDataURI" in one["7FE00010"]
    # pydicom reads the document back into a data set with the same attributes
    back = pydicom.Dataset.from_json(one, bulk_data_uri_handler=lambda *args: b"")
    assert back.SOPInstanceUID == real.SOPInstanceUID and back.Rows == real.Rows


def test_etag_revalidation_and_errors(server: tuple[RunningServer, list[bytes]]) -> None:
    running, _ = server
    url = f"{running.base_url}/dicom-web/studies/{STUDY}/series/{SERIES}/metadata"
    first = httpx.get(url, headers=running.headers)
    assert first.status_code == 200 and first.headers["content-type"] == "application/dicom+json"
    again = httpx.get(url, headers={**running.headers, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and not again.content
    unknown = httpx.get(
        f"{running.base_url}/dicom-web/studies/{generate_uid()}/metadata", headers=running.headers
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert "no instance in study" in unknown.json()["detail"]
    bad = httpx.get(f"{running.base_url}/dicom-web/studies/not-a-uid/metadata", headers=running.headers)
    assert bad.status_code == 400 and "not a valid study UID" in bad.json()["detail"]
    refused = httpx.get(url, headers={**running.headers, "Accept": "text/html"})
    assert refused.status_code == 406 and refused.headers["content-type"] == "application/problem+json"


def test_a_revalidated_copy_is_fetched_again_once_the_series_changes(tmp_path: Path) -> None:
    """The ETag follows the index's version of the series: a 304 while nothing changed, the new
    documents once an instance is added, and another tag under another base URL (bulk data URIs)."""
    data = tmp_path / "data"
    first, second = _objects()[:2]
    archive = build_archive(load_settings(data_dir=data))
    archive.ingest.ingest([first], "t")
    archive.close()
    with running_server(data) as running, running.client(timeout=30) as http:
        path = f"/dicom-web/studies/{STUDY}/series/{SERIES}/metadata"
        before = http.get(path)
        assert before.status_code == 200 and len(before.json()) == 1
        etag = before.headers["etag"]
        assert http.get(path, headers={"If-None-Match": etag}).status_code == 304
        elsewhere = http.get(path, headers={"If-None-Match": etag, "Host": "pacs.example"})
        assert elsewhere.status_code == 200 and elsewhere.headers["etag"] != etag
        assert "http://pacs.example:" in elsewhere.text
        stored = http.post(
            "/dicom-web/studies", content=related_body([second]), headers={"Content-Type": DICOM_MULTIPART}
        )
        assert stored.status_code == 200, stored.text
        after = http.get(path, headers={"If-None-Match": etag})
        assert after.status_code == 200 and len(after.json()) == 2
        assert after.headers["etag"] != etag
        assert http.get(path, headers={"If-None-Match": after.headers["etag"]}).status_code == 304


def test_metadata_of_objects_indexed_before_bulk_data_was_kept(tmp_path: Path) -> None:
    """Rows from before (no bulk column value) still get their bulk data URIs, read from the object."""
    data = tmp_path / "data"
    archive = build_archive(load_settings(data_dir=data))
    blob = _objects()[0]
    uid = archive.ingest.ingest([blob], "t").sop_instance_uid
    from sqlalchemy import update

    from lightbox.index.models import instances

    with archive.index.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(update(instances).values(bulk=None))
    docs = list(archive.metadata.documents(lambda loc, tag: f"uri:{tag}", STUDY, SERIES, uid))
    archive.close()
    assert docs[0]["7FE00010"]["BulkDataURI"] == "uri:7FE00010"
    assert docs[0]["00091011"]["BulkDataURI"] == "uri:00091011"


def test_bulkdata_values_follow_their_uris(server: tuple[RunningServer, list[bytes]]) -> None:
    running, objects = server
    client = running.dicomweb()
    first = pydicom.dcmread(io.BytesIO(objects[0]))
    doc = client.retrieve_instance_metadata(STUDY, SERIES, str(first.SOPInstanceUID))
    private = client.retrieve_bulkdata(doc["00091011"]["BulkDataURI"])
    assert private == [first[0x00091011].value]
    pixels = client.retrieve_bulkdata(doc["7FE00010"]["BulkDataURI"])
    assert pixels == [first.PixelData]
    real = pydicom.dcmread(io.BytesIO(objects[3]))  # implicit VR little endian, as CT_small is stored
    doc = client.retrieve_instance_metadata(STUDY, str(real.SeriesInstanceUID), str(real.SOPInstanceUID))
    assert client.retrieve_bulkdata(doc["7FE00010"]["BulkDataURI"]) == [real.PixelData]
    missing = httpx.get(
        doc["7FE00010"]["BulkDataURI"].replace("7FE00010", "00091099"), headers=running.headers
    )
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    bad = httpx.get(doc["7FE00010"]["BulkDataURI"].replace("7FE00010", "PIXELS"), headers=running.headers)
    assert bad.status_code == 400


def test_compressed_pixel_data_is_served_by_frame(tmp_path: Path) -> None:
    data = tmp_path / "data"
    archive = build_archive(load_settings(data_dir=data))
    result = archive.ingest.ingest([Path(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")).read_bytes()], "t")
    archive.close()
    with running_server(data) as running:
        client = running.dicomweb()
        doc = client.retrieve_instance_metadata(
            result.study_instance_uid, result.series_instance_uid, result.sop_instance_uid
        )
        answer = httpx.get(doc["7FE00010"]["BulkDataURI"], headers=running.headers)
    assert answer.status_code == 406 and "frames" in answer.json()["detail"]
