"""De-identify a pydicom data set in place (PS3.15 E.2, see ``profile.py``)."""

from __future__ import annotations

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from lightbox.deidentify.profile import Action, DeidentifyOptions, Profile


def deidentify_dataset(ds: Dataset, options: DeidentifyOptions) -> None:
    """Apply the Basic Profile to ``ds``, its sequences and its File Meta Information, and add the
    attributes that say it was done. The pixel data is not looked at (no Clean Pixel Data Option)."""
    patient_id = ds.get("PatientID")
    profile = Profile(options, str(patient_id) if patient_id else None)
    _clean(ds, profile)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _clean(meta, profile)
        if "MediaStorageSOPInstanceUID" in meta and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID  # PS3.10 7.1: the two are the same UID
    for element in profile.stamp():
        ds[element.tag] = element


def _clean(ds: Dataset, profile: Profile) -> None:
    for tag in list(ds.keys()):
        action = profile.action(tag)
        if action is Action.REMOVE:
            del ds[tag]  # before reading it: a private element need not even parse
            continue
        element = ds[tag]
        if action is Action.KEEP:
            if element.VR == "SQ":
                for item in element.value:
                    _clean(item, profile)
            continue
        new = profile.replacement(tag, element.VR, action, _uids(element))
        if new is None:
            del ds[tag]
        else:
            ds[tag] = new


def _uids(element: DataElement) -> list[str | None]:
    if element.VR != "UI" or not element.value:
        return []
    value = element.value
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]
