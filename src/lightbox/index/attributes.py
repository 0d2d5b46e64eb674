"""Which attributes belong to which level, and how an instance header becomes index rows.

The level of an attribute follows the Patient, Study, Series and Instance IEs of PS3.3 and the keys of
PS3.4 C.6 and PS3.18 10.6.1.2.3; everything not listed belongs to the instance. Attributes with a column are
matched in SQL; every other non-bulk attribute is kept as DICOM JSON (PS3.18 F.2) at its level, for return
keys and for matching in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.tag import Tag

from lightbox.domain import values
from lightbox.domain.levels import Level

PATIENT_KEYWORDS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "TypeOfPatientID",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientSex",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "EthnicGroup",
    "PatientComments",
    "PatientSpeciesDescription",
    "PatientSpeciesCodeSequence",
    "PatientBreedDescription",
    "PatientBreedCodeSequence",
    "ResponsiblePerson",
    "ResponsiblePersonRole",
    "ResponsibleOrganization",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
    "QualityControlSubject",
    "StrainDescription",
)
STUDY_KEYWORDS = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "IssuerOfAccessionNumberSequence",
    "StudyID",
    "StudyDescription",
    "ReferringPhysicianName",
    "ReferringPhysicianIdentificationSequence",
    "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy",
    "ProcedureCodeSequence",
    "ReasonForPerformedProcedureCodeSequence",
    "AdmittingDiagnosesDescription",
    "AdmittingDiagnosesCodeSequence",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "PatientSizeCodeSequence",
    "Occupation",
    "AdditionalPatientHistory",
    "MedicalAlerts",
    "Allergies",
    "SmokingStatus",
    "PregnancyStatus",
    "PatientState",
    "AdmissionID",
    "IssuerOfAdmissionIDSequence",
    "ReferencedStudySequence",
    "ReferencedPatientSequence",
    "TimezoneOffsetFromUTC",
)
SERIES_KEYWORDS = (
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDescriptionCodeSequence",
    "SeriesDate",
    "SeriesTime",
    "Laterality",
    "BodyPartExamined",
    "ProtocolName",
    "OperatorsName",
    "PerformingPhysicianName",
    "PatientPosition",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformedProcedureStepID",
    "PerformedProcedureStepDescription",
    "PerformedProtocolCodeSequence",
    "RequestAttributesSequence",
    "ReferencedPerformedProcedureStepSequence",
    "Manufacturer",
    "InstitutionName",
    "InstitutionAddress",
    "StationName",
    "InstitutionalDepartmentName",
    "ManufacturerModelName",
    "DeviceSerialNumber",
    "SoftwareVersions",
    "FrameOfReferenceUID",
    "PositionReferenceIndicator",
    "AnatomicalOrientationType",
)

LEVEL_KEYWORDS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: PATIENT_KEYWORDS,
    Level.STUDY: STUDY_KEYWORDS,
    Level.SERIES: SERIES_KEYWORDS,
}


def _tag_key(keyword: str) -> str:
    return f"{int(Tag(keyword)):08X}"


LEVEL_TAGS: dict[Level, frozenset[str]] = {
    level: frozenset(_tag_key(k) for k in kws) for level, kws in LEVEL_KEYWORDS.items()
}

# Attributes the archive computes; they are never read from the instance (PS3.4 C.6.1.1.x, C.6.2.1.x).
COMPUTED_KEYWORDS: dict[str, Level] = {
    "NumberOfPatientRelatedStudies": Level.PATIENT,
    "NumberOfPatientRelatedSeries": Level.PATIENT,
    "NumberOfPatientRelatedInstances": Level.PATIENT,
    "NumberOfStudyRelatedSeries": Level.STUDY,
    "NumberOfStudyRelatedInstances": Level.STUDY,
    "ModalitiesInStudy": Level.STUDY,
    "SOPClassesInStudy": Level.STUDY,
    "NumberOfSeriesRelatedInstances": Level.SERIES,
}

_BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
BULK_THRESHOLD = 1024
_SKIPPED_TAGS = frozenset({"7FE00010", "7FE00008", "7FE00009", "FFFAFFFA", "FFFCFFFC"})


def level_of_tag(tag_key: str) -> Level:
    for level in (Level.PATIENT, Level.STUDY, Level.SERIES):
        if tag_key in LEVEL_TAGS[level]:
            return level
    return Level.IMAGE


@dataclass(slots=True)
class LevelRow:
    """Column values and DICOM JSON attributes of one level, as extracted from an instance header."""

    columns: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class InstanceRows:
    patient: LevelRow
    study: LevelRow
    series: LevelRow
    instance: LevelRow


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None or value == "":
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _bulk_free_json(ds: Dataset) -> dict[str, Any]:
    """DICOM JSON of the header without bulk data: large binary values are dropped, not referenced."""

    def drop(_elem: Any) -> str:
        return ""

    doc = ds.to_json_dict(bulk_data_threshold=BULK_THRESHOLD, bulk_data_element_handler=drop)
    out: dict[str, Any] = {}
    for tag_key, elem in doc.items():
        if tag_key in _SKIPPED_TAGS or tag_key.startswith("0002"):
            continue
        if elem.get("vr") in _BULK_VRS and "BulkDataURI" in elem:
            continue
        out[tag_key] = elem
    return out


def extract_rows(ds: Dataset) -> InstanceRows:
    """Index rows for one instance header (read with ``stop_before_pixels``)."""
    doc = _bulk_free_json(ds)
    split: dict[Level, dict[str, Any]] = {lv: {} for lv in Level}
    for tag_key, elem in doc.items():
        split[level_of_tag(tag_key)][tag_key] = elem

    patient_name = _text(ds, "PatientName")
    referring = _text(ds, "ReferringPhysicianName")
    study_date = values.normalize_date(_text(ds, "StudyDate"))
    study_time_raw = _text(ds, "StudyTime")
    series_date = values.normalize_date(_text(ds, "SeriesDate"))

    patient = LevelRow(
        columns={
            "patient_id": _text(ds, "PatientID"),
            "issuer_of_patient_id": _text(ds, "IssuerOfPatientID"),
            "patient_name": values.alphabetic_group(patient_name),
            "patient_name_fold": values.fold_name(values.alphabetic_group(patient_name)),
            "patient_birth_date": values.normalize_date(_text(ds, "PatientBirthDate")),
            "patient_sex": _text(ds, "PatientSex"),
        },
        attrs=split[Level.PATIENT],
    )
    study = LevelRow(
        columns={
            "study_instance_uid": _text(ds, "StudyInstanceUID"),
            "study_date": study_date,
            "study_time": values.normalize_time(study_time_raw),
            "study_datetime": values.combine_datetime(study_date, study_time_raw),
            "accession_number": _text(ds, "AccessionNumber"),
            "study_id": _text(ds, "StudyID"),
            "study_description": _text(ds, "StudyDescription"),
            "referring_physician_name": values.alphabetic_group(referring),
            "referring_physician_name_fold": values.fold_name(values.alphabetic_group(referring)),
        },
        attrs=split[Level.STUDY],
    )
    series = LevelRow(
        columns={
            "series_instance_uid": _text(ds, "SeriesInstanceUID"),
            "modality": _text(ds, "Modality"),
            "series_number": values.to_int(ds.get("SeriesNumber")),
            "series_description": _text(ds, "SeriesDescription"),
            "series_date": series_date,
            "series_time": values.normalize_time(_text(ds, "SeriesTime")),
            "body_part_examined": _text(ds, "BodyPartExamined"),
            "performed_procedure_step_start_date": values.normalize_date(
                _text(ds, "PerformedProcedureStepStartDate")
            ),
        },
        attrs=split[Level.SERIES],
    )
    instance = LevelRow(
        columns={
            "sop_instance_uid": _text(ds, "SOPInstanceUID"),
            "sop_class_uid": _text(ds, "SOPClassUID"),
            "instance_number": values.to_int(ds.get("InstanceNumber")),
            "content_date": values.normalize_date(_text(ds, "ContentDate")),
            "content_time": values.normalize_time(_text(ds, "ContentTime")),
            "number_of_frames": values.to_int(ds.get("NumberOfFrames")),
            "rows": values.to_int(ds.get("Rows")),
            "columns": values.to_int(ds.get("Columns")),
        },
        attrs=split[Level.IMAGE],
    )
    return InstanceRows(patient, study, series, instance)
