"""Service events as audit records, and the batching rules of the recorder."""

from __future__ import annotations

from datetime import UTC, datetime

from lightbox.audit import records
from lightbox.audit.recorder import coalesce
from lightbox.domain.actor import Actor
from lightbox.domain.audit import GENESIS, AuditAction, AuditOutcome, chain_hash
from lightbox.services import events as ev

CT = Actor("dimse", ae_title="CT1", address="10.0.0.7")


def test_a_query_names_a_patient_or_study_only_when_its_key_names_one() -> None:
    one = next(records.queried(ev.StudyQueried(CT, "STUDY", {"PatientID": "P1", "StudyDate": ""}, 2)))
    assert (one.patient_id, one.instances, one.action) == ("P1", 2, AuditAction.QUERY)
    assert one.detail == 'STUDY {"PatientID":"P1"}'  # empty return keys left out
    many = next(
        records.queried(ev.StudyQueried(CT, "STUDY", {"PatientID": "P*", "StudyInstanceUID": "1.2"}, 9))
    )
    assert (many.patient_id, many.study_instance_uid) == (None, "1.2")


def test_a_retrieve_of_several_studies_makes_a_record_for_each() -> None:
    event = ev.InstancesRetrieved(CT, ("1.1", "1.2"), 5, 100, "retrieve", "STORESCP", (2, 3))
    out = list(records.retrieved(event))
    assert [(r.study_instance_uid, r.instances, r.detail) for r in out] == [
        ("1.1", 2, "to STORESCP"),
        ("1.2", 3, "to STORESCP"),
    ]


def test_long_values_are_cut_to_their_columns_before_hashing() -> None:
    actor = Actor("stow", user="u" * 200, address="a" * 100)
    record = records.record(actor, AuditAction.STORE, AuditOutcome.SUCCESS, detail="d" * 5000)
    assert (len(record.user or ""), len(record.address or ""), len(record.detail)) == (64, 64, 2000)


def test_stores_of_one_study_by_one_client_are_counted_in_one_record() -> None:
    def stored(study: str, actor: Actor = CT) -> ev.InstanceStored:
        return ev.InstanceStored(actor, "stored", "1.2.840.10008.5.1.4.1.1.2", "9", "8", study, 10, "P1")

    batch = [
        *records.stored(stored("1.1")),
        *records.login(ev.LoginAttempted(CT, "bob", False, "password", "wrong password")),
        *records.stored(stored("1.1")),
        *records.stored(stored("1.2")),
        *records.stored(stored("1.1", Actor("dimse", ae_title="MR1"))),
        *records.login(ev.LoginAttempted(CT, "bob", False, "password", "wrong password")),
    ]
    merged = coalesce(batch)
    assert [(r.action, r.study_instance_uid, r.ae_title, r.instances) for r in merged] == [
        (AuditAction.STORE, "1.1", "CT1", 2),
        (AuditAction.LOGIN, None, "CT1", 0),
        (AuditAction.STORE, "1.2", "CT1", 1),
        (AuditAction.STORE, "1.1", "MR1", 1),
        (AuditAction.LOGIN, None, "CT1", 0),  # failed logins are never merged
    ]
    assert merged[0].time == batch[0].time  # the first one's time


def test_the_hash_covers_every_field_and_the_previous_hash() -> None:
    record = records.record(CT, AuditAction.VIEW, AuditOutcome.SUCCESS, at=datetime(2026, 1, 1, tzinfo=UTC))
    digest = chain_hash(GENESIS, 1, record)
    assert digest == chain_hash(GENESIS, 1, record)
    assert digest != chain_hash(GENESIS, 2, record)
    assert digest != chain_hash("1" * 64, 1, record)
    for changed in (
        records.record(CT, AuditAction.VIEW, AuditOutcome.FAILURE, at=record.time),
        records.record(CT, AuditAction.VIEW, AuditOutcome.SUCCESS, at=record.time, detail="x"),
        records.record(
            Actor("dimse", ae_title="CT2"), AuditAction.VIEW, AuditOutcome.SUCCESS, at=record.time
        ),
    ):
        assert chain_hash(GENESIS, 1, changed) != digest
