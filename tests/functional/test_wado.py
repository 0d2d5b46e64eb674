"""WADO-RS retrieve and WADO-URI against ``lightbox serve`` (PS3.18 10.4, 9): dicomweb-client and raw
HTTP. Objects come back byte for byte as stored when asked so, decoded to the same pixels in explicit VR
little endian by default, frames as stored or decoded; errors are problem+json."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.uid import (
    UID,
    BasicTextSRStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.services.transcode import COMPRESSED_TARGETS, DEFLATED
from tests.support.dicom import make_dataset, to_part10, video_part10
from tests.support.multipart import related_parts
from tests.support.server import RunningServer, running_server

STUDY, CT_SERIES, OTHER_STUDY = generate_uid(), generate_uid(), generate_uid()
COMPRESSED = [
    "JPEG2000.dcm",  # JPEG 2000, one frame
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, YBR_FULL: decodes to RGB
    "MR_small_RLE.dcm",  # RLE lossless
    "emri_small_jpeg_2k_lossless.dcm",  # JPEG 2000 lossless, 10 frames
]
NATIVE = ["emri_small.dcm"]  # explicit VR little endian, 10 frames
DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@dataclass(frozen=True)
class Stored:
    study: str
    series: str
    instance: str
    blob: bytes

    @property
    def syntax(self) -> str:
        return str(dcmread(io.BytesIO(self.blob), stop_before_pixels=True).file_meta.TransferSyntaxUID)

    def dataset(self) -> Dataset:
        return dcmread(io.BytesIO(self.blob))


@dataclass
class Setup:
    server: RunningServer
    objects: dict[str, Stored]  # name -> stored object

    @property
    def client(self) -> DICOMwebClient:
        return self.server.dicomweb()

    def http(self) -> httpx.Client:
        return self.server.client(timeout=60)

    def url(self, name: str) -> str:
        o = self.objects[name]
        return f"/dicom-web/studies/{o.study}/series/{o.series}/instances/{o.instance}"


def _restamp(name: str, study: str = STUDY) -> bytes:
    """A pydicom test file under new UIDs in ``study``, in its own transfer syntax."""
    path = get_testdata_file(name)
    assert path is not None, name
    ds = dcmread(path)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def _objects() -> dict[str, bytes]:
    blobs = {
        f"ct{n}": to_part10(
            make_dataset(StudyInstanceUID=STUDY, SeriesInstanceUID=CT_SERIES, InstanceNumber=n)
        )
        for n in (1, 2, 3)
    }
    implicit = make_dataset(StudyInstanceUID=STUDY, InstanceNumber=4)
    blobs["implicit"] = to_part10(implicit, ImplicitVRLittleEndian)
    image_pixel = ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation")
    no_pixels = {keyword: None for keyword in (*image_pixel, "SamplesPerPixel", "PhotometricInterpretation")}
    blobs["no-pixels"] = to_part10(
        make_dataset(StudyInstanceUID=STUDY, SOPClassUID=BasicTextSRStorage, PixelData=None, **no_pixels)
    )
    # A CT with a known window: rendering is checked against it
    ramp = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 1000
    windowed = make_dataset(
        StudyInstanceUID=STUDY,
        Rows=64,
        Columns=48,
        PixelData=ramp[:, :48].tobytes(),
        WindowCenter=500,
        WindowWidth=400,
        RescaleSlope=1,
        RescaleIntercept=0,
    )
    blobs["windowed"] = to_part10(windowed)
    for name in COMPRESSED + NATIVE:
        blobs[name] = _restamp(name)
    blobs["video"] = video_part10(StudyInstanceUID=OTHER_STUDY)
    return blobs


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    data = tmp_path_factory.mktemp("wado") / "data"
    archive = build_archive(load_settings(data_dir=data))
    objects = {}
    for name, blob in _objects().items():
        result = archive.ingest.ingest([blob], "test")
        ds = dcmread(io.BytesIO(blob), stop_before_pixels=True)
        objects[name] = Stored(ds.StudyInstanceUID, ds.SeriesInstanceUID, result.sop_instance_uid, blob)
    archive.close()
    with running_server(data) as server:
        yield Setup(server, objects)


# --- a strict multipart/related reader (RFC 2046 5.1) ----------------------------------------------------


def _syntax_label(headers: dict[str, str]) -> str:
    match = re.search(r"transfer-syntax=([0-9.]+)", headers["content-type"])
    assert match, headers
    return match.group(1)


def _assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


def _assert_same_pixels(received: Dataset, stored: Stored) -> None:
    original = stored.dataset()
    assert received.SOPInstanceUID == original.SOPInstanceUID
    assert received.PatientName == original.PatientName
    assert np.array_equal(received.pixel_array, original.pixel_array)


# --- studies, series, instances ---------------------------------------------------------------------


def test_study_as_stored_is_byte_identical(setup: Setup) -> None:
    with setup.http() as http:
        response = http.get(f"/dicom-web/studies/{STUDY}", headers={"Accept": DICOM_ANY})
    assert response.status_code == 200
    assert 'type="application/dicom"' in response.headers["content-type"]
    parts = related_parts(response)
    in_study = {name: o for name, o in setup.objects.items() if o.study == STUDY}
    assert len(parts) == len(in_study)
    received = {
        str(dcmread(io.BytesIO(body), stop_before_pixels=True).SOPInstanceUID): (h, body) for h, body in parts
    }
    for name, stored in in_study.items():
        headers, body = received[stored.instance]
        assert headers["content-type"].startswith("application/dicom;")
        if name == "implicit":  # PS3.18 8.7.3: never implicit VR on the web, even for "*"
            assert _syntax_label(headers) == ExplicitVRLittleEndian
            converted = dcmread(io.BytesIO(body))
            assert converted.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
            _assert_same_pixels(converted, stored)
        else:
            assert _syntax_label(headers) == stored.syntax, name
            assert body == stored.blob, name


def test_client_retrieves_study_as_stored(setup: Setup) -> None:
    datasets = setup.client.retrieve_study(STUDY, media_types=(("application/dicom", "*"),))
    by_uid = {str(ds.SOPInstanceUID): ds for ds in datasets}
    for name in COMPRESSED:
        stored = setup.objects[name]
        ds = by_uid[stored.instance]
        assert ds.file_meta.TransferSyntaxUID == stored.syntax
        _assert_same_pixels(ds, stored)


@pytest.mark.parametrize("name", COMPRESSED)
def test_default_is_explicit_vr_little_endian_with_the_same_pixels(setup: Setup, name: str) -> None:
    """PS3.18 8.7.3.4: no transfer-syntax parameter means explicit VR little endian: decompressed."""
    stored = setup.objects[name]
    series = setup.client.retrieve_series(stored.study, stored.series)
    assert len(series) == 1
    assert series[0].file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    _assert_same_pixels(series[0], stored)


@pytest.mark.parametrize("name", COMPRESSED)
def test_instance_in_explicit_vr_little_endian(setup: Setup, name: str) -> None:
    stored = setup.objects[name]
    ds = setup.client.retrieve_instance(
        stored.study,
        stored.series,
        stored.instance,
        media_types=(("application/dicom", ExplicitVRLittleEndian),),
    )
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert not UID(ds.file_meta.TransferSyntaxUID).is_compressed
    _assert_same_pixels(ds, stored)


@pytest.mark.parametrize("name", COMPRESSED)
def test_instance_in_its_stored_compressed_syntax(setup: Setup, name: str) -> None:
    stored = setup.objects[name]
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={stored.syntax}'
    with setup.http() as http:
        response = http.get(setup.url(name), headers={"Accept": accept})
    assert response.status_code == 200
    [(headers, body)] = related_parts(response)
    assert headers["content-type"] == f"application/dicom; transfer-syntax={stored.syntax}"
    assert body == stored.blob


def test_series_of_uncompressed_instances(setup: Setup) -> None:
    datasets = setup.client.retrieve_series(STUDY, CT_SERIES)
    stored = {setup.objects[f"ct{n}"].instance: setup.objects[f"ct{n}"] for n in (1, 2, 3)}
    assert {str(ds.SOPInstanceUID) for ds in datasets} == set(stored)
    for ds in datasets:
        _assert_same_pixels(ds, stored[str(ds.SOPInstanceUID)])


def test_single_part_application_dicom_for_an_instance(setup: Setup) -> None:
    """PS3.18 10.4.4: a bare application/dicom may answer an Instance resource."""
    with setup.http() as http:
        response = http.get(setup.url("ct1"), headers={"Accept": "application/dicom; transfer-syntax=*"})
    assert response.status_code == 200
    assert response.headers["content-type"] == f"application/dicom; transfer-syntax={ExplicitVRLittleEndian}"
    assert response.content == setup.objects["ct1"].blob


def test_syntax_without_encoder_is_not_acceptable(setup: Setup) -> None:
    """JPEG baseline is lossy and has no encoder here: for an uncompressed object it is 406."""
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={JPEGBaseline8Bit}'
    with setup.http() as http:
        _assert_problem(http.get(setup.url("ct1"), headers={"Accept": accept}), 406)
        _assert_problem(
            http.get(f"/dicom-web/studies/{STUDY}/series/{CT_SERIES}", headers={"Accept": accept}), 406
        )


def test_study_with_some_instances_unacceptable_is_partial(setup: Setup) -> None:
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={JPEGBaseline8Bit}'
    with setup.http() as http:
        response = http.get(f"/dicom-web/studies/{STUDY}", headers={"Accept": accept})
    assert response.status_code == 206
    assert response.headers["warning"].startswith("299 ")
    [(headers, body)] = related_parts(response)
    assert _syntax_label(headers) == JPEGBaseline8Bit
    assert body == setup.objects["SC_rgb_jpeg_dcmtk.dcm"].blob


@pytest.mark.parametrize("target", [*COMPRESSED_TARGETS, DEFLATED])
@pytest.mark.parametrize("name", ["emri_small.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm"])
def test_compressed_losslessly_on_request(setup: Setup, name: str, target: str) -> None:
    """PS3.18 8.7.3.5.2: a lossless syntax named in Accept is given, re-encoded, pixels unchanged."""
    stored = setup.objects[name]
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={target}'
    with setup.http() as http:
        response = http.get(
            f"/dicom-web/studies/{stored.study}/series/{stored.series}", headers={"Accept": accept}
        )
    assert response.status_code == 200, response.text
    [(headers, body)] = related_parts(response)
    assert _syntax_label(headers) == target
    received = dcmread(io.BytesIO(body))
    assert received.file_meta.TransferSyntaxUID == target
    _assert_same_pixels(received, stored)


def test_compressed_instance_with_dicomweb_client(setup: Setup) -> None:
    stored = setup.objects["windowed"]
    ds = setup.client.retrieve_instance(
        stored.study, stored.series, stored.instance, media_types=(("application/dicom", JPEGLSLossless),)
    )
    assert ds.file_meta.TransferSyntaxUID == JPEGLSLossless
    _assert_same_pixels(ds, stored)


def test_encoder_refusal_falls_back_to_the_next_acceptable_syntax(setup: Setup) -> None:
    """OpenJPEG encodes nothing as small as 4 x 4 pixels: the next acceptable syntax is given, and with
    none left, 406 (nothing of the object was sent)."""
    j2k_only = f'multipart/related; type="application/dicom"; transfer-syntax={JPEG2000Lossless}'
    j2k_or_explicit = f"{j2k_only}, {j2k_only.replace(JPEG2000Lossless, ExplicitVRLittleEndian)}; q=0.5"
    with setup.http() as http:
        [(headers, body)] = related_parts(http.get(setup.url("ct1"), headers={"Accept": j2k_or_explicit}))
        assert _syntax_label(headers) == ExplicitVRLittleEndian
        assert body == setup.objects["ct1"].blob
        _assert_problem(http.get(setup.url("ct1"), headers={"Accept": j2k_only}), 406)
        series = f"/dicom-web/studies/{STUDY}/series/{CT_SERIES}"
        _assert_problem(http.get(series, headers={"Accept": j2k_only}), 406)


def test_q_values_rank_the_transfer_syntaxes(setup: Setup) -> None:
    j2k = setup.objects["emri_small_jpeg_2k_lossless.dcm"]
    prefer_stored = (
        f'multipart/related; type="application/dicom"; transfer-syntax={ExplicitVRLittleEndian}; q=0.4, '
        f'multipart/related; type="application/dicom"; transfer-syntax={JPEG2000Lossless}; q=0.9'
    )
    prefer_explicit = (
        f'multipart/related; type="application/dicom"; transfer-syntax={JPEG2000Lossless}; q=0.3, '
        f'multipart/related; type="application/dicom"; transfer-syntax={ExplicitVRLittleEndian}'
    )
    refused = (
        f'multipart/related; type="application/dicom"; transfer-syntax={JPEG2000Lossless}; q=0, '
        f'multipart/related; type="application/dicom"; transfer-syntax={ExplicitVRLittleEndian}; q=0.1'
    )
    with setup.http() as http:
        url = f"/dicom-web/studies/{j2k.study}/series/{j2k.series}"
        [(headers, body)] = related_parts(http.get(url, headers={"Accept": prefer_stored}))
        assert _syntax_label(headers) == JPEG2000Lossless and body == j2k.blob
        for accept in (prefer_explicit, refused):
            [(headers, body)] = related_parts(http.get(url, headers={"Accept": accept}))
            assert _syntax_label(headers) == ExplicitVRLittleEndian
            _assert_same_pixels(dcmread(io.BytesIO(body)), j2k)


def test_lossy_object_without_decoder_goes_as_stored_by_default(setup: Setup) -> None:
    """PS3.18 8.7.3.4: lossy pixel data the server cannot decompress may go in its stored syntax."""
    video = setup.objects["video"]
    with setup.http() as http:
        response = http.get(f"/dicom-web/studies/{OTHER_STUDY}")
        [(headers, body)] = related_parts(response)
        assert _syntax_label(headers) == video.syntax and body == video.blob
        explicit = f'multipart/related; type="application/dicom"; transfer-syntax={ExplicitVRLittleEndian}'
        _assert_problem(http.get(f"/dicom-web/studies/{OTHER_STUDY}", headers={"Accept": explicit}), 406)


def test_part_labels_match_therelated_parts(setup: Setup) -> None:
    with setup.http() as http:
        response = http.get(f"/dicom-web/studies/{STUDY}")
    for headers, body in related_parts(response):
        meta = dcmread(io.BytesIO(body), stop_before_pixels=True).file_meta
        assert _syntax_label(headers) == meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_errors_are_problem_documents(setup: Setup) -> None:
    ct = setup.objects["ct1"]
    with setup.http() as http:
        _assert_problem(http.get(f"/dicom-web/studies/{generate_uid()}"), 404)
        _assert_problem(http.get(f"/dicom-web/studies/{STUDY}/series/{generate_uid()}"), 404)
        _assert_problem(
            http.get(f"/dicom-web/studies/{STUDY}/series/{ct.series}/instances/{generate_uid()}"), 404
        )
        # an instance asked for under another study is not found there
        _assert_problem(
            http.get(f"/dicom-web/studies/{OTHER_STUDY}/series/{ct.series}/instances/{ct.instance}"), 404
        )
        _assert_problem(http.get("/dicom-web/studies/1.2.abc"), 400)
        _assert_problem(http.get(f"/dicom-web/studies/{STUDY}/series/01.2"), 400)
        bad_syntax = 'multipart/related; type="application/dicom"; transfer-syntax=jpeg'
        _assert_problem(http.get(setup.url("ct1"), headers={"Accept": bad_syntax}), 400)
        _assert_problem(http.get(setup.url("ct1"), headers={"Accept": "application/json"}), 406)


# --- frames ---------------------------------------------------------------------------------------


def test_native_frames_are_the_stored_bytes(setup: Setup) -> None:
    stored = setup.objects["emri_small.dcm"]
    ds = stored.dataset()
    frame_size = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
    frames = setup.client.retrieve_instance_frames(
        stored.study, stored.series, stored.instance, [1, 3, 10], media_types=("application/octet-stream",)
    )
    assert frames == [ds.PixelData[(n - 1) * frame_size : n * frame_size] for n in (1, 3, 10)]


def test_compressed_frames_as_stored(setup: Setup) -> None:
    stored = setup.objects["emri_small_jpeg_2k_lossless.dcm"]
    ds = stored.dataset()
    frames = setup.client.retrieve_instance_frames(
        stored.study, stored.series, stored.instance, [2, 7], media_types=(("image/jp2", JPEG2000Lossless),)
    )
    assert frames == [get_frame(ds.PixelData, n - 1, number_of_frames=ds.NumberOfFrames) for n in (2, 7)]


@pytest.mark.parametrize("name", COMPRESSED)
def test_compressed_frames_decoded_for_octet_stream(setup: Setup, name: str) -> None:
    """A client that takes only uncompressed frames gets them decoded, as pydicom decodes them."""
    stored = setup.objects[name]
    ds = stored.dataset()
    count = int(ds.get("NumberOfFrames") or 1)
    numbers = [1, count] if count > 1 else [1]
    frames = setup.client.retrieve_instance_frames(
        stored.study, stored.series, stored.instance, numbers, media_types=("application/octet-stream",)
    )
    pixels = ds.pixel_array if count > 1 else ds.pixel_array[np.newaxis]
    assert frames == [pixels[n - 1].tobytes() for n in numbers]


def test_frame_parts_are_labelled(setup: Setup) -> None:
    jpeg = setup.objects["SC_rgb_jpeg_dcmtk.dcm"]
    with setup.http() as http:
        response = http.get(
            setup.url("SC_rgb_jpeg_dcmtk.dcm") + "/frames/1",
            headers={"Accept": 'multipart/related; type="image/jpeg"'},
        )
        assert response.status_code == 200
        assert 'type="image/jpeg"' in response.headers["content-type"]
        [(headers, body)] = related_parts(response)
        assert headers["content-type"] == f"image/jpeg; transfer-syntax={jpeg.syntax}"
        assert Image.open(io.BytesIO(body)).size == (100, 100)  # the JPEG codestream itself

        # dicomweb-client's default (type="*/*"): uncompressed frames, labelled so
        response = http.get(
            setup.url("emri_small.dcm") + "/frames/2", headers={"Accept": 'multipart/related; type="*/*"'}
        )
        [(headers, body)] = related_parts(response)
        assert (
            headers["content-type"] == f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
        )
        assert len(body) == 64 * 64 * 2

        # any syntax: the stored frames
        response = http.get(
            setup.url("MR_small_RLE.dcm") + "/frames/1",
            headers={"Accept": 'multipart/related; type="*/*"; transfer-syntax=*'},
        )
        [(headers, body)] = related_parts(response)
        assert headers["content-type"] == "image/dicom-rle; transfer-syntax=1.2.840.10008.1.2.5"
        rle = setup.objects["MR_small_RLE.dcm"].dataset()
        assert body == get_frame(rle.PixelData, 0)


@pytest.mark.parametrize("name", [*COMPRESSED, *NATIVE])
def test_frames_of_any_syntax_as_the_viewer_asks_for_them(setup: Setup, name: str) -> None:
    """OHIF asks for octet-stream frames of any syntax: compressed ones come as stored, each part labelled
    with its syntax (the viewer decodes them by that label); native ones in explicit VR little endian."""
    stored = setup.objects[name]
    ds = stored.dataset()
    with setup.http() as http:
        response = http.get(
            setup.url(name) + "/frames/1",
            headers={"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"},
        )
    assert response.status_code == 200, response.text
    [(headers, body)] = related_parts(response)
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        assert headers["content-type"] == f"application/octet-stream; transfer-syntax={stored.syntax}"
        assert body == get_frame(ds.PixelData, 0, number_of_frames=int(ds.get("NumberOfFrames") or 1))
    else:
        assert (
            headers["content-type"] == f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
        )
        assert body == (ds.pixel_array[0] if "NumberOfFrames" in ds else ds.pixel_array).tobytes()


def test_frame_errors(setup: Setup) -> None:
    with setup.http() as http:
        url = setup.url("emri_small.dcm")
        _assert_problem(http.get(url + "/frames/11"), 404)  # 10 frames
        _assert_problem(http.get(url + "/frames/1,12"), 404)
        _assert_problem(http.get(url + "/frames/0"), 400)
        _assert_problem(http.get(url + "/frames/1,a"), 400)
        _assert_problem(http.get(setup.url("no-pixels") + "/frames/1"), 404)
        jpeg = 'multipart/related; type="image/jpeg"'
        _assert_problem(http.get(url + "/frames/1", headers={"Accept": jpeg}), 406)  # no JPEG encoder
        jp2 = 'multipart/related; type="image/jp2"'
        tiny = setup.url("ct1") + "/frames/1"  # 4 x 4: too small for OpenJPEG
        _assert_problem(http.get(tiny, headers={"Accept": jp2}), 406)
        ybr = setup.url("SC_rgb_jpeg_dcmtk.dcm") + "/frames/1"  # decoding would make it RGB
        _assert_problem(http.get(ybr, headers={"Accept": jp2}), 406)


FRAME_ENCODINGS = [
    ("image/jp2", JPEG2000Lossless),
    ("image/jls", JPEGLSLossless),
    ("image/dicom-rle", RLELossless),
]
FRAME_SOURCES = {
    "emri_small.dcm": None,
    "MR_small_RLE.dcm": RLELossless,
    "emri_small_jpeg_2k_lossless.dcm": JPEG2000Lossless,
}


@pytest.mark.parametrize(
    ("name", "media_type", "syntax"),
    [
        (name, media_type, syntax)
        for name, stored in FRAME_SOURCES.items()
        for media_type, syntax in FRAME_ENCODINGS
        if stored != syntax  # stored in it: test_compressed_frames_as_stored
    ],
)
def test_frames_encoded_for_an_image_media_type(
    setup: Setup, name: str, media_type: str, syntax: str
) -> None:
    """Frames not stored in the type asked for are re-encoded losslessly, one at a time."""
    stored = setup.objects[name]
    assert stored.syntax != syntax
    original = stored.dataset()
    numbers = [1, original.get("NumberOfFrames", 1)]
    frames = setup.client.retrieve_instance_frames(
        stored.study, stored.series, stored.instance, numbers, media_types=((media_type, syntax),)
    )
    assert len(frames) == 2
    for number, frame in zip(numbers, frames, strict=True):
        ds = original.copy()
        ds.file_meta = original.file_meta.copy()
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData, ds.NumberOfFrames = encapsulate([frame]), 1
        ds["PixelData"].VR = "OB"
        expected = original.pixel_array
        expected = expected[number - 1] if original.get("NumberOfFrames", 1) > 1 else expected
        assert np.array_equal(ds.pixel_array, expected)


# --- WADO-URI ---------------------------------------------------------------------------------------


def _wado(setup: Setup, name: str, **params: str) -> httpx.Response:
    o = setup.objects[name]
    query = {
        "requestType": "WADO",
        "studyUID": o.study,
        "seriesUID": o.series,
        "objectUID": o.instance,
        **params,
    }
    with setup.http() as http:
        return http.get("/wado", params=query)


def test_wado_uri_application_dicom_is_byte_identical(setup: Setup) -> None:
    response = _wado(setup, "ct2", contentType="application/dicom")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom"  # no parameters in URI (PS3.18 8.7.3.5.2)
    assert response.content == setup.objects["ct2"].blob
    j2k = setup.objects["JPEG2000.dcm"]
    response = _wado(setup, "JPEG2000.dcm", contentType="application/dicom", transferSyntax=j2k.syntax)
    assert response.content == j2k.blob


def test_wado_uri_converts_to_explicit_by_default(setup: Setup) -> None:
    response = _wado(setup, "MR_small_RLE.dcm", contentType="application/dicom")
    ds = dcmread(io.BytesIO(response.content))
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    _assert_same_pixels(ds, setup.objects["MR_small_RLE.dcm"])


def test_wado_uri_compresses_on_request(setup: Setup) -> None:
    response = _wado(setup, "ct1", contentType="application/dicom", transferSyntax=RLELossless)
    assert response.status_code == 200
    ds = dcmread(io.BytesIO(response.content))
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    _assert_same_pixels(ds, setup.objects["ct1"])


@pytest.mark.parametrize(
    "name", ["ct1", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm", "emri_small_jpeg_2k_lossless.dcm"]
)
def test_wado_uri_renders_jpeg_by_default(setup: Setup, name: str) -> None:
    response = _wado(setup, name)  # no contentType: image/jpeg (PS3.18 9.3)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    ds = setup.objects[name].dataset()
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG"
    assert image.size == (ds.Columns, ds.Rows)
    assert image.mode == ("RGB" if ds.SamplesPerPixel == 3 else "L")


def test_wado_uri_rendering_follows_the_window(setup: Setup) -> None:
    """The object's window (center 500, width 400) maps 300 and below to black, 700 and above to white."""
    ds = setup.objects["windowed"].dataset()
    stored = ds.pixel_array.astype(float)
    shown = np.asarray(Image.open(io.BytesIO(_wado(setup, "windowed").content)), dtype=float)
    expected = np.clip((stored - 499.5) / 399 + 0.5, 0, 1) * 255
    assert np.abs(shown - expected).mean() < 4  # JPEG is lossy; a wrong window is off by far more
    wide = np.asarray(
        Image.open(io.BytesIO(_wado(setup, "windowed", windowCenter="500", windowWidth="1000").content)),
        dtype=float,
    )
    expected_wide = np.clip((stored - 499.5) / 999 + 0.5, 0, 1) * 255
    assert np.abs(wide - expected_wide).mean() < 4


