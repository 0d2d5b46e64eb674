"""The Basic Application Level Confidentiality Profile (PS3.15 E.2), one attribute at a time.

Both walkers, ``dataset.py`` over pydicom data sets and ``dicom_json.py`` over DICOM JSON, ask ``Profile``
what to do with each attribute and build every new value through it, so that the two give the same result.

What the Basic Profile's action codes become here (PS3.15 E.1.1, Table E.1-1):

- X: removed. Z: zero length (a sequence with no items). U: each UID replaced by ``Pseudonyms.uid``.
- D: a dummy value of the attribute's VR (``DUMMY_VALUES``): text ``ANONYMOUS``, dates 19000101, times
  000000, numbers 0, binary values zero bytes, a UI the replaced UID. A sequence marked D becomes one empty
  item: its content (an SR's Content Sequence, the text of graphic annotations) can hold anything, and keeping
  it in a cleaned form is the Clean Structured Content and Clean Graphics Options, not offered here.
- The compound codes depend on the attribute's type in the IOD, which a generic de-identifier does not know:
  X/Z becomes Z (an X/Z attribute is never Type 1, so empty is always valid), and X/D, Z/D, X/Z/D become D
  (a dummy is valid whatever the type). X/Z/U* (sequences of references) is kept, and the UIDs in it are
  replaced as the table says of them.
- C (clean) appears only in the options' columns; were it met, it would be treated as D.
- Attributes the table does not list are kept; sequences that are kept are processed item by item.

Beyond the table: every private attribute goes (the Retain Safe Private Option is not offered); a whole curve
or overlay group goes, not only its data and comments, since an Overlay Plane without its Overlay Data is not
valid (PS3.3 C.9.2); group lengths go (retired, and wrong once elements are removed); File Meta Information
keeps only what PS3.10 7.1 requires of it (the source, sending and receiving AE titles and addresses name the
site); and when UIDs are replaced, Retrieve URL and Retrieve URI go, as they carry the original UIDs.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from lightbox.deidentify.keys import Pseudonyms
from lightbox.deidentify.table import BASIC_PROFILE, RETAIN_UIDS_OPTION

BASIC_PROFILE_NAME = "Basic Application Level Confidentiality Profile"
RETAIN_UIDS_NAME = "Retain UIDs Option"
# PS3.16 CID 7050 De-identification Method: DCM codes of the profile and its options.
BASIC_PROFILE_CODE = "113100"
RETAIN_UIDS_CODE = "113110"

PatientIdentityRemoved = 0x00120062
DeidentificationMethod = 0x00120063
DeidentificationMethodCodeSequence = 0x00120064
_PATIENT = frozenset({0x00100010, 0x00100020})  # Patient's Name, Patient ID
_RETRIEVE_URLS = frozenset({0x00081190, 0x0040E010})  # Retrieve URL, Retrieve URI
# PS3.10 7.1: File Meta Information Version, Media Storage SOP Class and Instance UIDs, Transfer Syntax UID,
# Implementation Class UID and Version Name.
_FILE_META_KEPT = frozenset({0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013})
_CURVE_GROUPS, _OVERLAY_GROUPS = 0x5000, 0x6000  # (50xx,xxxx), (60xx,xxxx)

_TEXT = "ANONYMOUS"
DUMMY_VALUES: dict[str, Any] = {
    "AE": _TEXT,
    "AS": "000Y",
    "CS": _TEXT,
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": _TEXT,
    "LT": _TEXT,
    "PN": _TEXT,
    "SH": _TEXT,
    "ST": _TEXT,
    "TM": "000000",
    "UC": _TEXT,
    "UR": _TEXT,  # a relative reference (RFC 3986 4.2): a valid URI that names nothing
    "UT": _TEXT,
    "AT": 0,
    "FD": 0.0,
    "FL": 0.0,
    "SL": 0,
    "SS": 0,
    "SV": 0,
    "UL": 0,
    "US": 0,
    "UV": 0,
    # Binary values: zero bytes, as many as one value of the VR takes (OB, UN: two, for an even length).
    "OB": bytes(2),
    "OD": bytes(8),
    "OF": bytes(4),
    "OL": bytes(4),
    "OV": bytes(8),
    "OW": bytes(2),
    "UN": bytes(2),
}


class Action(enum.Enum):
    KEEP = "K"
    REMOVE = "X"
    EMPTY = "Z"
    DUMMY = "D"
    REPLACE_UID = "U"
    PSEUDONYM = "pseudonym"  # Patient ID and Patient's Name: the caller's pseudonym, a kind of D


RESOLVED: dict[str, Action] = {
    "K": Action.KEEP,
    "X": Action.REMOVE,
    "Z": Action.EMPTY,
    "D": Action.DUMMY,
    "U": Action.REPLACE_UID,
    "C": Action.DUMMY,  # cleaning is an option's; the Basic Profile's nearest safe action is a dummy
    "X/Z": Action.EMPTY,
    "X/D": Action.DUMMY,
    "Z/D": Action.DUMMY,
    "X/Z/D": Action.DUMMY,
    "X/Z/U*": Action.KEEP,  # the references stay, their UIDs are replaced (U) inside
}


@dataclass(frozen=True, slots=True)
class DeidentifyOptions:
    """How to de-identify.

    ``pseudonyms`` makes the new UIDs and patient pseudonyms: share one between the objects of one run (one
    export, one shared study) so that they agree. ``retain_uids`` is the Retain UIDs Option (PS3.15 E.3.9):
    UIDs are kept, so that references and URLs stay valid. ``patient_pseudonym`` replaces Patient ID and
    Patient's Name; without it, each object's own Patient ID is turned into one by ``pseudonyms``.
    """

    pseudonyms: Pseudonyms
    retain_uids: bool = False
    patient_pseudonym: str | None = None


class Profile:
    """The profile applied to one object (one data set, one JSON document), with its patient's pseudonym."""

    __slots__ = ("options", "pseudonym")

    def __init__(self, options: DeidentifyOptions, patient_id: str | None) -> None:
        self.options = options
        # One pseudonym for the object, wherever Patient ID or Patient's Name appear in it. No Patient ID (or
        # an empty one) gives none: the table's actions apply.
        self.pseudonym = options.patient_pseudonym or (
            options.pseudonyms.patient(patient_id) if patient_id else None
        )

    def action(self, tag: int) -> Action:
        group = tag >> 16
        if group & 1:
            return Action.REMOVE  # Private Attributes, (gggg,eeee) with gggg odd: private creators too
        if group == 0x0002:
            if tag not in _FILE_META_KEPT:
                return Action.REMOVE
        elif tag & 0xFFFF == 0:
            return Action.REMOVE  # group length
        if group & 0xFF00 in (_CURVE_GROUPS, _OVERLAY_GROUPS):
            return Action.REMOVE
        if self.options.retain_uids:
            if tag in RETAIN_UIDS_OPTION:
                return Action.KEEP
        elif tag in _RETRIEVE_URLS:
            return Action.REMOVE
        if tag in _PATIENT and self.pseudonym is not None:
            return Action.PSEUDONYM
        code = BASIC_PROFILE.get(tag)
        return Action.KEEP if code is None else RESOLVED[code]

    def replacement(
        self, tag: int, vr: str, action: Action, uids: Sequence[str | None]
    ) -> DataElement | None:
        """The element that replaces one marked Z, D, U or PSEUDONYM (``uids``: its values, when a UI), or
        None when it is to be removed instead (a UID that is not a UI value cannot be replaced)."""
        vr = vr.split(" or ")[0]  # an ambiguous VR ("US or SS"): the first is as good for a dummy
        if action is Action.EMPTY:
            return DataElement(tag, vr, None)
        if action is Action.PSEUDONYM:
            return DataElement(tag, vr, self.pseudonym)
        if action is Action.REPLACE_UID or vr == "UI":
            if vr != "UI":
                return None
            new = [self.options.pseudonyms.uid(uid) if uid else uid for uid in uids]
            return DataElement(tag, vr, new[0] if len(new) == 1 else new)
        if vr == "SQ":
            return DataElement(tag, vr, DicomSequence([Dataset()]))
        return DataElement(tag, vr, DUMMY_VALUES.get(vr, bytes(2)))

    def stamp(self) -> list[DataElement]:
        """What PS3.15 E.1.1 adds: Patient Identity Removed YES, and the method in text and codes."""
        methods = [BASIC_PROFILE_NAME]
        codes = [_code(BASIC_PROFILE_CODE, BASIC_PROFILE_NAME)]
        if self.options.retain_uids:
            methods.append(RETAIN_UIDS_NAME)
            codes.append(_code(RETAIN_UIDS_CODE, RETAIN_UIDS_NAME))
        return [
            DataElement(PatientIdentityRemoved, "CS", "YES"),
            DataElement(DeidentificationMethod, "LO", methods[0] if len(methods) == 1 else methods),
            DataElement(DeidentificationMethodCodeSequence, "SQ", DicomSequence(codes)),
        ]


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item
