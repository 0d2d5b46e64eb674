"""Service events as audit records: one function per event type, each a pure mapping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from lightbox.domain.actor import Actor
from lightbox.domain.audit import DETAIL_LIMIT, FIELD_LIMITS, AuditAction, AuditOutcome, AuditRecord
from lightbox.services import events as ev

SUCCESS, FAILURE = AuditOutcome.SUCCESS, AuditOutcome.FAILURE


def _cut(value: str | None, field: str) -> str | None:
    return value[: FIELD_LIMITS[field]] if value else None


def record(
    actor: Actor,
    action: AuditAction,
    outcome: AuditOutcome,
    *,
    user: str | None = None,
    patient_id: str | None = None,
    study: str | None = None,
    instances: int = 0,
    detail: str = "",
    at: datetime | None = None,
) -> AuditRecord:
    """A record of ``actor``'s act, its fields cut to the columns' sizes (the hash covers what is stored)."""
    return AuditRecord(
        time=at or datetime.now(UTC),
        action=action,
        outcome=outcome,
        protocol=actor.protocol.partition(":")[0][: FIELD_LIMITS["protocol"]],
        user=_cut(user or actor.user, "user"),
        ae_title=_cut(actor.ae_title, "ae_title"),
        address=_cut(actor.address, "address"),
        patient_id=_cut(patient_id, "patient_id"),
        study_instance_uid=_cut(study, "study"),
        instances=instances,
        detail=detail[:DETAIL_LIMIT],
    )


def stored(e: ev.InstanceStored) -> Iterator[AuditRecord]:
    yield record(
        e.source,
        AuditAction.STORE,
        SUCCESS,
        patient_id=e.patient_id,
        study=e.study_instance_uid,
        instances=1,
        detail=e.outcome,
    )


def rejected(e: ev.InstanceRejected) -> Iterator[AuditRecord]:
    detail = f"status 0x{e.dicom_status:04X}: {e.reason}"
    if e.sop_instance_uid:
        detail += f" (SOP Instance {e.sop_instance_uid})"
    yield record(e.source, AuditAction.STORE, FAILURE, detail=detail)


def replaced(e: ev.InstanceReplaced) -> Iterator[AuditRecord]:
    detail = f"SOP Instance {e.sop_instance_uid} replaced: sha256 {e.old_sha256} -> {e.new_sha256}"
    yield record(
        e.source,
        AuditAction.MODIFY,
        SUCCESS,
        patient_id=e.patient_id,
        study=e.study_instance_uid,
        instances=1,
        detail=detail,
    )


def queried(e: ev.StudyQueried) -> Iterator[AuditRecord]:
    keys = {name: value for name, value in e.keys.items() if value not in ("", None, [], {})}
    patient = keys.get("PatientID")
    study = keys.get("StudyInstanceUID")
    yield record(
        e.source,
        AuditAction.QUERY,
        SUCCESS,
        patient_id=patient if isinstance(patient, str) and not _wild(patient) else None,
        study=study if isinstance(study, str) and not _wild(study) else None,
        instances=e.matches,
        detail=f"{e.level} " + orjson.dumps(keys, default=str).decode(),
    )


def _wild(value: str) -> bool:
    """A pattern or a list matches many: the record names one patient or study only when the key did."""
    return any(c in value for c in "*?\\")


def retrieved(e: ev.InstancesRetrieved) -> Iterator[AuditRecord]:
    action = AuditAction.VIEW if e.purpose == "view" else AuditAction.RETRIEVE
    detail = f"to {e.destination}" if e.destination else ""
    counts = e.study_counts or (e.instances,) + (0,) * (len(e.study_instance_uids) - 1)
    for study, count in zip(e.study_instance_uids, counts, strict=False):
        yield record(e.source, action, SUCCESS, study=study, instances=count, detail=detail)


def deleted(e: ev.InstancesDeleted) -> Iterator[AuditRecord]:
    yield record(
        e.source,
        AuditAction.DELETE,
        SUCCESS,
        patient_id=e.patient_id,
        study=e.study_instance_uid,
        instances=len(e.sop_instance_uids),
        detail=f"{e.level} {e.uid}",
    )


def login(e: ev.LoginAttempted) -> Iterator[AuditRecord]:
    detail = e.method + (f": {e.reason}" if e.reason else "")
    yield record(e.source, AuditAction.LOGIN, SUCCESS if e.succeeded else FAILURE, user=e.user, detail=detail)


def changed(e: ev.SettingsChanged) -> Iterator[AuditRecord]:
    yield record(e.source, AuditAction.ADMIN, SUCCESS, detail=f"{e.what}: {e.subject}")


def exported(e: ev.InstancesExported) -> Iterator[AuditRecord]:
    how = "de-identified" if e.deidentified else "as stored"
    detail = f"{e.level} {e.uid} to {e.destination}, {how}"
    studies = e.study_instance_uids
    if len(studies) != 1:
        detail += f", {len(studies)} studies: {' '.join(studies)}"
    yield record(
        e.source,
        AuditAction.EXPORT,
        SUCCESS,
        patient_id=e.uid if e.level == "PATIENT" and "\\" not in e.uid else None,
        study=studies[0] if len(studies) == 1 else None,
        instances=e.instances,
        detail=detail,
    )


def shared(e: ev.ShareChanged) -> Iterator[AuditRecord]:
    link = e.link
    how = "de-identified" if link.deidentify else "as stored"
    detail = (
        f"link {link.id} {e.what}: by {link.created_by}, {how}, until {link.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    if link.note:
        detail += f" ({link.note})"
    yield record(e.source, AuditAction.SHARE, SUCCESS, study=link.study_instance_uid, detail=detail)


MAPPERS: dict[type, Callable[[Any], Iterator[AuditRecord]]] = {
    ev.InstanceStored: stored,
    ev.InstanceRejected: rejected,
    ev.InstanceReplaced: replaced,
    ev.StudyQueried: queried,
    ev.InstancesRetrieved: retrieved,
    ev.InstancesDeleted: deleted,
    ev.LoginAttempted: login,
    ev.SettingsChanged: changed,
    ev.InstancesExported: exported,
    ev.ShareChanged: shared,
}
