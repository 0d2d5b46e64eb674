"""Reading the audit trail: listings with filters for administrators, and the check of its hash chain."""

from __future__ import annotations

from collections.abc import Callable

from lightbox.audit.recorder import AuditRecorder
from lightbox.domain.audit import GENESIS, AuditFilter, ChainedRecord, ChainReport, chain_hash
from lightbox.domain.errors import InvalidQuery
from lightbox.index.audit import AuditStore

MAX_LIMIT = 1000
_VERIFY_BATCH = 5000


class AuditService:
    def __init__(self, store: AuditStore, recorder: AuditRecorder | None = None) -> None:
        self.store = store
        self.recorder = recorder  # None when recording is off (audit.enabled = false)

    def list(
        self, where: AuditFilter, *, before_seq: int | None = None, limit: int = 100
    ) -> list[ChainedRecord]:
        """The newest records matching ``where``, newest first; page with ``before_seq`` (the last seen)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidQuery(f"limit must be between 1 and {MAX_LIMIT}")
        self.flush()
        return self.store.audit_records(where, before_seq=before_seq, limit=limit)

    def flush(self) -> None:
        """Write the records still waiting, so that what was just done shows."""
        if self.recorder is not None:
            self.recorder.flush()

    def verify(self, progress: Callable[[int], None] | None = None) -> ChainReport:
        """Recompute every record's hash from its content and the previous hash, in order: the first record
        whose hash, place in the sequence or link to the head does not hold is where the trail was changed."""
        self.flush()
        head_seq, head_hash = self.store.audit_head()
        previous, seq, checked = GENESIS, 0, 0
        while True:
            batch = self.store.audit_chain(seq, _VERIFY_BATCH)
            if not batch:
                break
            for chained in batch:
                if chained.seq != seq + 1:
                    return _broken(checked, head_seq, head_hash, seq + 1, "record missing (deleted)")
                seq = chained.seq
                expected = chain_hash(previous, seq, chained.record)
                if chained.hash != expected:
                    problem = "its content and its hash do not agree: the record was changed"
                    return _broken(checked, head_seq, head_hash, seq, problem)
                previous = chained.hash
                checked += 1
            if progress is not None:
                progress(checked)
        if (seq, previous) != (head_seq, head_hash):
            problem = (
                f"the chain ends at record {seq} but its head says {head_seq}: records were removed"
                if seq != head_seq
                else "the last record does not match the chain's head (edited)"
            )
            return _broken(checked, head_seq, head_hash, min(seq, head_seq) + 1, problem)
        return ChainReport(checked, head_seq, head_hash)


def _broken(checked: int, head_seq: int, head_hash: str, at: int, problem: str) -> ChainReport:
    return ChainReport(checked, head_seq, head_hash, at, problem)