def test_wado_uri_accept_header_and_frame_number(setup: Setup) -> None:
    o = setup.objects["emri_small.dcm"]
    query = {"requestType": "WADO", "studyUID": o.study, "seriesUID": o.series, "objectUID": o.instance}
    with setup.http() as http:
        response = http.get("/wado", params=query, headers={"Accept": "application/dicom"})
        assert response.headers["content-type"] == "application/dicom" and response.content == o.blob
        response = http.get("/wado", params={**query, "frameNumber": "10"})
        assert response.status_code == 200 and Image.open(io.BytesIO(response.content)).size == (64, 64)


def test_wado_uri_errors(setup: Setup) -> None:
    _assert_problem(_wado(setup, "ct1", anonymize="yes"), 400)
    _assert_problem(_wado(setup, "ct1", requestType="WADOX"), 400)
    _assert_problem(_wado(setup, "ct1", objectUID=generate_uid()), 404)
    _assert_problem(_wado(setup, "ct1", seriesUID=generate_uid()), 404)
    _assert_problem(_wado(setup, "ct1", studyUID="1.2.x"), 400)
    _assert_problem(_wado(setup, "ct1", contentType="image/png"), 406)
    _assert_problem(
        _wado(setup, "ct1", contentType="application/dicom", transferSyntax=JPEGBaseline8Bit), 406
    )
    _assert_problem(  # an encoder refusing a 4 x 4 image
        _wado(setup, "ct1", contentType="application/dicom", transferSyntax=JPEG2000Lossless), 406
    )
    _assert_problem(_wado(setup, "ct1", contentType="application/dicom", transferSyntax="x.1"), 400)
    _assert_problem(_wado(setup, "ct1", contentType="application/dicom", frameNumber="1"), 400)
    _assert_problem(_wado(setup, "ct1", transferSyntax=ExplicitVRLittleEndian), 400)  # with image/jpeg
    _assert_problem(_wado(setup, "ct1", frameNumber="2"), 400)  # one frame only (PS3.18 9.5.2)
    _assert_problem(_wado(setup, "ct1", windowCenter="40"), 400)
    _assert_problem(_wado(setup, "no-pixels"), 406)
    with setup.server.client() as http:
        _assert_problem(http.get("/wado", params={"requestType": "WADO"}), 400)


