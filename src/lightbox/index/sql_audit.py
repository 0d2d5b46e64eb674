"""The audit trail on SQL (SQLite and PostgreSQL): the AuditStore part of SqlIndex."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, RowMapping, insert, select, update

from lightbox.domain.audit import (
    AuditAction,
    AuditFilter,
    AuditOutcome,
    AuditRecord,
    ChainedRecord,
    chain_hash,
)
from lightbox.index.audit import AuditStore
from lightbox.index.models import audit_head, audit_log, patients, studies
from lightbox.index.utc import aware

T = TypeVar("T")
_HEAD = 1  # the id of audit_head's one row


class SqlAudit(AuditStore):
    """Mixed into SqlIndex, whose units of work it runs in."""

    @abc.abstractmethod
    def read(self, fn: Callable[[Connection], T]) -> T:
        """SqlIndex's read-only unit of work."""

    @abc.abstractmethod
    def write(self, fn: Callable[[Connection], T]) -> T:
        """SqlIndex's read-write unit of work."""

    def append_audit(self, records: Sequence[AuditRecord]) -> int:
        def run(conn: Connection) -> int:
            # FOR UPDATE: writers on other nodes wait here (SQLite: the write transaction is the lock)
            head = conn.execute(select(audit_head).where(audit_head.c.id == _HEAD).with_for_update()).one()
            seq, previous = int(head.seq), str(head.hash)
            rows = []
            for record in records:
                seq += 1
                previous = chain_hash(previous, seq, record)
                rows.append(_row(seq, record, previous))
            if rows:
                conn.execute(insert(audit_log), rows)
                conn.execute(
                    update(audit_head).where(audit_head.c.id == _HEAD).values(seq=seq, hash=previous)
                )
            return seq

        return self.write(run)

    def audit_records(
        self, where: AuditFilter, *, before_seq: int | None = None, limit: int = 100
    ) -> list[ChainedRecord]:
        conditions = _conditions(where)
        if before_seq is not None:
            conditions.append(audit_log.c.seq < before_seq)
        query = select(audit_log).where(*conditions).order_by(audit_log.c.seq.desc()).limit(limit)
        return self.read(lambda conn: [_chained(r._mapping) for r in conn.execute(query)])

    def audit_chain(self, after_seq: int, limit: int) -> list[ChainedRecord]:
        query = select(audit_log).where(audit_log.c.seq > after_seq).order_by(audit_log.c.seq).limit(limit)
        return self.read(lambda conn: [_chained(r._mapping) for r in conn.execute(query)])

    def audit_head(self) -> tuple[int, str]:
        row = self.read(lambda conn: conn.execute(select(audit_head).where(audit_head.c.id == _HEAD)).one())
        return int(row.seq), str(row.hash)

    def study_patients(self, study_instance_uids: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(study_instance_uids))
        if not wanted:
            return {}
        query = (
            select(studies.c.study_instance_uid, patients.c.patient_id)
            .join(patients, patients.c.id == studies.c.patient_fk)
            .where(studies.c.study_instance_uid.in_(wanted))
        )
        return self.read(lambda conn: {str(r[0]): str(r[1]) for r in conn.execute(query)})


def _row(seq: int, record: AuditRecord, digest: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "time": record.time.astimezone(UTC),
        "action": record.action.value,
        "outcome": record.outcome.value,
        "protocol": record.protocol,
        "user_name": record.user,
        "ae_title": record.ae_title,
        "address": record.address,
        "patient_id": record.patient_id,
        "study_instance_uid": record.study_instance_uid,
        "instances": record.instances,
        "detail": record.detail,
        "hash": digest,
    }


def _chained(row: RowMapping) -> ChainedRecord:
    record = AuditRecord(
        time=aware(row["time"]),
        action=AuditAction(row["action"]),
        outcome=AuditOutcome(row["outcome"]),
        protocol=row["protocol"],
        user=row["user_name"],
        ae_title=row["ae_title"],
        address=row["address"],
        patient_id=row["patient_id"],
        study_instance_uid=row["study_instance_uid"],
        instances=int(row["instances"]),
        detail=row["detail"],
    )
    return ChainedRecord(int(row["seq"]), record, row["hash"])


def _conditions(where: AuditFilter) -> list[ColumnElement[bool]]:
    c = audit_log.c
    conditions: list[ColumnElement[bool]] = []
    for column, value in (
        (c.patient_id, where.patient_id),
        (c.user_name, where.user),
        (c.ae_title, where.ae_title),
        (c.study_instance_uid, where.study_instance_uid),
        (c.action, where.action.value if where.action else None),
    ):
        if value is not None:
            conditions.append(column == value)
    # In UTC: SQLite keeps the times as UTC text without an offset, compared as text
    if where.since is not None:
        conditions.append(c.time >= where.since.astimezone(UTC))
    if where.until is not None:
        conditions.append(c.time < where.until.astimezone(UTC))
    return conditions
