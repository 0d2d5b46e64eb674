"""The audit trail on every index engine: records chained by hash, append-only in the database, found by
patient, user, action and time, written by the recorder from the services' events; and any edit, removal or
truncation found by ``verify`` at the record where it happened."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from sqlalchemy.exc import DBAPIError

from lightbox.audit.recorder import AuditRecorder
from lightbox.domain.accounts import Role
from lightbox.domain.actor import Actor
from lightbox.domain.audit import GENESIS, AuditAction, AuditFilter, AuditOutcome, AuditRecord, chain_hash
from lightbox.domain.levels import Level
from lightbox.index.sql import SqlIndex
from lightbox.services.accounts import AccountService
from lightbox.services.audit import AuditService
from lightbox.services.events import EventBus
from lightbox.services.ingest import IngestService
from lightbox.services.manage import ManageService
from lightbox.services.query import QueryService
from lightbox.services.retrieve import RetrieveService
from lightbox.storage.filesystem import FileSystemBlobStore
from tests.support.dicom import part10

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _record(n: int, **fields: object) -> AuditRecord:
    values: dict[str, object] = {
        "time": T0 + timedelta(minutes=n),
        "action": AuditAction.VIEW,
        "outcome": AuditOutcome.SUCCESS,
        "protocol": "wado",
        "user": "alice",
        "address": "10.0.0.5",
        "patient_id": "P1",
        "study_instance_uid": "1.2.3",
        "instances": n,
        "detail": f"record {n} \u00e9",
    }
    values.update(fields)
    return AuditRecord(**values)  # type: ignore[arg-type]


def _tamper(index: SqlIndex, statement: str) -> None:
    """What someone with the database's password could do: lift the append-only triggers and edit."""
    with index.engine.begin() as conn:
        if index.dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_delete")
            conn.exec_driver_sql(statement)
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
            conn.exec_driver_sql(statement)
            conn.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


def test_records_are_chained_and_read_back_as_written(index: SqlIndex) -> None:
    assert index.audit_head() == (0, GENESIS)
    records = [_record(n) for n in range(1, 6)]
    assert index.append_audit(records[:2]) == 2
    assert index.append_audit(records[2:]) == 5
    chain = index.audit_chain(0, 100)
    assert [c.seq for c in chain] == [1, 2, 3, 4, 5]
    assert [c.record for c in chain] == records  # times, accents and all
    previous = GENESIS
    for chained in chain:
        assert chained.hash == chain_hash(previous, chained.seq, chained.record)
        previous = chained.hash
    assert index.audit_head() == (5, previous)
    report = AuditService(index).verify()
    assert (report.intact, report.checked, report.head_seq) == (True, 5, 5)


def test_filters_and_paging(index: SqlIndex) -> None:
    index.append_audit(
        [
            _record(1, patient_id="P1", user="alice"),
            _record(2, patient_id="P2", user="bob", action=AuditAction.QUERY),
            _record(3, patient_id="P1", user="bob", action=AuditAction.DELETE, study_instance_uid="1.2.9"),
            _record(
                4, patient_id=None, user=None, ae_title="CT1", protocol="dimse", action=AuditAction.STORE
            ),
        ]
    )
    audit = AuditService(index)

    def seqs(**where: object) -> list[int]:
        return [c.seq for c in audit.list(AuditFilter(**where))]  # type: ignore[arg-type]

    assert seqs() == [4, 3, 2, 1]  # newest first
    assert seqs(patient_id="P1") == [3, 1]
    assert seqs(user="bob") == [3, 2]
    assert seqs(ae_title="CT1") == [4]
    assert seqs(action=AuditAction.DELETE) == [3]
    assert seqs(study_instance_uid="1.2.9") == [3]
    assert seqs(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4)) == [3, 2]
    paris = timezone(timedelta(hours=1))  # another offset names the same instants
    assert seqs(since=datetime(2026, 11, 1, 9, 2, tzinfo=paris)) == [4, 3, 2]
    assert [c.seq for c in audit.list(AuditFilter(), limit=2)] == [4, 3]
    assert [c.seq for c in audit.list(AuditFilter(), before_seq=3, limit=2)] == [2, 1]


