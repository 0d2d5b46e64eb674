"""The answer to a STOW-RS request: the Store Instances Response Module (PS3.18 Annex I) in DICOM JSON
(PS3.18 F.2) and the status code that sums it up (PS3.18 10.5.3.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightbox.dicomweb.stow_parts import Failed, PartOutcome, Stored

# Tags of the Store Instances Response Module (PS3.18 Table I.1-1)
_RETRIEVE_URL = "00081190"  # UR
_FAILED_SOP_SEQUENCE = "00081198"
_REFERENCED_SOP_SEQUENCE = "00081199"
_REFERENCED_SOP_CLASS_UID = "00081150"
_REFERENCED_SOP_INSTANCE_UID = "00081155"
_FAILURE_REASON = "00081197"  # US

JsonDataset = dict[str, Any]


def status_code(outcomes: Sequence[PartOutcome]) -> int:
    """PS3.18 Table 10.5.3-1: 200 all stored, 202 some stored and some failed, 409 none stored."""
    stored = sum(isinstance(outcome, Stored) for outcome in outcomes)
    if stored == len(outcomes):
        return 200
    return 202 if stored else 409


def response_body(outcomes: Sequence[PartOutcome], studies_url: str, study: str | None = None) -> JsonDataset:
    """The Store Instances Response Module (PS3.18 Table I.1-1) for ``outcomes``, in request order.

    ``studies_url`` is the absolute URL of /studies, under which Retrieve URLs are formed (PS3.18 10.4.1);
    ``study`` is the target study of a POST /studies/{study}.
    """
    stored = [outcome.result for outcome in outcomes if isinstance(outcome, Stored)]
    failed = [outcome for outcome in outcomes if isinstance(outcome, Failed)]
    studies = {result.study_instance_uid for result in stored}
    if study is None and len(studies) == 1:
        study = studies.pop()
    # Type 2: present, and empty when the instances stored belong to several studies (or to none).
    body: JsonDataset = {_RETRIEVE_URL: _text("UR", f"{studies_url}/{study}" if study else "")}
    if failed:
        body[_FAILED_SOP_SEQUENCE] = {
            "vr": "SQ",
            "Value": [
                {
                    _REFERENCED_SOP_CLASS_UID: _text("UI", failure.sop_class_uid),
                    _REFERENCED_SOP_INSTANCE_UID: _text("UI", failure.sop_instance_uid),
                    _FAILURE_REASON: {"vr": "US", "Value": [failure.reason]},
                }
                for failure in failed
            ],
        }
    if stored:
        body[_REFERENCED_SOP_SEQUENCE] = {
            "vr": "SQ",
            "Value": [
                {
                    _REFERENCED_SOP_CLASS_UID: _text("UI", result.sop_class_uid),
                    _REFERENCED_SOP_INSTANCE_UID: _text("UI", result.sop_instance_uid),
                    _RETRIEVE_URL: _text(
                        "UR",
                        f"{studies_url}/{result.study_instance_uid}/series/{result.series_instance_uid}"
                        f"/instances/{result.sop_instance_uid}",
                    ),
                }
                for result in stored
            ],
        }
    return body


def _text(vr: str, value: str) -> dict[str, Any]:
    """A one-valued string attribute; an empty one has no Value (PS3.18 F.2.5)."""
    return {"vr": vr, "Value": [value]} if value else {"vr": vr}
