"""STOW-RS (PS3.18 10.5) on ``lightbox serve``: dicomweb-client and raw HTTP against the real server."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pydicom.encaps
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.errors import NotFound
from tests.support.dicom import make_dataset, part10, to_part10
from tests.support.multipart import (
    BOUNDARY,
    DICOM_MULTIPART,
    close_delimiter,
    part_head,
    related_body,
    stream_body,
)
from tests.support.server import RunningServer, running_server

# PS3.18 Table I.1-1 and PS3.18 F.2 keys
RETRIEVE_URL = "00081190"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
REFERENCED_SOP_CLASS_UID = "00081150"
REFERENCED_SOP_INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"

# Compressed and otherwise unusual syntaxes, stored as sent
SAMPLES = [
    "JPEG2000.dcm",  # JPEG 2000
    "MR_small_RLE.dcm",  # RLE lossless
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline
    "emri_small_jpeg_2k_lossless.dcm",  # JPEG 2000 lossless, multi-frame
    "image_dfl.dcm",  # deflated explicit VR little endian
]


def _client_bytes(ds: pydicom.Dataset) -> bytes:
    """The Part 10 bytes dicomweb-client sends for ``ds`` (it writes each data set with dcmwrite)."""
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds)
    return buf.getvalue()


def _sample(name: str) -> pydicom.Dataset:
    """A pydicom sample with a SOP Instance UID of its own (several samples share one)."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    return ds


def _ct(**attrs: Any) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(to_part10(make_dataset(**attrs))))


@contextlib.contextmanager
def _stored(data_dir: Path) -> Iterator[Any]:
    """The archive the server left behind, opened once the server has stopped."""
    archive = build_archive(load_settings(data_dir=data_dir))
    try:
        yield archive
    finally:
        archive.close()


def _stored_bytes(archive: Any, sop_instance_uid: str) -> bytes:
    location = archive.retrieve.instance(sop_instance_uid)
    with archive.retrieve.open(location) as f:
        data: bytes = f.read()
    return data


def _pending(data_dir: Path) -> list[Path]:
    return list((data_dir / "objects" / ".tmp").iterdir())


