"""Build small, valid DICOM Part 10 objects for tests."""

from __future__ import annotations

import io
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def make_dataset(**attrs: Any) -> Dataset:
    """A CT image with UIDs, patient and study attributes and 4x4 pixels; ``attrs`` override any keyword."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID-1"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC-1"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = "Who^Doctor"
    ds.StudyDescription = "CT HEAD"
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Rows = 4
    ds.Columns = 4
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(32))
    for keyword, value in attrs.items():
        if value is not None:
            setattr(ds, keyword, value)
        elif keyword in ds:
            delattr(ds, keyword)
    return ds


def to_part10(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    """The dataset as Part 10 bytes (preamble, File Meta Information, data set)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", CTImageStorage)
    meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", generate_uid())
    meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta = meta
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def part10(**attrs: Any) -> bytes:
    return to_part10(make_dataset(**attrs))


def video_part10(**attrs: Any) -> bytes:
    """An MPEG-4 video object with a stand-in stream: no decoder will take it apart."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import MPEG4HP41, VideoPhotographicImageStorage

    ds = make_dataset(
        SOPClassUID=VideoPhotographicImageStorage,
        Rows=16,
        Columns=16,
        BitsAllocated=8,
        BitsStored=8,
        HighBit=7,
        SamplesPerPixel=3,
        PlanarConfiguration=0,
        PhotometricInterpretation="YBR_PARTIAL_420",
        NumberOfFrames=2,
        PixelData=encapsulate([b"\x00\x00\x01\xb3" + bytes(60)]),
        **attrs,
    )
    return to_part10(ds, MPEG4HP41)


def data_set_bytes(part10_bytes: bytes) -> bytes:
    """The bytes after the File Meta Information (PS3.10 7.1: its group length says where it ends)."""
    import struct

    assert part10_bytes[128:132] == b"DICM" and part10_bytes[132:136] == b"\x02\x00\x00\x00"
    (meta_length,) = struct.unpack_from("<I", part10_bytes, 140)
    return part10_bytes[144 + meta_length :]


def restamped(name: str, transfer_syntax: str | None = None, **attrs: Any) -> bytes:
    """pydicom's test file ``name`` under new UIDs (study, series, instance), with ``attrs`` set, in its own
    transfer syntax: the pixel data goes as it is (several of these files share their UIDs).
    ``transfer_syntax``: the one ``attrs``' pixel data is in, when they replace it."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    assert path is not None, name
    ds = dcmread(path)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    if transfer_syntax is not None:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def ct_volume(study: str, count: int, size: int, **attrs: Any) -> list[bytes]:
    """A CT series of ``count`` axial slices of ``size`` x ``size``, 2 mm apart and consistently placed
    (position, orientation, spacing, frame of reference), as multiplanar reconstruction needs: a bright
    ball in a dimmer cylinder, so that every plane through the middle shows something."""
    import numpy as np

    series, frame_of_reference = generate_uid(), generate_uid()
    y, x = np.mgrid[0:size, 0:size] - size / 2
    slices = []
    for n in range(count):
        z = (n - count / 2) * 2.0  # mm, as x and y (1 mm pixels)
        pixels = np.full((size, size), 24, dtype=np.uint16)  # air: -1000 HU
        pixels[x * x + y * y < (0.45 * size) ** 2] = 1064  # water-like body: 40 HU
        pixels[x * x + y * y + z * z < (0.25 * size) ** 2] = 2024  # bone-like ball: 1000 HU
        pixels[int(size * 0.7) :, :] += np.uint16(n * 4)  # a slice-dependent band: the slices differ
        ds = make_dataset(
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            InstanceNumber=n + 1,
            Rows=size,
            Columns=size,
            BitsStored=16,
            HighBit=15,
            PixelData=pixels.tobytes(),
            ImagePositionPatient=[-size / 2, -size / 2, n * 2.0],
            ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
            PixelSpacing=[1.0, 1.0],
            SliceThickness=2.0,
            RescaleIntercept=-1024,
            RescaleSlope=1,
            WindowCenter=40,
            WindowWidth=400,
            FrameOfReferenceUID=frame_of_reference,
            **attrs,
        )
        slices.append(to_part10(ds))
    return slices
