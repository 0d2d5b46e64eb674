"""The admin API's JSON documents, as pydantic models: FastAPI validates the responses with them and the
OpenAPI document (/api/openapi.json) describes every route by them.

Dates are DICOM DA (``YYYYMMDD``) and times TM normalised to ``HHMMSS.ffffff``, as the index keeps them; the
archive's own times (created, updated, ingested) are ISO 8601 in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lightbox.dicomweb.problems import PROBLEM_JSON

# PS3.5 9.1: components of digits without leading zeros, separated by dots, 64 characters at most
UID_PATTERN = r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$"


class _Record(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Patient(_Record):
    patient_id: str = Field(description="Patient ID (0010,0020)")
    issuer_of_patient_id: str = Field(description="Issuer of Patient ID (0010,0021); empty when none")
    patient_name: str = Field(description="Patient's Name (0010,0010), alphabetic group")
    patient_birth_date: str | None
    patient_sex: str
    num_studies: int
    num_series: int
    num_instances: int
    size_bytes: int = Field(description="Bytes of every object stored for the patient")
    created_at: datetime


class Study(_Record):
    study_instance_uid: str
    patient_id: str
    issuer_of_patient_id: str
    patient_name: str
    study_date: str | None
    study_time: str | None
    accession_number: str
    study_id: str
    study_description: str
    referring_physician_name: str
    modalities_in_study: list[str]
    num_series: int
    num_instances: int
    size_bytes: int
    created_at: datetime
    updated_at: datetime = Field(description="When an instance was last added to or removed from the study")


class Series(_Record):
    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    modality: str
    series_number: int | None
    series_description: str
    series_date: str | None
    series_time: str | None
    body_part_examined: str
    num_instances: int
    size_bytes: int
    created_at: datetime


class Instance(_Record):
    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    instance_number: int | None
    content_date: str | None
    content_time: str | None
    number_of_frames: int | None
    rows: int | None
    columns: int | None
    transfer_syntax_uid: str = Field(description="The transfer syntax the object is stored in")
    size: int = Field(description="Bytes of the stored object")
    sha256: str = Field(description="SHA-256 of the stored object, hexadecimal")
    source: str = Field(description='Where it came from: "dimse:AE@HOST", "stow:USER@HOST", "import:PATH"...')
    ingested_at: datetime


class _Page(BaseModel):
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page; null on the last page")
    next: str | None = Field(description="URL of the next page; null on the last page")


class PatientPage(_Page):
    items: list[Patient]


class StudyPage(_Page):
    items: list[Study]


class SeriesPage(_Page):
    items: list[Series]


class InstancePage(_Page):
    items: list[Instance]


class Deleted(BaseModel):
    level: str = Field(description="STUDY, SERIES or IMAGE")
    uid: str
    study_instance_uid: str
    instances: int = Field(description="Instances deleted")
    size_bytes: int = Field(description="Bytes of the objects deleted")


class Statistics(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    patients: int
    studies: int
    series: int
    instances: int
    size_bytes: int = Field(description="Bytes of every object stored")
    tiers: list[TierUsage] = Field(
        default_factory=list, description="Instances and bytes in each storage tier, the first tier first"
    )


class TierUsage(BaseModel):
    name: str
    instances: int
    size_bytes: int


class System(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: str
    python_version: str
    started_at: datetime
    uptime_seconds: float
    database_engine: str = Field(description="sqlite or postgresql")
    database_url: str = Field(description="The index database URL, password and query removed")
    storage_url: str = Field(description="The blob store URL, password and query removed")
    data_dir: str
    settings: dict[str, Any] = Field(description="The settings that shape the archive's behaviour")


class Problem(BaseModel):
    """RFC 9457 problem details: every error of the API."""

    type: str
    title: str
    status: int
    detail: str


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors a route answers, as problem+json (``default``: any other error)."""
    described = {
        400: "Invalid parameters",
        404: "No such entity is stored",
        409: "It contradicts what is stored (a name taken already)",
    }
    content = {PROBLEM_JSON: {"schema": Problem.model_json_schema()}}
    responses: dict[int | str, dict[str, Any]] = {
        code: {"description": described[code], "content": content} for code in codes
    }
    # Also keeps FastAPI from describing a 422 that this API never sends (validation errors are 400s).
    responses["default"] = {"description": "Any other error", "content": content}
    return responses
