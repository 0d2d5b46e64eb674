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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from lightbox.domain.accounts import ALL_AE_PERMISSIONS, AePermission
from lightbox.domain.levels import Level
from lightbox.index.accounts import AccountStore
from lightbox.index.attributes import InstanceRows
from lightbox.index.audit import AuditStore
from lightbox.index.shares import ShareStore


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
    stored_by: str | None = None  # the archive user whose credentials stored it (a user may delete their own)
    # A re-encoding of the stored object (lossless compression): it replaces the instance only while the
    # instance is still the object with this checksum, whatever the duplicate policy, and the object it
    # replaces becomes a pending deletion in the same transaction.
    replaces_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class MetadataVersion:
    """What the headers of a study, a series or an instance are made of, in one digest: it changes when
    they may (an instance added, removed or replaced, a patient's, study's or series' attributes changed),
    so that a client's copy can be revalidated without building the headers."""

    digest: str
    instances: int


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
class TierQuery:
    """Studies that belong in ``tier`` (None: the first): stored before ``stored_before``, not accessed since
    ``accessed_before`` (a study never accessed counts from when it was stored), with a series of
    ``modality``; each condition given must hold."""

    tier: str | None
    stored_before: datetime | None = None
    accessed_before: datetime | None = None
    modality: str | None = None


@dataclass(frozen=True, slots=True)
class CompressionCandidate:
    """An instance stored in a native syntax that lossless compression has not tried yet."""

    id: int  # the row id: the keyset of the scan
    sop_instance_uid: str
    blob_key: str
    sha256: str
    size: int
    source: str
    stored_by: str | None
    ingested_at: datetime


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
    permissions: frozenset[AePermission] = ALL_AE_PERMISSIONS  # what it may ask of the archive


@dataclass(frozen=True, slots=True)
class IndexStatistics:
    patients: int
    studies: int
    series: int
    instances: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ContentFilter:
    """Exact unique-key values that a listing is restricted to; None: any. A key below the level listed
    (a series UID for studies) is an error."""

    patient_id: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A patient's main attributes (dates ``YYYYMMDD``) and what the archive holds of it."""

    id: int  # the row id: the keyset of listings, meaningless outside this index
    patient_id: str
    issuer_of_patient_id: str
    patient_name: str
    patient_birth_date: str | None
    patient_sex: str
    num_studies: int
    num_series: int
    num_instances: int
    size_bytes: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StudyRecord:
    id: int
    study_instance_uid: str
    patient_id: str
    issuer_of_patient_id: str
    patient_name: str
    study_date: str | None
    study_time: str | None
    accession_number: str
    study_id: str
    study_description: str
    referring_physician_name: str
    modalities_in_study: tuple[str, ...]
    num_series: int
    num_instances: int
    size_bytes: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    id: int
    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    modality: str
    series_number: int | None
    series_description: str
    series_date: str | None
    series_time: str | None
    body_part_examined: str
    num_instances: int
    size_bytes: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    id: int
    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    instance_number: int | None
    content_date: str | None
    content_time: str | None
    number_of_frames: int | None
    rows: int | None
    columns: int | None
    transfer_syntax_uid: str
    size: int
    sha256: str
    source: str
    ingested_at: datetime


@dataclass(frozen=True, slots=True)
class Deletion:
    """What one delete removed from the index. Its objects are recorded as pending deletions in the same
    transaction; the caller removes them from storage, then calls ``forget_blob_deletions``."""

    level: Level
    uid: str
    patient_id: str
    study_instance_uid: str
    sop_instance_uids: tuple[str, ...]
    blob_keys: tuple[str, ...]
    size_bytes: int


