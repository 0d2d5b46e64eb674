"""De-identify a DICOM JSON document (PS3.18 F.2): WADO-RS metadata, QIDO-RS results.

The same decisions as for a data set (``profile.py``), by tag, on a new document; the one given is not
changed, so documents that share parts (the index's series attributes) are safe to pass.
"""

from __future__ import annotations

from typing import Any

from lightbox.deidentify.profile import Action, DeidentifyOptions, Profile

_PATIENT_ID = "00100020"
_BULK_THRESHOLD = 1 << 30  # replacement values are small: always inline


def deidentify_json(doc: dict[str, Any], options: DeidentifyOptions) -> dict[str, Any]:
    """``doc`` with the Basic Profile applied and the attributes that say so added."""
    profile = Profile(options, _patient_id(doc))
    out = _clean(doc, profile)
    for element in profile.stamp():
        out[f"{element.tag:08X}"] = element.to_json_dict(None, _BULK_THRESHOLD)
    return out


def _patient_id(doc: dict[str, Any]) -> str | None:
    element = doc.get(_PATIENT_ID) or {}  # PS3.18 F.2.1.1.2: keys are upper case
    values = element.get("Value") or [None]
    return str(values[0]) if values[0] else None


def _clean(doc: dict[str, Any], profile: Profile) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, element in doc.items():
        tag = int(key, 16)
        action = profile.action(tag)
        if action is Action.REMOVE:
            continue
        vr = element.get("vr", "UN")
        if action is Action.KEEP:
            if vr == "SQ" and element.get("Value"):
                element = {**element, "Value": [_clean(item or {}, profile) for item in element["Value"]]}
            out[key] = element
            continue
        uids = element.get("Value", []) if vr == "UI" else []
        new = profile.replacement(tag, vr, action, uids)
        if new is not None:
            out[key] = new.to_json_dict(None, _BULK_THRESHOLD)
    return out
