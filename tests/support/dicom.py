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
