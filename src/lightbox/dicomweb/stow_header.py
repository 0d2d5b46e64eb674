"""Which instance a STOW-RS part holds, read from its first bytes.

The response names every instance, failed ones too (PS3.18 Table I.1-1: the SOP Instance Reference Macro
in Failed SOP Sequence), and a store to /studies/{study} must refuse instances of another study before
they are stored (PS3.18 10.5). Both need the UIDs before, or without, a successful ingest: they are read
here from a copy of the part's first bytes, never from the whole part.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from pydicom.dataelem import RawDataElement
from pydicom.filereader import read_partial
from pydicom.tag import BaseTag, Tag

# The three UIDs sit in groups 0008 and 0020, ahead of anything bulky: this is plenty for any ordinary header.
HEAD_BYTES = 1 << 20
_SOP_CLASS = Tag(0x0008, 0x0016)
_SOP_INSTANCE = Tag(0x0008, 0x0018)
_STUDY = Tag(0x0020, 0x000D)
_DEFER = 4096  # values larger than this are not read (private blobs in group 0009 and the like)


@dataclass(frozen=True, slots=True)
class PartHeader:
    """The UIDs found in a part's first bytes; "" where absent or unreadable.

    ``complete``: the bytes reached past the Study Instance UID, so an absent value is really absent.
    """

    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    complete: bool = False


def read_part_header(head: bytes, whole: bool) -> PartHeader:
    """The UIDs of the Part 10 object that starts with ``head`` (``whole``: ``head`` is all of it).

    Blocking (pydicom): run it on the executor. Never raises: what cannot be read is left empty.
    """
    passed_study = False

    def past_study(tag: BaseTag, vr: str | None, length: int) -> bool:
        nonlocal passed_study
        passed_study = tag > _STUDY
        return passed_study

    try:
        ds = read_partial(io.BytesIO(head), stop_when=past_study, defer_size=_DEFER)
    except Exception:  # pydicom raises many kinds on what is not DICOM or is cut short
        return PartHeader()

    def value(tag: BaseTag) -> str:
        if tag not in ds:
            return ""
        raw = ds.get_item(tag)
        # A value cut off by the end of ``head`` would read as a shorter, wrong UID.
        if isinstance(raw, RawDataElement) and raw.value_tell + raw.length > len(head):
            return ""
        return str(ds[tag].value or "").strip("\x00 ")

    try:
        return PartHeader(value(_SOP_CLASS), value(_SOP_INSTANCE), value(_STUDY), passed_study or whole)
    except Exception:
        return PartHeader()
