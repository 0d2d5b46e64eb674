"""The audit part of the Index port: append records to the chain, read them back, check the head."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence

from lightbox.domain.audit import AuditFilter, AuditRecord, ChainedRecord


class AuditStore(abc.ABC):
    @abc.abstractmethod
    def append_audit(self, records: Sequence[AuditRecord]) -> int:
        """Append ``records`` in order, each chained to the one before (``domain.audit.chain_hash``), in
        one transaction; the sequence number of the last. Safe with writers in other processes."""

    @abc.abstractmethod
    def audit_records(
        self, where: AuditFilter, *, before_seq: int | None = None, limit: int = 100
    ) -> list[ChainedRecord]:
        """The newest records matching ``where`` (older than ``before_seq``, to page), newest first."""

    @abc.abstractmethod
    def audit_chain(self, after_seq: int, limit: int) -> list[ChainedRecord]:
        """Records after ``after_seq`` in chain order, for verification."""

    @abc.abstractmethod
    def audit_head(self) -> tuple[int, str]:
        """The last record's sequence number and hash (0 and ``GENESIS`` with none)."""

    @abc.abstractmethod
    def study_patients(self, study_instance_uids: Iterable[str]) -> dict[str, str]:
        """The Patient ID of each study the index knows, for records that name only the study."""