# --- memory ---------------------------------------------------------------------------------------


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


@pytest.mark.slow
def test_a_300_mb_series_streams_in_bounded_memory(tmp_path: Path) -> None:
    """Twelve 26 MB multi-frame objects in one series: the server's resident memory grows by far less than
    the series while it goes out, as stored and (the same bytes) by default."""
    data = tmp_path / "data"
    study, series = generate_uid(), generate_uid()
    archive = build_archive(load_settings(data_dir=data))
    frames = 50
    total = 0
    for n in range(12):
        pixels = np.full(512 * 512 * frames, n, dtype=np.uint16).tobytes()
        ds = make_dataset(
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            InstanceNumber=n + 1,
            Rows=512,
            Columns=512,
            NumberOfFrames=frames,
            PixelData=pixels,
        )
        blob = to_part10(ds)
        total += len(blob)
        archive.ingest.ingest([blob], "test")
        del blob, pixels, ds
    archive.close()
    assert total > 300 * 10**6
    with running_server(data) as server:
        url = f"{server.base_url}/dicom-web/studies/{study}/series/{series}"
        with server.client(timeout=300) as http:
            with http.stream("GET", url) as response:  # warm up: the code paths loaded, then hang up
                next(response.iter_bytes())
            sampler = _RssSampler(server.process.pid)
            with sampler:
                for accept in (DICOM_ANY, 'multipart/related; type="application/dicom"'):
                    received, tail = 0, b""
                    with http.stream("GET", url, headers={"Accept": accept}) as response:
                        assert response.status_code == 200
                        for chunk in response.iter_bytes():
                            received += len(chunk)
                            tail = (tail + chunk)[-64:]
                    assert received > total and tail.endswith(b"--\r\n")
    growth_mb = sampler.growth_kb / 1024
    assert growth_mb < 100, f"resident memory grew by {growth_mb:.0f} MB sending {total / 1e6:.0f} MB twice"


class _RssSampler:
    """The server's resident memory, sampled every 10 ms while in the ``with`` block: its growth."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.growth_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.growth_kb = max(self.growth_kb, _status_kb(self.pid, "VmRSS") - self.before)

    def __enter__(self) -> _RssSampler:
        self.before = _status_kb(self.pid, "VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
