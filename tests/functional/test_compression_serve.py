"""``lightbox serve`` compressing what it stores: a CT sent uncompressed is soon kept as JPEG-LS (the
default) or HTJ2K, smaller on disk, and still comes back with the very same pixels in the syntax a client
asks for: the original's (WADO-RS, C-GET) or the stored one."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.filereader import read_dataset
from pydicom.uid import ExplicitVRLittleEndian, HTJ2KLossless, JPEGLSLossless, generate_uid

from tests.contract.test_compression import ct_image
from tests.support.multipart import related_parts
from tests.support.retrieve import c_get
from tests.support.server import RunningServer, running_server


def _wait_for_syntax(server: RunningServer, sop: str, syntax: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while True:
        status, body = server.get_json(f"/api/instances/{sop}")
        assert status == 200
        if body["transfer_syntax_uid"] == syntax:
            return body
        assert time.monotonic() < deadline, f"still {body['transfer_syntax_uid']}"
        time.sleep(0.2)


def _pixels(data: bytes) -> np.ndarray:
    return pydicom.dcmread(io.BytesIO(data)).pixel_array


@pytest.mark.parametrize(("codec", "syntax"), [("jpeg-ls", JPEGLSLossless), ("htj2k", HTJ2KLossless)])
def test_stored_objects_are_compressed_and_come_back_pixel_identical(
    tmp_path: Path, codec: str, syntax: str
) -> None:
    env = {"LIGHTBOX_STORAGE_COMPRESSION": codec}
    study, series = generate_uid(), generate_uid()
    originals = {}
    for n in range(3):
        sop = generate_uid()
        originals[sop] = ct_image(
            rows=256, StudyInstanceUID=study, SeriesInstanceUID=series, SOPInstanceUID=sop, InstanceNumber=n
        )
    with running_server(tmp_path / "data", env=env, aes=["PYNETDICOM"]) as server:
        stowed = server.dicomweb().store_instances(
            [pydicom.dcmread(io.BytesIO(b)) for b in originals.values()]
        )
        assert "FailedSOPSequence" not in stowed
        for sop, original in originals.items():
            body = _wait_for_syntax(server, sop, syntax)
            assert int(str(body["size"])) < len(original) / 2  # smooth test pixels compress well
        statistics = server.get_json("/api/statistics")[1]
        assert int(str(statistics["size_bytes"])) < sum(len(b) for b in originals.values()) / 2

        sop, original = next(iter(originals.items()))
        path = f"/dicom-web/studies/{study}/series/{series}/instances/{sop}"
        as_stored = server.client().get(
            path, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
        )
        assert as_stored.status_code == 200
        [(headers, stored_bytes)] = related_parts(as_stored)
        assert f"transfer-syntax={syntax}" in headers["content-type"]
        original_syntax = (
            f'multipart/related; type="application/dicom"; transfer-syntax={ExplicitVRLittleEndian}'
        )
        as_sent = server.client().get(path, headers={"Accept": original_syntax})
        assert as_sent.status_code == 200
        [(_, sent_back)] = related_parts(as_sent)
        for data in (stored_bytes, sent_back):
            assert np.array_equal(_pixels(data), _pixels(original))
        assert pydicom.dcmread(io.BytesIO(sent_back)).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian

        identifier = pydicom.Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = study
        received, final, _ = c_get(server, identifier, [ExplicitVRLittleEndian])  # the original syntax only
        assert final.Status == 0
        assert set(received) == set(originals)
        for uid, data in received.items():
            back = read_dataset(io.BytesIO(data), False, True)  # explicit VR little endian, as asked
            back.file_meta = pydicom.dataset.FileMetaDataset()
            back.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            assert np.array_equal(back.pixel_array, _pixels(originals[uid]))
