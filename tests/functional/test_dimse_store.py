"""``lightbox serve`` as a C-ECHO and C-STORE SCP, against dcmtk's echoscu and storescu."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import time
from pathlib import Path

import data_store
import pydicom
import pydicom.data
import pydicom.encaps

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.dcmtk import ENV, require
from tests.support.dicom import data_set_bytes
from tests.support.server import running_server

SAMPLES = Path(os.path.dirname(pydicom.data.__file__)) / "test_files"
MORE_SAMPLES = Path(os.path.dirname(data_store.__file__)) / "data"
# (file, the storescu option that proposes its transfer syntax)
SENT = [
    (SAMPLES / "CT_small.dcm", "-xe"),  # explicit VR little endian
    (SAMPLES / "MR_small_implicit.dcm", "-xi"),
    (SAMPLES / "MR_small_bigendian.dcm", "-xb"),
    (SAMPLES / "MR_small_RLE.dcm", "-xr"),
    (SAMPLES / "SC_rgb_jpeg_dcmtk.dcm", "-xy"),  # JPEG baseline
    (SAMPLES / "JPEG-lossy.dcm", "-xx"),  # JPEG extended (12 bit)
    (MORE_SAMPLES / "JPEG-LL.dcm", "-xs"),  # JPEG lossless, first-order prediction
    (SAMPLES / "MR_small_jpeg_ls_lossless.dcm", "-xt"),
    (SAMPLES / "MR_small_jp2klossless.dcm", "-xv"),
    (SAMPLES / "JPEG2000.dcm", "-xw"),
    (SAMPLES / "image_dfl.dcm", "-xd"),  # deflated explicit VR little endian
]


def _with_own_uid(path: Path, folder: Path) -> Path:
    """A copy with a SOP Instance UID of its own: several samples share one, and would replace each other."""
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    copy = folder / path.name
    ds.save_as(copy, enforce_file_format=True)
    return copy


def _frames(ds: pydicom.Dataset) -> list[bytes]:
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        return list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=frames))
    return [ds.PixelData]


def _as_sent(data_set: bytes) -> bytes:
    """What storescu sends: the data set without Data Set Trailing Padding (FFFC,FFFC), which it drops."""
    for tag, header, length_fmt in (
        (b"\xfc\xff\xfc\xff", 12, "<I"),  # explicit VR little endian: tag, "OB", reserved, length
        (b"\xff\xfc\xff\xfc", 12, ">I"),  # explicit VR big endian
        (b"\xfc\xff\xfc\xff", 8, "<I"),  # implicit VR little endian: tag, length
    ):
        at = data_set.rfind(tag)
        if at >= 0 and at + header <= len(data_set):
            (length,) = struct.unpack_from(length_fmt, data_set, at + header - 4)
            if at + header + length == len(data_set):
                return data_set[:at]
    return data_set


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, env=ENV)


def test_echo_and_store_every_transfer_syntax(tmp_path: Path) -> None:
    echoscu, storescu = require("echoscu"), require("storescu")
    data = tmp_path / "data"
    sent = [(_with_own_uid(path, tmp_path), option) for path, option in SENT]
    with running_server(data) as server:
        port = str(server.dicom_port)
        assert _run(echoscu, "-aec", "LIGHTBOX", "127.0.0.1", port).returncode == 0
        wrong = _run(echoscu, "-aec", "NOT_US", "127.0.0.1", port)
        assert wrong.returncode != 0 and "Called AE Title Not Recognized" in wrong.stdout + wrong.stderr
        for path, option in sent:
            result = _run(
                storescu, option, "-aet", "MODALITY", "-aec", "LIGHTBOX", "127.0.0.1", port, str(path)
            )
            assert result.returncode == 0, f"{path.name}: {result.stdout}{result.stderr}"
    archive = build_archive(load_settings(data_dir=data))
    try:
        for path, _ in sent:
            sent_bytes = path.read_bytes()
            original = pydicom.dcmread(path, stop_before_pixels=True)
            location = archive.retrieve.instance(str(original.SOPInstanceUID))
            assert location.transfer_syntax_uid == original.file_meta.TransferSyntaxUID, path.name
            with archive.retrieve.open(location) as f:
                stored = f.read()
            stored_set, sent_set = data_set_bytes(stored), _as_sent(data_set_bytes(sent_bytes))
            if stored_set != sent_set:
                # dcmtk sends undefined-length sequences with explicit lengths; then the values must agree
                assert b"\xff\xff\xff\xff" in sent_set, path.name
                received = pydicom.dcmread(io.BytesIO(stored))
                original = pydicom.dcmread(path)
                original.pop(0xFFFCFFFC, None)
                assert _frames(received) == _frames(original), path.name  # dcmtk may rewrite the element
                del received.PixelData, original.PixelData
                assert received == original, path.name
            meta = pydicom.dcmread(archive.retrieve.open(location), stop_before_pixels=True).file_meta
            assert meta.SourceApplicationEntityTitle == "MODALITY"
        assert archive.manage.statistics().instances == len(sent)
    finally:
        archive.close()


def test_association_cut_mid_object_leaves_nothing(tmp_path: Path) -> None:
    """The peer goes away after a data set fragment that is not the last: nothing stored, nothing pending."""
    import socket

    from lightbox.dicomnet import dimse, pdu

    ct = "1.2.840.10008.5.1.4.1.1.2"
    data = tmp_path / "data"
    with running_server(data) as server:
        with socket.create_connection(("127.0.0.1", server.dicom_port)) as s:
            context = pdu.PresentationContextRQ(1, ct, ("1.2.840.10008.1.2.1",))
            user = pdu.UserInformation(max_pdu_length=16384, implementation_class_uid="1.2.3.4")
            s.sendall(
                pdu.encode(pdu.AssociateRQ("LIGHTBOX", "CUTTER", "1.2.840.10008.3.1.1.1", (context,), user))
            )
            assert s.recv(65536)[0] == pdu.A_ASSOCIATE_AC
            s.sendall(
                pdu.encode_pdata(1, True, True, dimse.encode_command(dimse.c_store_rq(1, ct, "1.2.3.4.5")))
            )
            s.sendall(
                pdu.encode_pdata(1, False, False, b"\x08\x00\x16\x00UI\x1a\x00" + ct.encode() + b"\x00")
            )
            time.sleep(0.5)  # the fragment reaches the ingest session before the cut
        # the server keeps serving after the cut
        echo = _run(require("echoscu"), "-aec", "LIGHTBOX", "127.0.0.1", str(server.dicom_port))
        assert echo.returncode == 0, echo.stdout + echo.stderr
        assert not any((data / "objects" / ".tmp").iterdir())  # the pending object is gone already
    archive = build_archive(load_settings(data_dir=data))
    try:
        assert archive.manage.statistics().instances == 0
        assert list(archive.blobs.keys()) == []
    finally:
        archive.close()


# Syntaxes storescu does not send from these files (it converts JPEG-LS near-lossless and has no HTJ2K):
# pynetdicom sends them as they are. The video and HTJ2K objects carry stand-in frames: the archive keeps
# the bytes and never decodes them on the way in.
OTHER_SYNTAXES = [
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.100",  # MPEG-2 MP@ML
    "1.2.840.10008.1.2.4.101",  # MPEG-2 MP@HL
    "1.2.840.10008.1.2.4.102",  # MPEG-4 AVC/H.264 HP@4.1
    "1.2.840.10008.1.2.4.103",  # MPEG-4 AVC/H.264 BD-compatible
    "1.2.840.10008.1.2.4.107",  # HEVC/H.265 Main
    "1.2.840.10008.1.2.4.108",  # HEVC/H.265 Main 10
    "1.2.840.10008.1.2.4.201",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
]


def _encapsulated(transfer_syntax: str) -> pydicom.Dataset:
    if transfer_syntax == "1.2.840.10008.1.2.4.81":
        ds = pydicom.dcmread(SAMPLES / "JPEGLSNearLossless_16.dcm")
        ds.StudyInstanceUID, ds.SeriesInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    else:
        from tests.support.dicom import make_dataset

        ds = make_dataset(SOPClassUID="1.2.840.10008.5.1.4.1.1.77.1.4.1")  # Video Photographic Image
        ds.NumberOfFrames = 2
        ds.PixelData = pydicom.encaps.encapsulate([b"\x00\x00\x01\xb3" * 64, b"\x00\x00\x01\xb8" * 32])
        ds["PixelData"].VR = "OB"
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    return ds


def test_store_video_htj2k_and_near_lossless_as_sent(tmp_path: Path) -> None:
    from pynetdicom import AE

    data = tmp_path / "data"
    sent = [_encapsulated(ts) for ts in OTHER_SYNTAXES]
    with running_server(data) as server:
        ae = AE(ae_title="PYNETDICOM")
        for ds in sent:
            ae.add_requested_context(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])
        assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX")
        assert assoc.is_established
        for ds in sent:
            assert assoc.send_c_store(ds).Status == 0, ds.file_meta.TransferSyntaxUID
        assoc.release()
    archive = build_archive(load_settings(data_dir=data))
    try:
        for ds in sent:
            location = archive.retrieve.instance(str(ds.SOPInstanceUID))
            assert location.transfer_syntax_uid == ds.file_meta.TransferSyntaxUID
            with archive.retrieve.open(location) as f:
                stored = pydicom.dcmread(f)
            assert stored.PixelData == ds.PixelData  # the frames as sent, byte for byte
    finally:
        archive.close()
