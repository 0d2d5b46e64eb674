"""What a request holding a share link may reach: read-only DICOMweb of its one study, nothing else.

Paths name the study they concern, so the check is on the path: ``/dicom-web/studies/{the study}/...``,
the study search ``/dicom-web/studies`` (which the QIDO-RS adapter narrows to the study) and WADO-URI
with ``studyUID`` the study; and the viewer's page ``/viewer``. The series and instance searches of the whole
archive, the REST API, STOW-RS and every other route are refused.
"""

from __future__ import annotations

from urllib.parse import parse_qs

SHARE_COOKIE = "lightbox_share"
SHARE_LANDING = "/share/"  # GET /share/{token}: the page the link opens
VIEWER_PAGE = "/viewer"  # where that page sends its holder on
_READ_METHODS = frozenset({"GET", "HEAD"})


def share_allows(method: str, path: str, query_string: bytes, study: str) -> bool:
    if method not in _READ_METHODS:
        return False
    if path == VIEWER_PAGE:
        return True  # the viewer's page (its files are open to all); what it shows comes through the rest
    own = f"/dicom-web/studies/{study}"
    if path in ("/dicom-web/studies", own) or path.startswith(own + "/"):
        return True
    if path == "/wado":
        asked = parse_qs(query_string.decode("latin-1")).get("studyUID", [])
        return asked == [study]
    return False
