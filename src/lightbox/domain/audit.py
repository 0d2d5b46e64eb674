"""Audit records: who did what to which patient's images, from where, and how it ended.

Records are chained: each one's hash covers its content and the previous record's hash, so that editing,
inserting or deleting a record anywhere breaks every hash after it (``lightbox audit verify``). The canonical
form hashed is a JSON array of the fields in a fixed order; it never changes for stored records.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

GENESIS = "0" * 64  # the "previous hash" of the first record


class AuditAction(enum.StrEnum):
    LOGIN = "login"
    QUERY = "query"
    RETRIEVE = "retrieve"  # objects sent to a system (C-GET, C-MOVE, WADO objects and frames)
    VIEW = "view"  # what a person looks at (metadata, rendered images)
    STORE = "store"
    DELETE = "delete"
    MODIFY = "modify"  # a stored object replaced
    EXPORT = "export"
    SHARE = "share"
    ADMIN = "admin"  # users, tokens and remote AEs changed


class AuditOutcome(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


# Column sizes; longer values are cut before hashing, so that the hash covers what is stored.
FIELD_LIMITS = {"protocol": 32, "user": 64, "ae_title": 16, "address": 64, "patient_id": 64, "study": 64}
DETAIL_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class AuditRecord:
    time: datetime  # UTC
    action: AuditAction
    outcome: AuditOutcome
    protocol: str
    user: str | None = None
    ae_title: str | None = None
    address: str | None = None
    patient_id: str | None = None
    study_instance_uid: str | None = None
    instances: int = 0  # objects stored, sent or deleted; the matches of a query
    detail: str = ""

    def canonical(self, seq: int) -> bytes:
        fields = [
            seq,
            self.time.astimezone(UTC).isoformat(timespec="microseconds"),
            self.action.value,
            self.outcome.value,
            self.protocol,
            self.user,
            self.ae_title,
            self.address,
            self.patient_id,
            self.study_instance_uid,
            self.instances,
            self.detail,
        ]
        return orjson.dumps(fields)


@dataclass(frozen=True, slots=True)
class ChainedRecord:
    seq: int  # 1, 2, 3... without gaps
    record: AuditRecord
    hash: str

    def fields(self) -> dict[str, object]:
        """The record as named values, for listings (the API's and the CLI's)."""
        r = self.record
        return {
            "seq": self.seq,
            "time": r.time,
            "action": r.action.value,
            "outcome": r.outcome.value,
            "protocol": r.protocol,
            "user": r.user,
            "ae_title": r.ae_title,
            "address": r.address,
            "patient_id": r.patient_id,
            "study_instance_uid": r.study_instance_uid,
            "instances": r.instances,
            "detail": r.detail,
            "hash": self.hash,
        }


def chain_hash(previous: str, seq: int, record: AuditRecord) -> str:
    return hashlib.sha256(previous.encode("ascii") + b"\n" + record.canonical(seq)).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What an administrator looks for; every given field must match (times: ``since`` <= t < ``until``)."""

    patient_id: str | None = None
    user: str | None = None
    ae_title: str | None = None
    action: AuditAction | None = None
    study_instance_uid: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What ``verify`` found: the records checked, and the first that does not hold (None: all hold)."""

    checked: int
    head_seq: int
    head_hash: str
    broken_at: int | None = None
    problem: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None
