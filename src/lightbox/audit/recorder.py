"""Turns service events into audit records and writes them in batches, off the services' threads.

Publishing must stay cheap (an ingest thread publishes once per object): a handler only maps the event and
appends the record to a list. A background thread appends the list to the chain every ``flush_seconds`` (or
sooner when it grows long), in one transaction. Objects stored, sent or viewed in one batch by the same actor
for the same study become one record with their count, as PS3.15 A.5's "instances transferred" message
counts a study's instances in one message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from lightbox.audit.records import MAPPERS
from lightbox.domain.audit import AuditAction, AuditOutcome, AuditRecord
from lightbox.index.audit import AuditStore
from lightbox.services.events import EventBus

log = logging.getLogger(__name__)

_COUNTED = {AuditAction.STORE, AuditAction.RETRIEVE, AuditAction.VIEW}
_MAX_BATCH = 2000  # wake the writer early past this many records
_MAX_PENDING = 200_000  # while the index refuses writes, keep at most this many (then drop the oldest)


class AuditRecorder:
    def __init__(self, store: AuditStore, events: EventBus, *, flush_seconds: float = 1.0) -> None:
        self._store = store
        self._flush_seconds = flush_seconds
        self._pending: list[AuditRecord] = []
        self._lock = threading.Lock()  # guards _pending
        self._writing = threading.Lock()  # one flush at a time keeps the records in order
        self._wake = threading.Event()
        self._stopped = False
        for event_type, mapper in MAPPERS.items():
            events.subscribe(event_type, self._handler(mapper))
        self._thread = threading.Thread(target=self._run, name="lightbox-audit", daemon=True)
        self._thread.start()

    def _handler(self, mapper: Callable[[Any], Iterator[AuditRecord]]) -> Callable[[Any], None]:
        def handle(event: Any) -> None:
            records = list(mapper(event))
            with self._lock:
                self._pending.extend(records)
                if len(self._pending) >= _MAX_BATCH:
                    self._wake.set()

        return handle

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the index is away: the records wait for the next round
                log.exception("could not write the audit trail; will retry")

    def flush(self) -> None:
        """Write what is pending now (also called before a listing, so that it shows the latest acts)."""
        with self._writing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                self._store.append_audit(_with_patients(self._store, coalesce(batch)))
            except BaseException:
                with self._lock:
                    self._pending[:0] = batch
                    if len(self._pending) > _MAX_PENDING:
                        lost = len(self._pending) - _MAX_PENDING
                        log.error("audit trail: %d records lost while the index refused writes", lost)
                        del self._pending[:lost]
                raise

    def close(self) -> None:
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=30)
        self.flush()


def coalesce(batch: list[AuditRecord]) -> list[AuditRecord]:
    """Successful stores, retrievals and views of one study by one actor become one record (the first
    one's time, the instances summed); everything else stays as it is, in order."""
    out: list[AuditRecord] = []
    merged: dict[tuple[Any, ...], int] = {}
    for record in batch:
        if record.action not in _COUNTED or record.outcome is not AuditOutcome.SUCCESS:
            out.append(record)
            continue
        key = (
            record.action,
            record.protocol,
            record.user,
            record.ae_title,
            record.address,
            record.patient_id,
            record.study_instance_uid,
            record.detail,
        )
        at = merged.get(key)
        if at is None:
            merged[key] = len(out)
            out.append(record)
        else:
            out[at] = replace(out[at], instances=out[at].instances + record.instances)
    return out


def _with_patients(store: AuditStore, batch: list[AuditRecord]) -> list[AuditRecord]:
    """Records that name a study but not its patient (a retrieve, a view) get the patient from the batch's
    other records (a study deleted since is named with its patient by its delete record) or the index."""
    patients = {r.study_instance_uid: r.patient_id for r in batch if r.study_instance_uid and r.patient_id}
    missing = {r.study_instance_uid for r in batch if r.study_instance_uid and not r.patient_id} - set(
        patients
    )
    if missing:
        patients.update(store.study_patients(s for s in missing if s))
    return [
        replace(r, patient_id=patients.get(r.study_instance_uid) or None)
        if r.study_instance_uid and not r.patient_id
        else r
        for r in batch
    ]
