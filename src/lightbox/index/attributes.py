"""Which attributes belong to which level, and how an instance header becomes index rows.

The level of an attribute follows the Patient, Study, Series and Instance IEs of PS3.3 and the keys of
PS3.4 C.6 and PS3.18 10.6.1.2.3; everything not listed belongs to the instance. Attributes with a column are
matched in SQL; every other non-bulk attribute is kept as DICOM JSON (PS3.18 F.2) at its level, for return
keys and for matching in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydicom.tag import Tag

from lightbox.domain import values
from lightbox.domain.levels import Level
from lightbox.formats.dicom_json import JsonDataset

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


_TAG = {kw: _tag_key(kw) for kw in (*PATIENT_KEYWORDS, *STUDY_KEYWORDS, *SERIES_KEYWORDS)} | {
    kw: _tag_key(kw)
    for kw in (
        "SOPInstanceUID",
        "SOPClassUID",
        "InstanceNumber",
        "ContentDate",
        "ContentTime",
        "NumberOfFrames",
        "Rows",
        "Columns",
    )
}


def json_text(doc: JsonDataset, keyword: str) -> str:
    """The value of ``keyword`` as DICOM text: multiple values joined by backslash, a PN as its groups."""
    elem = doc.get(_TAG.get(keyword) or _tag_key(keyword))
    if not elem or "Value" not in elem:
        return ""
    parts = []
    for value in elem["Value"]:
        if value is None:
            parts.append("")
        elif isinstance(value, dict):  # PN
            groups = [value.get(g, "") for g in ("Alphabetic", "Ideographic", "Phonetic")]
            parts.append("=".join(groups).rstrip("="))
        else:
            parts.append(str(value))
    return "\\".join(parts)


def _json_int(doc: JsonDataset, keyword: str) -> int | None:
    return values.to_int(json_text(doc, keyword).split("\\", 1)[0])


def extract_rows(doc: JsonDataset) -> InstanceRows:
    """Index rows for one instance header given as DICOM JSON without bulk data."""
    split: dict[Level, dict[str, Any]] = {lv: {} for lv in Level}
    for tag_key, elem in doc.items():
        if tag_key not in _SKIPPED_TAGS and not tag_key.startswith("0002"):
            split[level_of_tag(tag_key)][tag_key] = elem

    patient_name = json_text(doc, "PatientName")
    referring = json_text(doc, "ReferringPhysicianName")
    study_date = values.normalize_date(json_text(doc, "StudyDate"))
    study_time_raw = json_text(doc, "StudyTime")
    series_date = values.normalize_date(json_text(doc, "SeriesDate"))

    patient = LevelRow(
        columns={
            "patient_id": json_text(doc, "PatientID"),
            "issuer_of_patient_id": json_text(doc, "IssuerOfPatientID"),
            "patient_name": values.alphabetic_group(patient_name),
            "patient_name_fold": values.fold_name(values.alphabetic_group(patient_name)),
            "patient_birth_date": values.normalize_date(json_text(doc, "PatientBirthDate")),
            "patient_sex": json_text(doc, "PatientSex"),
        },
        attrs=split[Level.PATIENT],
    )
    study = LevelRow(
        columns={
            "study_instance_uid": json_text(doc, "StudyInstanceUID"),
            "study_date": study_date,
            "study_time": values.normalize_time(study_time_raw),
            "study_datetime": values.combine_datetime(study_date, study_time_raw),
            "accession_number": json_text(doc, "AccessionNumber"),
            "study_id": json_text(doc, "StudyID"),
            "study_description": json_text(doc, "StudyDescription"),
            "referring_physician_name": values.alphabetic_group(referring),
            "referring_physician_name_fold": values.fold_name(values.alphabetic_group(referring)),
        },
        attrs=split[Level.STUDY],
    )
    series = LevelRow(
        columns={
            "series_instance_uid": json_text(doc, "SeriesInstanceUID"),
            "modality": json_text(doc, "Modality"),
            "series_number": _json_int(doc, "SeriesNumber"),
            "series_description": json_text(doc, "SeriesDescription"),
            "series_date": series_date,
            "series_time": values.normalize_time(json_text(doc, "SeriesTime")),
            "body_part_examined": json_text(doc, "BodyPartExamined"),
            "performed_procedure_step_start_date": values.normalize_date(
                json_text(doc, "PerformedProcedureStepStartDate")
            ),
        },
        attrs=split[Level.SERIES],
    )
    instance = LevelRow(
        columns={
            "sop_instance_uid": json_text(doc, "SOPInstanceUID"),
            "sop_class_uid": json_text(doc, "SOPClassUID"),
            "instance_number": _json_int(doc, "InstanceNumber"),
            "content_date": values.normalize_date(json_text(doc, "ContentDate")),
            "content_time": values.normalize_time(json_text(doc, "ContentTime")),
            "number_of_frames": _json_int(doc, "NumberOfFrames"),
            "rows": _json_int(doc, "Rows"),
            "columns": _json_int(doc, "Columns"),
        },
        attrs=split[Level.IMAGE],
    )
    return InstanceRows(patient, study, series, instance)
