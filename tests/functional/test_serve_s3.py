"""``lightbox serve`` keeping its objects in an S3 bucket (moto's server over HTTP): objects stored over
STOW-RS and C-STORE land in the bucket under the prefix, not on the local disk, and come back byte for byte
over WADO-RS and from the archive after a restart."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dicom import make_dataset, to_part10
from tests.support.s3 import S3Server
from tests.support.server import running_server


def _bucket_objects(s3: S3Server, bucket: str) -> dict[str, bytes]:
    client = s3.client()
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])  # type: ignore[attr-defined]
    return {
        item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()  # type: ignore[attr-defined]
        for item in listed
    }


def test_objects_live_in_the_bucket_and_come_back_identical(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    env = s3.env(bucket, prefix="site-a")
    data = tmp_path / "data"
    study = generate_uid()
    stowed = pydicom.dcmread(get_testdata_file("JPEG2000.dcm"))
    stowed.StudyInstanceUID = study
    stowed.SOPInstanceUID = stowed.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    stowed_bytes = io.BytesIO()
    pydicom.dcmwrite(stowed_bytes, stowed)
    sent = pydicom.dcmread(io.BytesIO(to_part10(make_dataset(StudyInstanceUID=study, InstanceNumber=2))))
    with running_server(data, env=env, aes=["S3TEST"]) as server:
        assert server.get_json("/api/health")[0] == 200
        result = server.dicomweb().store_instances([stowed])
        assert "FailedSOPSequence" not in result
        ae = AE(ae_title="S3TEST")
        ae.add_requested_context(CTImageStorage)
        association = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
        assert association.is_established
        assert association.send_c_store(sent).Status == 0x0000
        association.release()
        answer = server.client().get(
            f"/dicom-web/studies/{study}/series/{stowed.SeriesInstanceUID}/instances/{stowed.SOPInstanceUID}",
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
        assert answer.status_code == 200 and stowed_bytes.getvalue() in answer.content
        metadata = server.client().get(f"/dicom-web/studies/{study}/metadata")
        assert metadata.status_code == 200 and len(metadata.json()) == 2
        frame = server.client().get(
            f"/dicom-web/studies/{study}/series/{sent.SeriesInstanceUID}/instances/{sent.SOPInstanceUID}/frames/1",
            headers={"Accept": 'multipart/related; type="application/octet-stream"'},
        )
        assert frame.status_code == 200 and sent.PixelData in frame.content

    objects = _bucket_objects(s3, bucket)
    assert len(objects) == 2 and all(key.startswith("site-a/") for key in objects)
    assert hashlib.sha256(stowed_bytes.getvalue()).hexdigest() in {
        hashlib.sha256(body).hexdigest() for body in objects.values()
    }
    assert not (data / "objects").exists() or not any((data / "objects").rglob("*.dcm"))
    assert list((data / "pending").iterdir()) == []

    previous = dict(os.environ)
    os.environ.update(env)
    try:
        archive = build_archive(load_settings(data_dir=data))
    finally:
        os.environ.clear()
        os.environ.update(previous)
    try:
        location = archive.retrieve.instance(str(sent.SOPInstanceUID))
        with archive.retrieve.open(location) as f:
            stored = pydicom.dcmread(f)
        assert stored.SOPInstanceUID == sent.SOPInstanceUID and stored.PixelData == sent.PixelData
        assert archive.manage.health()["storage"] == "ok"
    finally:
        archive.close()