class Index(AccountStore, AuditStore, ShareStore, abc.ABC):
    """The archive's database: content, the AE registry and accounts (``index/accounts.py``)."""

    # --- lifecycle -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the schema (Alembic) to the version this code needs."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise when the index cannot be reached (for the health check)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # --- backup ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def snapshot(self, target: Path) -> None:
        """Write the whole index as it is at one moment (one read transaction) to ``target``, an SQLite
        database file at this schema revision, while writers go on."""

    @abc.abstractmethod
    def restore_from(self, source: Path) -> None:
        """Fill this empty index (not SQLite: that one is the snapshot file itself) with the rows of the
        snapshot ``source``, at this schema revision. Raises ``Conflict`` when it is not empty."""

    @abc.abstractmethod
    def restored_in_first_tier(self, new_keys: Mapping[str, str]) -> None:
        """After a restore, which puts every object in the first tier: point the instances whose objects had
        the keys of ``new_keys`` at the new ones (tier NULL), and drop every pending deletion (none of those
        objects was restored)."""

    @abc.abstractmethod
    def schema_revision(self) -> str | None:
        """The schema's migration revision."""

    @abc.abstractmethod
    def stored_objects(self, after_key: str | None, limit: int) -> list[InstanceLocation]:
        """Up to ``limit`` instances by blob key, after ``after_key`` (keyset paging): every object the
        index refers to."""

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
    def compression_candidates(
        self, transfer_syntaxes: Iterable[str], after_id: int, limit: int
    ) -> list[CompressionCandidate]:
        """Instances stored in one of ``transfer_syntaxes`` that compression has not tried, by row id."""

    @abc.abstractmethod
    def keep_uncompressed(self, sop_instance_uid: str, sha256: str, reason: str) -> None:
        """Record why the object with this checksum stays as it is (not tried again until replaced)."""

    @abc.abstractmethod
    def note_pending_deletions(
        self, sop_instance_uid: str, blob_keys: Iterable[str], not_before: datetime
    ) -> None:
        """Record objects about to be written that are to go unless a later transaction keeps them (a
        re-encoding: a crash before its index commit leaves nothing behind for recovery to index). They are
        never indexed, and removed from ``not_before`` on, once their writer can no longer be at work."""

    # --- storage tiers ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def studies_for_tier(self, rule: TierQuery, limit: int) -> list[str]:
        """Study Instance UIDs matching ``rule`` that hold an instance outside its tier, oldest first."""

    @abc.abstractmethod
    def objects_outside_tier(self, study_instance_uid: str, tier: str | None) -> list[tuple[str, str, str]]:
        """(SOP Instance UID, blob key, SHA-256) of the study's instances with objects outside ``tier``."""

    @abc.abstractmethod
    def move_object(
        self, sop_instance_uid: str, old_key: str, new_key: str, tier: str | None, readers_grace: timedelta
    ) -> bool:
        """Point the instance at ``new_key`` (a copy of ``old_key`` in ``tier``) if it still points at
        ``old_key``, in one transaction that makes ``old_key`` a pending deletion from ``readers_grace`` on
        and drops ``new_key``'s; False (nothing changed) when the instance changed or went meanwhile."""

    @abc.abstractmethod
    def note_study_access(self, study_instance_uids: Iterable[str], when: datetime) -> None:
        """Record that the studies were retrieved or viewed at ``when``."""

    @abc.abstractmethod
    def tier_usage(self) -> dict[str | None, tuple[int, int]]:
        """Instances and bytes per tier (None: the first)."""

    @abc.abstractmethod
    def studies_stored_before(self, when: datetime, modality: str | None, limit: int) -> list[str]:
        """Study Instance UIDs of studies first stored before ``when`` (with a series of ``modality``)."""

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

    # --- browse and delete -----------------------------------------------------------------------------
    @abc.abstractmethod
    def list_patients(
        self, where: ContentFilter, after_id: int | None, limit: int
    ) -> Sequence[PatientRecord]:
        """Up to ``limit`` patients by row id, after ``after_id`` (keyset paging)."""

    @abc.abstractmethod
    def list_studies(
        self, where: ContentFilter, after_id: int | None, limit: int
    ) -> Sequence[StudyRecord]: ...

    @abc.abstractmethod
    def list_series(
        self, where: ContentFilter, after_id: int | None, limit: int
    ) -> Sequence[SeriesRecord]: ...

    @abc.abstractmethod
    def list_instances(
        self, where: ContentFilter, after_id: int | None, limit: int
    ) -> Sequence[InstanceRecord]: ...

    @abc.abstractmethod
    def delete_content(self, level: Level, uid: str, only_by: str | None = None) -> Deletion:
        """Remove a study, series or instance (``level`` STUDY, SERIES or IMAGE, ``uid`` its unique key) with
        everything under it, in one transaction whose commit is durable before this returns.

        Parent counters are adjusted and parents left empty removed, as if the content had never been
        stored. The objects' keys are recorded as pending deletions in the same transaction, so that a crash
        before they are removed from storage never brings the content back. Raises ``NotFound``; with
        ``only_by``, ``Forbidden`` unless that user stored every instance to delete.
        """

    @abc.abstractmethod
    def pending_blob_deletions(self, limit: int, among: Iterable[str] | None = None) -> list[str]:
        """Keys of objects whose rows a delete removed and that may still be in storage, oldest first, that
        may be removed now; with ``among``, those of these keys, whenever they may be removed."""

    @abc.abstractmethod
    def forget_blob_deletions(self, keys: Iterable[str]) -> None:
        """Drop the pending deletion records of ``keys``: their objects are gone from storage."""

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

    @abc.abstractmethod
    def metadata_version(
        self, study_uid: str, series_uid: str | None = None, sop_instance_uid: str | None = None
    ) -> MetadataVersion | None:
        """The version of what ``documents`` gives for the same selection, read in one transaction; None
        when the selection holds nothing."""

    # --- remote AE registry ----------------------------------------------------------------------------
    @abc.abstractmethod
    def add_remote_ae(self, ae: RemoteAE) -> None: ...

    @abc.abstractmethod
    def remove_remote_ae(self, ae_title: str) -> None: ...

    @abc.abstractmethod
    def get_remote_ae(self, ae_title: str) -> RemoteAE | None: ...

    @abc.abstractmethod
    def list_remote_aes(self) -> list[RemoteAE]: ...