def _post(
    server: RunningServer, body: bytes, path: str = "/dicom-web/studies", **headers: str
) -> httpx.Response:
    headers = {"content-type": DICOM_MULTIPART, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return httpx.post(server.base_url + path, content=body, headers={**server.headers, **headers}, timeout=60)


def _uids(items: list[dict[str, Any]], key: str = REFERENCED_SOP_INSTANCE_UID) -> list[str]:
    return [item[key].get("Value", [""])[0] for item in items]


def test_dicomweb_client_stores_instances_byte_for_byte(tmp_path: Path) -> None:
    data = tmp_path / "data"
    study = generate_uid()
    cts = [_ct(StudyInstanceUID=study, InstanceNumber=n) for n in range(3)]
    samples = [_sample(name) for name in SAMPLES]
    sent = {str(ds.SOPInstanceUID): _client_bytes(ds) for ds in cts + samples}
    with running_server(data) as server:
        client = server.dicomweb()
        result = client.store_instances(cts + samples)
        assert "FailedSOPSequence" not in result
        assert [str(item.ReferencedSOPInstanceUID) for item in result.ReferencedSOPSequence] == list(sent)
        assert [str(item.ReferencedSOPClassUID) for item in result.ReferencedSOPSequence] == [
            str(ds.SOPClassUID) for ds in cts + samples
        ]
        assert result.RetrieveURL == ""  # several studies: no one study to name (type 2, empty)
        studies = f"{server.base_url}/dicom-web/studies"  # with the port, though the client's Host has none
        for item, ds in zip(result.ReferencedSOPSequence, cts + samples, strict=True):
            assert item.RetrieveURL == (
                f"{studies}/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
            )
        # Instances of one study: the study's Retrieve URL; the same objects again are stored already.
        again = client.store_instances(cts)
        assert again.RetrieveURL == f"{studies}/{study}"
        assert len(again.ReferencedSOPSequence) == 3
    with _stored(data) as archive:
        assert archive.manage.statistics().instances == len(sent)
        for uid, expected in sent.items():
            assert _stored_bytes(archive, uid) == expected, uid
    assert _pending(data) == []


def test_store_to_a_study_refuses_instances_of_another_study(tmp_path: Path) -> None:
    data = tmp_path / "data"
    study = generate_uid()
    own = _ct(StudyInstanceUID=study)
    earlier = _ct()  # stored first through POST /studies
    # Another study's instance, and an object that would replace ``earlier`` if it were not refused first.
    foreign = _ct()
    impostor = _ct(SOPInstanceUID=earlier.SOPInstanceUID, PatientName="Impostor")
    with running_server(data) as server:
        client = server.dicomweb()
        client.store_instances([earlier])
        result = client.store_instances([own, foreign, impostor], study_instance_uid=study)  # 202
        assert result.RetrieveURL == f"{server.base_url}/dicom-web/studies/{study}"
        assert [str(i.ReferencedSOPInstanceUID) for i in result.ReferencedSOPSequence] == [own.SOPInstanceUID]
        failed = result.FailedSOPSequence
        assert [str(i.ReferencedSOPInstanceUID) for i in failed] == [
            foreign.SOPInstanceUID,
            earlier.SOPInstanceUID,
        ]
        assert [i.FailureReason for i in failed] == [0xA900, 0xA900]  # A9xx (PS3.18 I.2.2)
        assert "is not the study" in server.log()
    with _stored(data) as archive:
        assert archive.manage.statistics().instances == 2
        with pytest.raises(NotFound):
            archive.retrieve.instance(foreign.SOPInstanceUID)
        assert _stored_bytes(archive, earlier.SOPInstanceUID) == _client_bytes(earlier)
    assert _pending(data) == []


def test_mixed_good_and_bad_parts_answer_202_with_both_sequences(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = make_dataset(Rows=64, Columns=64, PixelData=bytes(64 * 64 * 2))
    good_bytes = to_part10(good)
    truncated = make_dataset(Rows=64, Columns=64, PixelData=bytes(64 * 64 * 2))
    truncated_bytes = to_part10(truncated)[:-1000]  # cut in its pixel data
    no_uid = part10(SOPInstanceUID=None)
    body = (
        related_body([good_bytes, truncated_bytes, no_uid])[: -len(close_delimiter())]
        + b"\r\n"
        + part_head(content_type="text/plain")
        + b"not DICOM"
        + close_delimiter()
    )
    with running_server(data) as server:
        response = _post(server, body)
        base = server.base_url
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/dicom+json"
    doc = response.json()
    study_url = f"{base}/dicom-web/studies/{good.StudyInstanceUID}"
    assert doc[RETRIEVE_URL] == {"vr": "UR", "Value": [study_url]}
    assert doc[REFERENCED_SOP_SEQUENCE] == {
        "vr": "SQ",
        "Value": [
            {
                REFERENCED_SOP_CLASS_UID: {"vr": "UI", "Value": [good.SOPClassUID]},
                REFERENCED_SOP_INSTANCE_UID: {"vr": "UI", "Value": [good.SOPInstanceUID]},
                RETRIEVE_URL: {
                    "vr": "UR",
                    "Value": [f"{study_url}/series/{good.SeriesInstanceUID}/instances/{good.SOPInstanceUID}"],
                },
            }
        ],
    }
    failed = doc[FAILED_SOP_SEQUENCE]["Value"]
    assert _uids(failed) == [truncated.SOPInstanceUID, "", ""]
    assert _uids(failed, REFERENCED_SOP_CLASS_UID) == [truncated.SOPClassUID, good.SOPClassUID, ""]
    assert [item[FAILURE_REASON] for item in failed] == [{"vr": "US", "Value": [0xC000]}] * 3
    with _stored(data) as archive:
        assert archive.manage.statistics().instances == 1
        assert _stored_bytes(archive, good.SOPInstanceUID) == good_bytes
    assert _pending(data) == []


def test_nothing_stored_answers_409_with_the_failures(tmp_path: Path) -> None:
    data = tmp_path / "data"
    empty_part = b""
    with running_server(data) as server:
        response = _post(server, related_body([b"garbage", empty_part]), accept="application/json")
        doc = response.json()
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/json"
    assert REFERENCED_SOP_SEQUENCE not in doc
    assert doc[RETRIEVE_URL] == {"vr": "UR"}
    assert [item[FAILURE_REASON]["Value"] for item in doc[FAILED_SOP_SEQUENCE]["Value"]] == [[0xC000]] * 2
    assert _pending(data) == []


@pytest.mark.parametrize(
    ("content_type", "detail"),
    [
        ("application/dicom", "multipart/related"),
        (f"multipart/related; boundary={BOUNDARY}", "no type parameter"),
        (
            f'multipart/related; type="application/octet-stream"; boundary={BOUNDARY}',
            "application/octet-stream",
        ),
        (f'multipart/related; type="application/dicom+xml"; boundary={BOUNDARY}', "application/dicom+xml"),
        ('multipart/related; type="application/dicom"', "boundary"),
        (f"multipart/form-data; boundary={BOUNDARY}", "multipart/related"),
    ],
)
def test_unsupported_media_types_answer_415(tmp_path: Path, content_type: str, detail: str) -> None:
    with running_server(tmp_path / "data") as server:
        response = _post(server, related_body([part10()]), content_type=content_type)
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 415 and detail in problem["detail"]


def test_malformed_requests_answer_with_problems(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _ct()
    first_bytes = _client_bytes(first)
    with running_server(data) as server:
        garbage = _post(server, b"this is not a multipart body at all")
        assert garbage.status_code == 400
        assert garbage.headers["content-type"] == "application/problem+json"
        assert "no delimiter line" in garbage.json()["detail"]

        broken = _post(server, f"--{BOUNDARY}\r\nContent-Type application/dicom\r\n\r\nDICM".encode())
        assert broken.status_code == 400 and "malformed multipart body" in broken.json()["detail"]

        no_part = _post(server, close_delimiter()[2:])
        assert no_part.status_code == 400 and "no part" in no_part.json()["detail"]

        # Cut short: the complete first part is stored (and said so), the part cut off is not.
        body = related_body([first_bytes, part10()])
        cut = _post(server, body[: -len(close_delimiter()) - 100])
        assert cut.status_code == 400
        assert "close delimiter" in cut.json()["detail"]
        assert cut.json()["stored"] == [first.SOPInstanceUID]

        xml_only = _post(server, related_body([part10()]), accept="application/dicom+xml")
        assert xml_only.status_code == 406 and xml_only.json()["status"] == 406

        bad_study = _post(server, related_body([part10()]), path="/dicom-web/studies/1.2.abc")
        assert bad_study.status_code == 400 and "not a valid Study Instance UID" in bad_study.json()["detail"]
    with _stored(data) as archive:
        assert archive.manage.statistics().instances == 1
        assert _stored_bytes(archive, first.SOPInstanceUID) == first_bytes
    assert _pending(data) == []


def test_response_headers_and_accept_variants(tmp_path: Path) -> None:
    ds = make_dataset()
    with running_server(tmp_path / "data") as server:
        default = _post(server, related_body([to_part10(ds)]))
        wildcard = _post(server, related_body([to_part10(ds)]), accept="application/*;q=0.5, text/html")
        json_preferred = _post(
            server, related_body([to_part10(ds)]), accept="application/dicom+json;q=0.4, application/json"
        )
    assert default.status_code == wildcard.status_code == json_preferred.status_code == 200
    assert default.headers["content-type"] == wildcard.headers["content-type"] == "application/dicom+json"
    assert json_preferred.headers["content-type"] == "application/json"
    assert int(default.headers["content-length"]) == len(default.content)
    doc = default.json()
    assert set(doc) == {RETRIEVE_URL, REFERENCED_SOP_SEQUENCE}
    assert (
        pydicom.Dataset.from_json(doc).ReferencedSOPSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    )


def _wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_client_disconnect_mid_upload_keeps_complete_parts_and_nothing_pending(tmp_path: Path) -> None:
    data = tmp_path / "data"
    a, b = _ct(), _ct()
    big = make_dataset(Rows=1024, Columns=1024, PixelData=bytes(1024 * 1024 * 2) * 2, NumberOfFrames=2)
    body = related_body([_client_bytes(a), _client_bytes(b), to_part10(big)])
    half = len(body) - len(close_delimiter()) - 2 * 1024 * 1024  # half of the big part's pixel data
    with running_server(data) as server:
        request = (
            f"POST /dicom-web/studies HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n"
            f"Authorization: Bearer {server.token}\r\n"
            f"Content-Type: {DICOM_MULTIPART}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.http_port)) as sock:
            sock.sendall(request + body[:half])
            # The big part is being written to a pending blob when the client goes away.
            _wait_for(lambda: any(p.stat().st_size > 1 << 20 for p in _pending(data)), "the pending blob")
        _wait_for(lambda: "client disconnected" in server.log(), "the server to see the disconnect")
        _wait_for(lambda: _pending(data) == [], "the pending blob to be removed")
        assert "2 instance(s) complete before were stored" in server.log()
    with _stored(data) as archive:
        assert archive.manage.statistics().instances == 2
        assert _stored_bytes(archive, a.SOPInstanceUID) == _client_bytes(a)
        assert _stored_bytes(archive, b.SOPInstanceUID) == _client_bytes(b)
        with pytest.raises(NotFound):
            archive.retrieve.instance(big.SOPInstanceUID)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


FRAME_BYTES = 512 * 512 * 2
BIG_FRAMES = 640  # 320 MiB of pixel data


def _big_object(frames: int, digest: Any) -> Iterator[bytes]:
    """A multi-frame object made on the fly (as tests/support/big_object.py does), hashed as it goes."""
    header = to_part10(make_dataset(Rows=512, Columns=512, NumberOfFrames=frames, PixelData=None))
    # PixelData (7FE0,0010) OW with a 32-bit length, explicit VR little endian (PS3.5 7.1.2)
    pixel_header = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, frames * FRAME_BYTES)
    frame = bytes(range(256)) * (FRAME_BYTES // 256)
    for chunk in (header, pixel_header):
        digest.update(chunk)
        yield chunk
    for _ in range(frames):
        for i in range(0, FRAME_BYTES, 1 << 18):
            chunk = frame[i : i + (1 << 18)]
            digest.update(chunk)
            yield chunk


@pytest.mark.slow
def test_large_upload_streams_with_bounded_server_memory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    digest = hashlib.sha256()
    with running_server(data) as server:
        warm_up = _post(server, related_body([part10()]))  # imports and first-use allocations
        assert warm_up.status_code == 200
        pid = server.process.pid
        before = _status_kb(pid, "VmRSS")
        response = httpx.post(
            server.base_url + "/dicom-web/studies",
            content=stream_body([_big_object(BIG_FRAMES, digest)]),
            headers={**server.headers, "content-type": DICOM_MULTIPART},
            timeout=600,
        )
        peak = _status_kb(pid, "VmHWM")
    assert response.status_code == 200, response.text
    growth_mb = (peak - before) / 1024
    assert growth_mb < 100, f"resident memory grew by {growth_mb:.0f} MB"
    sop = response.json()[REFERENCED_SOP_SEQUENCE]["Value"][0][REFERENCED_SOP_INSTANCE_UID]["Value"][0]
    with _stored(data) as archive:
        location = archive.retrieve.instance(sop)
        assert location.size > BIG_FRAMES * FRAME_BYTES
        assert location.sha256 == digest.hexdigest()
        assert location.transfer_syntax_uid == ExplicitVRLittleEndian


# --- metadata and bulk data (application/dicom+json) ------------------------------------------------------
JSON_MULTIPART = f'multipart/related; type="application/dicom+json"; boundary={BOUNDARY}'


def _json_part(instances: list[dict[str, Any]]) -> bytes:
    return part_head(content_type="application/dicom+json") + json.dumps(instances).encode()


def _bulk_part(data: bytes, content_type: str = "application/octet-stream", **headers: str) -> bytes:
    return part_head(content_type=content_type, **headers) + data


def _json_body(*parts: bytes) -> bytes:
    return b"\r\n".join(parts) + close_delimiter()


def test_metadata_and_bulk_data_are_assembled_and_stored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ct = make_dataset(Rows=16, Columns=16, PixelData=bytes(range(256)) * 2)
    ct["PixelData"].VR = "OW"
    ct_doc = ct.to_json_dict(
        bulk_data_threshold=64, bulk_data_element_handler=lambda _: "https://up/ct/pixels"
    )
    assert ct_doc["7FE00010"] == {"vr": "OW", "BulkDataURI": "https://up/ct/pixels"}
    # A JPEG 2000 sample, its one frame sent as image/jp2, referenced by cid: (RFC 2392)
    j2k = _sample("JPEG2000.dcm")
    frame = next(pydicom.encaps.generate_frames(j2k.PixelData, number_of_frames=1))
    j2k_doc = j2k.to_json_dict(bulk_data_threshold=1 << 20, bulk_data_element_handler=lambda _: "")
    j2k_doc["7FE00010"] = {"vr": "OB", "BulkDataURI": "cid:frame-1@lightbox"}
    ts = j2k.file_meta.TransferSyntaxUID
    body = _json_body(
        _bulk_part(ct.PixelData, content_location="https://up/ct/pixels"),  # bulk data before its metadata
        _json_part([ct_doc, j2k_doc]),
        _bulk_part(frame, f"image/jp2; transfer-syntax={ts}", content_id="<frame-1@lightbox>"),
    )
    with running_server(data) as server:
        response = _post(server, body, content_type=JSON_MULTIPART)
    assert response.status_code == 200, response.text
    stored = _uids(response.json()[REFERENCED_SOP_SEQUENCE]["Value"])
    assert stored == [ct.SOPInstanceUID, j2k.SOPInstanceUID]
    with _stored(data) as archive:
        ct_back = pydicom.dcmread(io.BytesIO(_stored_bytes(archive, ct.SOPInstanceUID)))
        j2k_back = pydicom.dcmread(io.BytesIO(_stored_bytes(archive, j2k.SOPInstanceUID)))
    assert ct_back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ct_back.PixelData == ct.PixelData and ct_back.PatientName == ct.PatientName
    assert ct_back.file_meta.MediaStorageSOPInstanceUID == ct.SOPInstanceUID
    assert j2k_back.file_meta.TransferSyntaxUID == ts
    assert next(pydicom.encaps.generate_frames(j2k_back.PixelData, number_of_frames=1)) == frame
    assert (j2k_back.pixel_array == j2k.pixel_array).all()
    assert _pending(data) == []


def test_metadata_with_missing_bulk_data_or_another_study_fails(tmp_path: Path) -> None:
    data = tmp_path / "data"
    study = generate_uid()
    lost = make_dataset(StudyInstanceUID=study)
    lost_doc = lost.to_json_dict(bulk_data_threshold=8, bulk_data_element_handler=lambda _: "https://up/lost")
    foreign = make_dataset()
    foreign_doc = foreign.to_json_dict()
    body = _json_body(_json_part([lost_doc, foreign_doc]), part_head(content_type="text/plain") + b"note")
    with running_server(data) as server:
        response = _post(server, body, path=f"/dicom-web/studies/{study}", content_type=JSON_MULTIPART)
    assert response.status_code == 409
    failed = response.json()[FAILED_SOP_SEQUENCE]["Value"]
    assert _uids(failed) == [lost.SOPInstanceUID, foreign.SOPInstanceUID, ""]
    assert [item[FAILURE_REASON]["Value"][0] for item in failed] == [0xC000, 0xA900, 0xC000]
    with _stored(data) as archive:
        assert archive.manage.statistics().instances == 0


def test_metadata_and_bulk_data_beyond_the_limit_answer_413(tmp_path: Path) -> None:
    from lightbox.dicomweb.stow_json import MAX_HELD

    def body() -> Iterator[bytes]:
        yield _bulk_part(b"", content_location="https://up/huge")
        block = bytes(1 << 20)
        for _ in range(MAX_HELD // len(block) + 1):
            yield block
        yield close_delimiter()

    with running_server(tmp_path / "data") as server:
        response = httpx.post(
            server.base_url + "/dicom-web/studies",
            content=body(),
            headers={**server.headers, "content-type": JSON_MULTIPART},
            timeout=120,
        )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "application/dicom" in response.json()["detail"]
