"""Query/retrieve identifiers: data sets in the presentation context's transfer syntax (PS3.4 C.4)."""

from __future__ import annotations

import io

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from lightbox.domain.levels import UNIQUE_KEY, Level
from lightbox.formats.encoding import EXPLICIT_VR_BIG_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN


def decode_identifier(data: bytes, transfer_syntax: str) -> Dataset:
    return read_dataset(
        io.BytesIO(data),
        transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN,
        transfer_syntax != EXPLICIT_VR_BIG_ENDIAN,
    )


def encode_identifier(ds: Dataset, transfer_syntax: str) -> bytes:
    buf = DicomBytesIO()
    buf.is_implicit_VR = transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN
    buf.is_little_endian = transfer_syntax != EXPLICIT_VR_BIG_ENDIAN
    write_dataset(buf, ds)
    return buf.getvalue()


def selection(identifier: Dataset, level: Level) -> dict[str, list[str]]:
    """The unique keys of the identifier at and above ``level`` (PS3.4 C.4.2.2.1, C.4.3.2.1)."""
    keys: dict[str, list[str]] = {}
    for lv in (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE):
        keyword = UNIQUE_KEY[lv]
        value = identifier.get(keyword)
        if value not in (None, ""):
            values = (
                value if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue" else [value]
            )
            keys[keyword] = [str(v) for v in values]
        if lv is level:
            break
    return keys