def test_the_database_refuses_updates_and_deletes(index: SqlIndex) -> None:
    index.append_audit([_record(1)])
    for statement in ("UPDATE audit_log SET patient_id = 'X'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), index.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert index.audit_chain(0, 10)[0].record.patient_id == "P1"


@pytest.mark.parametrize(
    ("statement", "broken_at"),
    [
        ("UPDATE audit_log SET patient_id = 'SOMEONE-ELSE' WHERE seq = 3", 3),
        ("UPDATE audit_log SET detail = 'nothing happened', hash = 'f' || substr(hash, 2) WHERE seq = 2", 2),
        ("UPDATE audit_log SET outcome = 'failure' WHERE seq = 5", 5),
        ("DELETE FROM audit_log WHERE seq = 4", 4),
        ("DELETE FROM audit_log WHERE seq = 5", 5),  # the newest: the head still names it
    ],
)
def test_verify_finds_where_the_trail_was_changed(index: SqlIndex, statement: str, broken_at: int) -> None:
    index.append_audit([_record(n) for n in range(1, 6)])
    _tamper(index, statement)
    report = AuditService(index).verify()
    assert not report.intact
    assert report.broken_at == broken_at, report.problem
    assert report.problem


def test_writers_in_parallel_extend_one_chain(index: SqlIndex) -> None:
    def write(worker: int) -> None:
        for n in range(10):
            index.append_audit([_record(n, user=f"w{worker}"), _record(n, user=f"w{worker}")])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = AuditService(index).verify()
    assert (report.intact, report.checked) == (True, 80)


@pytest.fixture
def services(index: SqlIndex, blob_store: FileSystemBlobStore) -> Iterator[tuple[EventBus, AuditService]]:
    events = EventBus()
    recorder = AuditRecorder(index, events, flush_seconds=60)  # flushed by the listings
    yield events, AuditService(index, recorder)
    recorder.close()


def test_the_recorder_writes_what_the_services_do(
    index: SqlIndex, blob_store: FileSystemBlobStore, services: tuple[EventBus, AuditService]
) -> None:
    events, audit = services
    ingest = IngestService(index, blob_store, events)
    study = generate_uid()
    modality = Actor("dimse", ae_title="CT1", address="10.0.0.7")
    for n in range(3):
        ingest.ingest([part10(StudyInstanceUID=study, PatientID="PID-7", InstanceNumber=n)], modality)
    with pytest.raises(Exception):  # noqa: B017 - whatever the error, the refusal is recorded
        ingest.ingest([b"not DICOM at all" * 20], modality)
    alice = Actor("wado", user="alice", address="10.0.0.5")
    retrieve = RetrieveService(index, blob_store, events)
    locations = list(retrieve.resolve(Level.STUDY, {"StudyInstanceUID": [study]}))
    retrieve.retrieved(alice, locations)
    retrieve.viewed(alice, study, 3)
    identifier = Dataset()
    identifier.PatientID, identifier.StudyInstanceUID = "PID-7", ""
    found = list(QueryService(index, events).find(Level.STUDY, identifier, source=Actor("qido", "bob")))
    assert len(found) == 1
    manage = ManageService(index, blob_store, ingest, events)
    manage.delete(Level.STUDY, study, Actor("api", user="alice", address="10.0.0.5"))
    accounts = AccountService(index, events=events)
    accounts.add_user("carol", Role.VIEWER, "carol's password")
    accounts.check_password("carol", "wrong password!", Actor("http", address="10.0.0.9"))

    rows = [c.record for c in reversed(audit.list(AuditFilter()))]
    summary = [
        (r.action, r.outcome, r.protocol, r.user or r.ae_title, r.patient_id, r.instances) for r in rows
    ]
    assert summary == [
        (AuditAction.STORE, AuditOutcome.SUCCESS, "dimse", "CT1", "PID-7", 3),  # three objects, one record
        (AuditAction.STORE, AuditOutcome.FAILURE, "dimse", "CT1", None, 0),
        (AuditAction.RETRIEVE, AuditOutcome.SUCCESS, "wado", "alice", "PID-7", 3),
        (AuditAction.VIEW, AuditOutcome.SUCCESS, "wado", "alice", "PID-7", 3),
        (AuditAction.QUERY, AuditOutcome.SUCCESS, "qido", "bob", "PID-7", 1),
        (AuditAction.DELETE, AuditOutcome.SUCCESS, "api", "alice", "PID-7", 3),
        (AuditAction.ADMIN, AuditOutcome.SUCCESS, "cli", None, None, 0),
        (AuditAction.LOGIN, AuditOutcome.FAILURE, "http", "carol", None, 0),
    ]
    assert {r.study_instance_uid for r in rows[:1] + rows[2:4] + rows[5:6]} == {study}
    assert rows[0].address == "10.0.0.7" and rows[2].address == "10.0.0.5"
    assert "wrong password" in rows[-1].detail
    assert audit.verify().intact
