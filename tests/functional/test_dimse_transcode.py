"""C-GET and C-MOVE of compressed, big endian and deflated objects to peers that accept only uncompressed
syntaxes (PS3.4 C.4.2, C.4.3): ``lightbox serve`` converts them, pixel for pixel; a video it cannot
convert is a failed sub-operation. Peers: pynetdicom, and dcmtk's getscu, movescu and storescp."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dcmtk import require, retrieve_study, storescp
from tests.support.dicom import data_set_bytes, video_part10
from tests.support.server import RunningServer, free_port, running_server

STUDY = generate_uid()
IMAGES = [
    "JPEG2000.dcm",  # JPEG 2000
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",  # JPEG baseline, YBR_FULL_422
    "JPGLosslessP14SV1_1s_1f_8b.dcm",  # JPEG lossless (pydicom-data)
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS
    "MR_small_RLE.dcm",  # RLE
    "SC_rgb_small_odd_big_endian.dcm",  # explicit big endian
    "image_dfl.dcm",  # deflated
]


@dataclass
class Destination:
    """A pynetdicom storage SCP accepting every storage SOP class in the given transfer syntaxes."""

    ae_title: str
    syntaxes: list[str]
    port: int = field(default_factory=free_port)
    received: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # uid -> (syntax, data set)

    def start(self) -> object:
        ae = AE(ae_title=self.ae_title)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, self.syntaxes)
        handlers = [(evt.EVT_C_STORE, self._on_store)]
        return ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)

    def _on_store(self, event: evt.Event) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        self.received[uid] = (str(event.context.transfer_syntax), event.request.DataSet.getvalue())
        return 0x0000


@dataclass
class Setup:
    server: RunningServer
    images: dict[str, bytes]  # SOP Instance UID -> stored Part 10 object
    video: tuple[str, bytes]
    dcmtk_folder: Path
    explicit_only: Destination
    any_syntax: Destination


def _restamp(name: str) -> bytes:
    """A pydicom test file in the test study, under new UIDs, in its own transfer syntax."""
    path = get_testdata_file(name)
    assert path is not None, name
    ds = dcmread(path)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buf = BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def _video() -> bytes:
    return video_part10(StudyInstanceUID=STUDY)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("transcode")
    require("storescp")
    explicit_only = Destination("EXPLICITONLY", [ExplicitVRLittleEndian])
    # pynetdicom accepts in its own order of preference: the uncompressed little endian syntaxes last
    last = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    any_syntax = Destination("ANYSYNTAX", [ts for ts in ALL_TRANSFER_SYNTAXES if ts not in last] + last)
    listeners = [explicit_only.start(), any_syntax.start()]
    try:
        # storescp accepts uncompressed syntaxes only, by default
        with storescp(base / "dcmtk", ae_title="DCMTKDEST") as dcmtk_port:
            archive = build_archive(load_settings(data_dir=base / "data"))
            images = {}
            for name in IMAGES:
                blob = _restamp(name)
                images[archive.ingest.ingest([blob], "t").sop_instance_uid] = blob
            video_blob = _video()
            video = (archive.ingest.ingest([video_blob], "t").sop_instance_uid, video_blob)
            archive.manage.add_remote_ae("DCMTKDEST", "127.0.0.1", dcmtk_port)
            for destination in (explicit_only, any_syntax):
                archive.manage.add_remote_ae(destination.ae_title, "127.0.0.1", destination.port)
            archive.close()
            with running_server(base / "data", aes=["PYGETSCU", "PYMOVESCU", "GETSCU", "MOVESCU"]) as server:
                yield Setup(server, images, video, base / "dcmtk", explicit_only, any_syntax)
    finally:
        for listener in listeners:
            listener.shutdown()  # type: ignore[attr-defined]


def _study() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = STUDY
    return ds


def _sop_class(blob: bytes) -> str:
    return str(dcmread(BytesIO(blob), stop_before_pixels=True).SOPClassUID)


def _stored_syntax(blob: bytes) -> str:
    return str(dcmread(BytesIO(blob), stop_before_pixels=True).file_meta.TransferSyntaxUID)


def _assert_same_image(stored: bytes, syntax: str, data: bytes) -> None:
    """``data`` (a data set in ``syntax``) is the stored object, decoded to the same pixels."""
    original = dcmread(BytesIO(stored))
    received = read_dataset(BytesIO(data), syntax == ImplicitVRLittleEndian, True)
    received.file_meta = FileMetaDataset()
    received.file_meta.TransferSyntaxUID = UID(syntax)
    assert received.SOPInstanceUID == original.SOPInstanceUID
    assert received.PatientName == original.PatientName and received.Rows == original.Rows
    assert np.array_equal(received.pixel_array, original.pixel_array)


def _assert_files(setup: Setup, folder: Path, output: str) -> None:
    """The files a dcmtk tool wrote: every image, as stored if it took the stored syntax (dcmtk's tools take
    only uncompressed ones by default), else converted to the same pixels."""
    files = {str(dcmread(f).SOPInstanceUID): f for f in folder.iterdir()}
    assert set(files) == set(setup.images), output
    for uid, path in files.items():
        stored, data = setup.images[uid], data_set_bytes(path.read_bytes())
        syntax, stored_syntax = str(dcmread(path).file_meta.TransferSyntaxUID), _stored_syntax(stored)
        assert not (UID(stored_syntax).is_compressed and syntax == stored_syntax)
        if syntax == stored_syntax:
            assert data == data_set_bytes(stored)
        else:
            assert syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
            _assert_same_image(stored, syntax, data)


def _get(
    setup: Setup, contexts: list[tuple[str, str]]
) -> tuple[dict[str, tuple[str, bytes]], Dataset, Dataset | None]:
    """C-GET of the study by pynetdicom proposing ``contexts`` (SOP class, transfer syntax) for storage."""
    received: dict[str, tuple[str, bytes]] = {}

    def on_store(event: evt.Event) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        received[uid] = (str(event.context.transfer_syntax), event.request.DataSet.getvalue())
        return 0x0000

    ae = AE(ae_title="PYGETSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    for sop_class, syntax in contexts:
        ae.add_requested_context(sop_class, syntax)
    roles = [build_role(sop_class, scp_role=True) for sop_class in sorted({c for c, _ in contexts})]
    assoc = ae.associate(
        "127.0.0.1",
        setup.server.dicom_port,
        ae_title="LIGHTBOX",
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    responses = list(assoc.send_c_get(_study(), StudyRootQueryRetrieveInformationModelGet))
    assoc.release()
    final, identifier = responses[-1]
    return received, final, identifier


def _move(setup: Setup, destination: str) -> tuple[Dataset, Dataset | None]:
    ae = AE(ae_title="PYMOVESCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate("127.0.0.1", setup.server.dicom_port, ae_title="LIGHTBOX")
    assert assoc.is_established
    responses = list(assoc.send_c_move(_study(), destination, StudyRootQueryRetrieveInformationModelMove))
    assoc.release()
    final, identifier = responses[-1]
    return final, identifier


def _assert_only_video_failed(setup: Setup, final: Dataset, identifier: Dataset | None) -> None:
    assert final.Status == 0xB000  # sub-operations complete, one or more failures
    assert final.NumberOfCompletedSuboperations == len(setup.images)
    assert final.NumberOfFailedSuboperations == 1
    assert identifier is not None and identifier.FailedSOPInstanceUIDList == setup.video[0]


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_get_uncompressed_only(setup: Setup, syntax: str) -> None:
    classes = {_sop_class(blob) for blob in [*setup.images.values(), setup.video[1]]}
    received, final, identifier = _get(setup, [(sop_class, syntax) for sop_class in sorted(classes)])
    _assert_only_video_failed(setup, final, identifier)
    assert set(received) == set(setup.images)
    for uid, (received_syntax, data) in received.items():
        assert received_syntax == syntax
        _assert_same_image(setup.images[uid], syntax, data)


def test_get_stored_syntax_preferred_to_conversion(setup: Setup) -> None:
    everything = {setup.video[0]: setup.video[1], **setup.images}
    pairs = {(_sop_class(blob), _stored_syntax(blob)) for blob in everything.values()}
    explicit = {(sop_class, ExplicitVRLittleEndian) for sop_class, _ in pairs}
    received, final, _ = _get(setup, sorted(pairs | explicit))
    assert final.Status == 0 and final.NumberOfCompletedSuboperations == len(everything)
    assert received == {uid: (_stored_syntax(b), data_set_bytes(b)) for uid, b in everything.items()}


def test_getscu_default_proposals(setup: Setup, tmp_path: Path) -> None:
    """getscu proposes uncompressed syntaxes for storage by default: every image arrives decoded."""
    result = retrieve_study("getscu", setup.server.dicom_port, STUDY, "-od", str(tmp_path))
    # getscu leaves the final response's identifier (the failed video's UID) unread and aborts instead of
    # releasing; it still exits 0
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_files(setup, tmp_path, result.stdout + result.stderr)


def test_move_to_explicit_only_destination(setup: Setup) -> None:
    setup.explicit_only.received.clear()
    final, identifier = _move(setup, setup.explicit_only.ae_title)
    _assert_only_video_failed(setup, final, identifier)
    assert set(setup.explicit_only.received) == set(setup.images)
    for uid, (syntax, data) in setup.explicit_only.received.items():
        assert syntax == ExplicitVRLittleEndian
        _assert_same_image(setup.images[uid], syntax, data)


def test_move_to_destination_accepting_stored_syntaxes(setup: Setup) -> None:
    setup.any_syntax.received.clear()
    final, _ = _move(setup, setup.any_syntax.ae_title)
    everything = {setup.video[0]: setup.video[1], **setup.images}
    assert final.Status == 0 and final.NumberOfCompletedSuboperations == len(everything)
    expected = {uid: (_stored_syntax(b), data_set_bytes(b)) for uid, b in everything.items()}
    assert setup.any_syntax.received == expected  # sent as stored, byte for byte


def test_movescu_to_storescp(setup: Setup) -> None:
    for f in setup.dcmtk_folder.iterdir():
        f.unlink()
    result = retrieve_study("movescu", setup.server.dicom_port, STUDY, "-aem", "DCMTKDEST")
    output = result.stdout + result.stderr
    assert "SubOperationsCompleteOneOrMoreFailures" in output  # the video: movescu warns and exits non-zero
    _assert_files(setup, setup.dcmtk_folder, output)
