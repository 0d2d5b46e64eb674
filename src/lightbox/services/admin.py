"""Administration, read side: pages of patients, studies, series and instances with their counters and
sizes, one entity by its UID, statistics, and what the running system is. Deletes are in ``manage``.

Pages come by keyset: the cursor is the row id of the last item, so a page costs the same however deep
the client reads, and concurrent stores or deletes never make it skip or repeat an item.
"""

from __future__ import annotations

import platform
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from lightbox import __version__
from lightbox.config import Settings
from lightbox.domain.errors import InvalidQuery, NotFound
from lightbox.domain.uids import is_valid_uid
from lightbox.index.base import (
    ContentFilter,
    Index,
    IndexStatistics,
    InstanceRecord,
    PatientRecord,
    SeriesRecord,
    StudyRecord,
)

DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_CURSOR = 2**63 - 1  # row ids are 64-bit signed integers on both engines
_PATIENT_ID = re.compile(r"[^\\\x00-\x1f]{1,64}")  # PS3.5 LO: 64 characters, no backslash or controls

R = TypeVar("R", PatientRecord, StudyRecord, SeriesRecord, InstanceRecord)


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    items: Sequence[R]
    next_cursor: int | None  # pass it back for the next page; None: this was the last


@dataclass(frozen=True, slots=True)
class SystemInfo:
    version: str
    python_version: str
    started_at: datetime
    uptime_seconds: float
    database_engine: str
    database_url: str
    storage_url: str
    data_dir: str
    settings: dict[str, Any]


class AdminService:
    def __init__(self, index: Index, settings: Settings) -> None:
        self.index = index
        self.settings = settings
        self._started_at = datetime.now(UTC)
        self._started = time.monotonic()

    # --- listings --------------------------------------------------------------------------------------
    def patients(self, where: ContentFilter, cursor: int | None, limit: int) -> Page[PatientRecord]:
        return self._page(self.index.list_patients, where, cursor, limit)

    def studies(self, where: ContentFilter, cursor: int | None, limit: int) -> Page[StudyRecord]:
        return self._page(self.index.list_studies, where, cursor, limit)

    def series(self, where: ContentFilter, cursor: int | None, limit: int) -> Page[SeriesRecord]:
        return self._page(self.index.list_series, where, cursor, limit)

    def instances(self, where: ContentFilter, cursor: int | None, limit: int) -> Page[InstanceRecord]:
        return self._page(self.index.list_instances, where, cursor, limit)

    def _page(
        self,
        fetch: Callable[[ContentFilter, int | None, int], Sequence[R]],
        where: ContentFilter,
        cursor: int | None,
        limit: int,
    ) -> Page[R]:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidQuery(f"limit {limit} is out of range 1-{MAX_PAGE}")
        if cursor is not None and not 0 <= cursor <= MAX_CURSOR:
            raise InvalidQuery(f"cursor {cursor} is not one this archive gave")
        _check_filter(where)
        rows = fetch(where, cursor, limit + 1)  # one more tells whether another page follows
        if len(rows) > limit:
            return Page(rows[:limit], rows[limit - 1].id)
        return Page(rows, None)

    # --- one entity ------------------------------------------------------------------------------------
    def study(self, uid: str) -> StudyRecord:
        return self._one(self.index.list_studies, ContentFilter(study_instance_uid=uid), "study", uid)

    def one_series(self, uid: str) -> SeriesRecord:
        return self._one(self.index.list_series, ContentFilter(series_instance_uid=uid), "series", uid)

    def instance(self, uid: str) -> InstanceRecord:
        return self._one(self.index.list_instances, ContentFilter(sop_instance_uid=uid), "instance", uid)

    @staticmethod
    def _one(
        fetch: Callable[[ContentFilter, int | None, int], Sequence[R]],
        where: ContentFilter,
        noun: str,
        uid: str,
    ) -> R:
        if not is_valid_uid(uid):
            raise InvalidQuery(f"{uid!r} is not a valid UID")
        found = fetch(where, None, 1)
        if not found:
            raise NotFound(f"no {noun} {uid} is stored")
        return found[0]

    # --- the archive as a whole ------------------------------------------------------------------------
    def statistics(self) -> IndexStatistics:
        return self.index.statistics()

    def system(self) -> SystemInfo:
        s = self.settings
        return SystemInfo(
            version=__version__,
            python_version=platform.python_version(),
            started_at=self._started_at,
            uptime_seconds=round(time.monotonic() - self._started, 3),
            database_engine=_engine(s.database_url),
            database_url=redact_url(s.database_url),
            storage_url=redact_url(s.storage_url),
            data_dir=str(s.data_dir.resolve()),
            settings={
                "ae_title": s.ae_title,
                "host": s.host,
                "dicom_port": s.dicom_port,
                "http_port": s.http_port,
                "log_level": s.log_level,
                "duplicate_policy": s.ingest.duplicate_policy.value,
                "ingest_workers": s.ingest.workers,
                "database_pool_size": s.database.pool_size,
                "database_synchronous_commit": s.database.synchronous_commit,
                "max_associations": s.network.max_associations,
                "max_pdu_length": s.network.max_pdu_length,
                "max_async_operations": s.network.max_async_operations,
                "calling_ae_check": s.network.calling_ae_check,
            },
        )


def _check_filter(where: ContentFilter) -> None:
    if where.patient_id is not None and not _PATIENT_ID.fullmatch(where.patient_id):
        raise InvalidQuery(f"patient_id {where.patient_id!r} is not a valid Patient ID")
    for name in ("study_instance_uid", "series_instance_uid", "sop_instance_uid"):
        value = getattr(where, name)
        if value is not None and not is_valid_uid(value):
            raise InvalidQuery(f"{name} {value!r} is not a valid UID")


def _engine(url: str) -> str:
    scheme = urlsplit(url).scheme.split("+", 1)[0]
    return "postgresql" if scheme == "postgres" else scheme


def redact_url(url: str) -> str:
    """``url`` without its password and its query (where drivers take credentials and tokens)."""
    parts = urlsplit(url)
    base = url.split("?", 1)[0].split("#", 1)[0]
    if parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        base = base.replace(parts.netloc, f"{parts.username or ''}:***@{host}", 1)
    return base
