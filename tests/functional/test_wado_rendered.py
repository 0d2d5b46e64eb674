"""WADO-RS rendered and thumbnail resources against ``lightbox serve``, checked by decoding with Pillow."""

from __future__ import annotations

import email
import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dicom import make_dataset, to_part10
from tests.support.server import RunningServer, running_server

STUDY, SERIES = generate_uid(), generate_uid()
ROWS, COLUMNS = 48, 64


def _ct(number: int) -> bytes:
    """A 16-bit CT slice: a horizontal ramp from -1000 to +1000 HU, with a default lung window."""
    ramp = np.linspace(0, 2000, COLUMNS).astype(np.uint16)  # stored values; HU = value - 1000
    pixels = np.tile(ramp, (ROWS, 1))
    ds = make_dataset(
        StudyInstanceUID=STUDY,
        SeriesInstanceUID=SERIES,
        InstanceNumber=number,
        Rows=ROWS,
        Columns=COLUMNS,
        BitsAllocated=16,
        BitsStored=16,
        HighBit=15,
        PixelRepresentation=0,
        RescaleIntercept=-1000,
        RescaleSlope=1,
        WindowCenter=-600,
        WindowWidth=1500,
        PixelData=pixels.tobytes(),
    )
    return to_part10(ds)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, list[str]]]:
    data = tmp_path_factory.mktemp("rendered") / "data"
    archive = build_archive(load_settings(data_dir=data))
    uids = [archive.ingest.ingest([_ct(n)], "t").sop_instance_uid for n in (1, 2, 3)]
    archive.close()
    with running_server(data) as running:
        yield running, uids


def _image(answer: httpx.Response) -> np.ndarray:
    assert answer.status_code == 200, answer.text
    return np.asarray(Image.open(io.BytesIO(answer.content)))


def test_instance_rendered_in_its_window_and_in_another(server: tuple[RunningServer, list[str]]) -> None:
    running, uids = server
    url = f"{running.base_url}/dicom-web/studies/{STUDY}/series/{SERIES}/instances/{uids[0]}/rendered"
    default = httpx.get(url, headers=running.headers)
    assert default.headers["content-type"] == "image/jpeg"
    lung = _image(default)
    assert lung.shape == (ROWS, COLUMNS)
    bone = _image(httpx.get(url, params={"window": "500,1000"}, headers=running.headers))
    # PS3.3 C.11.2.1.2.1 (LINEAR), JPEG allowing a few levels either way
    hounsfield = np.linspace(0, 2000, COLUMNS) - 1000
    for image, (center, width) in ((lung, (-600, 1500)), (bone, (500, 1000))):
        expected = np.clip((hounsfield - (center - 0.5)) / (width - 1) + 0.5, 0, 1) * 255
        assert np.abs(image[ROWS // 2].astype(float) - expected).max() < 12
    assert not np.array_equal(lung, bone)
    png = httpx.get(url, headers={**running.headers, "Accept": "image/png"}, params={"viewport": "32,32"})
    assert png.headers["content-type"] == "image/png"
    assert _image(png).shape == (24, 32)  # scaled to fit, aspect ratio kept


def test_series_rendered_and_frame_list(server: tuple[RunningServer, list[str]]) -> None:
    running, uids = server
    answer = httpx.get(
        f"{running.base_url}/dicom-web/studies/{STUDY}/series/{SERIES}/rendered", headers=running.headers
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith('multipart/related; type="image/jpeg"')
    message = email.message_from_bytes(
        b"Content-Type: " + answer.headers["content-type"].encode() + b"\r\n\r\n" + answer.content
    )
    parts = [part.get_payload(decode=True) for part in message.get_payload()]
    assert len(parts) == len(uids)
    assert all(Image.open(io.BytesIO(p)).size == (COLUMNS, ROWS) for p in parts)
    one = httpx.get(
        f"{running.base_url}/dicom-web/studies/{STUDY}/series/{SERIES}/instances/{uids[1]}/frames/1/rendered",
        headers=running.headers,
    )
    assert _image(one).shape == (ROWS, COLUMNS)


def test_thumbnails_are_small(server: tuple[RunningServer, list[str]]) -> None:
    running, uids = server
    base = f"{running.base_url}/dicom-web/studies/{STUDY}"
    for url in (
        f"{base}/thumbnail",
        f"{base}/series/{SERIES}/thumbnail",
        f"{base}/series/{SERIES}/instances/{uids[2]}/thumbnail",
    ):
        thumbnail = _image(httpx.get(url, headers=running.headers))
        assert max(thumbnail.shape) == 128 and thumbnail.shape == (96, 128)


def test_bad_requests(server: tuple[RunningServer, list[str]]) -> None:
    running, uids = server
    url = f"{running.base_url}/dicom-web/studies/{STUDY}/series/{SERIES}/instances/{uids[0]}/rendered"
    for params in (
        {"window": "40"},
        {"window": "40,0"},
        {"window": "40,400,cubic"},
        {"viewport": "0,10"},
        {"quality": "101"},
    ):
        answer = httpx.get(url, params=params, headers=running.headers)
        assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json"
    assert httpx.get(url, headers={**running.headers, "Accept": "text/html"}).status_code == 406
    missing = httpx.get(
        f"{running.base_url}/dicom-web/studies/{generate_uid()}/rendered", headers=running.headers
    )
    assert missing.status_code == 404
