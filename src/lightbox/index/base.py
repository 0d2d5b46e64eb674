"""The Index port: what the services ask of the index, in domain terms.

Each method is one unit of work (read-only or read-write) that the backend runs in one transaction and retries
on serialization failures. The SQL backend (``sql.py``) serves SQLite and PostgreSQL; the contract suite in
``tests/contract`` runs against both.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lightbox.domain.levels import Level
from lightbox.index.attributes import InstanceRows


class DuplicatePolicy(enum.StrEnum):
    """What to do with an object whose SOP Instance UID is stored already with different bytes."""

    REPLACE = "replace"  # keep the newest; the replacement is recorded
    KEEP = "keep"  # keep what is stored; the new object is acknowledged and dropped
    REJECT = "reject"  # refuse the new object with a failure status


class StoreOutcome(enum.StrEnum):
    STORED = "stored"
    ALREADY_PRESENT = "already-present"  # same SOP Instance UID, same bytes
    REPLACED = "replaced"
    KEPT_EXISTING = "kept-existing"


@dataclass(frozen=True, slots=True)
class NewInstance:
    """A durable object ready to be indexed."""

    rows: InstanceRows
    blob_key: str
    size: int
    sha256: str
    transfer_syntax_uid: str
    ingested_at: datetime
    source: str
    # The top-level bulk data elements: (tag, VR, element offset in the object, or -1 when unknown)
    bulk: tuple[tuple[str, str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class StoreResult:
    outcome: StoreOutcome
    # A blob that the transaction made obsolete (the replaced object, or the new one when it was not kept);
    # the caller deletes it after the commit.
    obsolete_blob_key: str | None = None
    replaced_sha256: str | None = None  # with REPLACED: the checksum of the object replaced


@dataclass(frozen=True, slots=True)
class InstanceLocation:
    """Where a stored instance lives and what a retrieve needs to know before opening it."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    blob_key: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class InstanceDocument:
    """What the index keeps of one instance's header, for metadata: the instance's own attributes, those of
    its series, study and patient (shared by every instance of the series: the same dict object), and its
    bulk data elements (None when indexed before they were kept)."""

    location: InstanceLocation
    parents: Mapping[str, Any]
    attrs: Mapping[str, Any]
    bulk: Sequence[Sequence[Any]] | None


@dataclass(frozen=True, slots=True)
class RemoteAE:
    ae_title: str
    host: str
    port: int
    description: str = ""


@dataclass(frozen=True, slots=True)
class IndexStatistics:
    patients: int
    studies: int
    series: int
    instances: int
    size_bytes: int


class Index(abc.ABC):
    # --- lifecycle -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the schema (Alembic) to the version this code needs."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise when the index cannot be reached (for the health check)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # --- ingest ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def find_instance(self, sop_instance_uid: str) -> InstanceLocation | None: ...

    @abc.abstractmethod
    def store_instance(
        self,
        new: NewInstance,
        policy: DuplicatePolicy,
        before_commit: Callable[[], object] | None = None,
    ) -> StoreResult:
        """Index an object in one transaction: patient, study, series, instance and counters.

        ``before_commit`` runs inside the transaction, after its statements and before it commits; it
        returns once the object is durable (its fsync may run meanwhile), and an exception from it rolls
        the transaction back. Safe under concurrent stores of the same study. Raises ``DuplicateRejected``
        under the REJECT policy.
        """

    @abc.abstractmethod
    def indexed_blob_keys(self, keys: Iterable[str]) -> set[str]:
        """The subset of ``keys`` that an instance refers to."""

    @abc.abstractmethod
    def latest_ingest_time(self) -> datetime | None:
        """When the most recently indexed object was ingested; start-up recovery scans from there."""

    @abc.abstractmethod
    def clear_content(self) -> None:
        """Remove every patient, study, series and instance (``reindex``); the AE registry stays."""

    @abc.abstractmethod
    def statistics(self) -> IndexStatistics: ...

    # --- query -----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def search(self, spec: Any, after_id: int | None, limit: int) -> Sequence[Mapping[str, Any]]:
        """One page of entities matching ``spec`` (a ``lightbox.index.matching.SearchSpec``), by id."""

    # --- retrieve --------------------------------------------------------------------------------------
    @abc.abstractmethod
    def locate(self, level: Level, uids: Mapping[str, Sequence[str]]) -> Iterator[InstanceLocation]:
        """Every stored instance under the selection: ``uids`` maps unique-key keywords (PatientID,
        StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID) to the values requested at or above ``level``."""

    @abc.abstractmethod
    def documents(
        self, study_uid: str, series_uid: str | None = None, sop_instance_uid: str | None = None
    ) -> Iterator[InstanceDocument]:
        """The stored headers of a study, a series of it or one instance, by series then instance number;
        read in pages, so a large study is never held whole."""

    # --- remote AE registry ----------------------------------------------------------------------------
    @abc.abstractmethod
    def add_remote_ae(self, ae: RemoteAE) -> None: ...

    @abc.abstractmethod
    def remove_remote_ae(self, ae_title: str) -> None: ...

    @abc.abstractmethod
    def get_remote_ae(self, ae_title: str) -> RemoteAE | None: ...

    @abc.abstractmethod
    def list_remote_aes(self) -> list[RemoteAE]: ...
