"""GET /api/audit: the audit trail for administrators, newest first, with filters and keyset paging."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, BeforeValidator, Field

from lightbox.api import schemas
from lightbox.app import Archive
from lightbox.domain.audit import AuditAction, AuditFilter, ChainedRecord
from lightbox.services.audit import MAX_LIMIT


class AuditEntry(BaseModel):
    seq: int = Field(description="Place in the chain: 1, 2, 3...")
    time: datetime
    action: str = Field(description=", ".join(a.value for a in AuditAction))
    outcome: str = Field(description="success or failure")
    protocol: str = Field(description="How the act came: dimse, stow, qido, wado, http, api, cli...")
    user: str | None
    ae_title: str | None
    address: str | None = Field(description="The client's network address")
    patient_id: str | None
    study_instance_uid: str | None
    instances: int = Field(description="Objects stored, sent, viewed or deleted; a query's matches")
    detail: str
    hash: str = Field(description="SHA-256 over this record and the previous record's hash")


class AuditPage(BaseModel):
    records: list[AuditEntry]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page; null at the end")


def _entry(chained: ChainedRecord) -> AuditEntry:
    return AuditEntry.model_validate(chained.fields())


def _iso_only(value: object) -> object:
    """A time as ISO 8601 text only: pydantic would also take a number of seconds since 1970."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("an ISO 8601 date or date-time, such as 2026-11-01T08:00:00Z")
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]


def _utc(moment: datetime | None) -> datetime | None:
    """A time without an offset is UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def router(archive: Archive, executor: Executor) -> APIRouter:
    routes = APIRouter(prefix="/api", tags=["audit"])

    @routes.get(
        "/audit",
        summary="The audit trail, newest first",
        description="Who logged in, searched, retrieved, viewed, stored, deleted, changed, exported or "
        "shared what, from where, and how it ended. Every filter given must match; times are ISO 8601 (UTC "
        "unless an offset is given), `since` included and `until` excluded. Administrators only.",
        response_model=AuditPage,
        responses=schemas.problem_responses(400),
    )
    async def audit(
        patient: Annotated[str | None, Query(max_length=64, description="Patient ID")] = None,
        user: Annotated[str | None, Query(max_length=64, description="User name")] = None,
        ae: Annotated[str | None, Query(max_length=16, description="Calling AE title")] = None,
        action: AuditAction | None = None,
        study: Annotated[str | None, Query(max_length=64, description="Study Instance UID")] = None,
        since: IsoTime | None = None,
        until: IsoTime | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        before: Annotated[
            int | None, Query(ge=1, le=2**63 - 1, description="Only records older than this")
        ] = None,
    ) -> Any:
        where = AuditFilter(patient, user, ae, action, study, _utc(since), _utc(until))
        records = await asyncio.get_running_loop().run_in_executor(
            executor, lambda: archive.audit.list(where, before_seq=before, limit=limit)
        )
        more = len(records) == limit and records[-1].seq > 1
        return AuditPage(records=[_entry(r) for r in records], next_before=records[-1].seq if more else None)

    return routes
