"""The hand-encoded File Meta Information equals pydicom's, and reads back."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID

from lightbox import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from lightbox.formats.file_meta import encode_file_meta


def _pydicom_meta(sop_class: str, sop_instance: str, ts: str, ae: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = UID(ts)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    if ae:
        meta.SourceApplicationEntityTitle = ae
    buf = DicomBytesIO()
    buf.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buf, meta, enforce_standard=True)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("sop_class", "sop_instance", "ts", "ae"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5", "1.2.840.10008.1.2.1", "CT_SCANNER"),  # odd UID
        ("1.2.840.10008.5.1.4.1.1.4", "1.2.3.4.56", "1.2.840.10008.1.2", ""),  # even UID, no AE
        ("1.2.840.10008.5.1.4.1.1.7", "2.25.1", "1.2.840.10008.1.2.4.50", "ODD"),  # odd AE title
    ],
)
def test_same_bytes_as_pydicom(sop_class: str, sop_instance: str, ts: str, ae: str) -> None:
    assert encode_file_meta(sop_class, sop_instance, ts, ae) == _pydicom_meta(sop_class, sop_instance, ts, ae)


def test_reads_back() -> None:
    f = io.BytesIO(encode_file_meta("1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.840.10008.1.2.1", "MOD"))
    meta = pydicom.dcmread(f, force=False).file_meta
    assert meta.MediaStorageSOPInstanceUID == "1.2.3"
    assert meta.SourceApplicationEntityTitle == "MOD"
    assert meta.FileMetaInformationGroupLength == len(f.getvalue()) - 132 - 12
