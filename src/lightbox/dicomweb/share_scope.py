"""DICOMweb seen through a share link: the one study, de-identified when the link says so.

The authentication middleware keeps such a request to the study's paths (``api/share_access.py``) and
puts the link in ``request.state.share``; this module narrows the study search to the study and gives the
de-identification (PS3.15 Basic Profile with the Retain UIDs Option, so that the URLs inside answers stay
valid) that metadata, search results and whole objects go through. Pixel data goes as stored: burned-in
text is not removed (docs/deidentification.md).
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from starlette.requests import Request

from lightbox.deidentify import DeidentifyOptions, Pseudonyms
from lightbox.domain.errors import InvalidQuery
from lightbox.domain.shares import ShareAccess

# What a de-identified share may search by: keys that say nothing of the patient
_NEUTRAL_KEYS = frozenset(
    {
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "Modality",
        "ModalitiesInStudy",
        "SeriesNumber",
        "InstanceNumber",
        "QueryRetrieveLevel",
    }
)
# The bulk data of a de-identified share: pixels only (other bulk values, encapsulated documents and
# private blobs among them, may name the patient)
PIXEL_TAGS = frozenset({"7FE00010", "7FE00008", "7FE00009"})


def share_of(request: Request) -> ShareAccess | None:
    return getattr(request.state, "share", None)


def deidentification(request: Request) -> DeidentifyOptions | None:
    """How to de-identify what this request gets; None when it gets the study as stored."""
    access = share_of(request)
    if access is None or not access.link.deidentify:
        return None
    return DeidentifyOptions(Pseudonyms(access.key), retain_uids=True)


def narrow_search(request: Request, identifier: Dataset) -> bool:
    """Narrow a search of a share link's request to its study: False when it asks for another study
    (nothing can match). A de-identified share may search by UIDs, modality and numbers only, so that a
    search cannot test a guess of the patient's name or birth date."""
    access = share_of(request)
    if access is None:
        return True
    study = access.link.study_instance_uid
    asked = str(identifier.get("StudyInstanceUID", "") or "")
    if asked and study not in asked.split("\\"):
        return False
    identifier.StudyInstanceUID = study
    if access.link.deidentify:
        for element in identifier:
            if element.keyword not in _NEUTRAL_KEYS and not element.is_empty:
                raise InvalidQuery(
                    f"a de-identified share link searches by UID, modality and number only, not by "
                    f"{element.keyword or element.tag}"
                )
    return True
