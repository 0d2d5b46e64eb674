"""Composition root: the only place that knows which backends exist and builds the services on them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from lightbox import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from lightbox.audit.recorder import AuditRecorder
from lightbox.config import Settings
from lightbox.dicomnet.association import AcceptorSettings
from lightbox.domain.errors import ConfigurationError
from lightbox.formats.codecs import prefer_fast_decoders
from lightbox.index.base import Index
from lightbox.metrics import Metrics
from lightbox.services.accounts import AccountService
from lightbox.services.admin import AdminService
from lightbox.services.audit import AuditService
from lightbox.services.backup import BackupService
from lightbox.services.backup_layout import objects_path
from lightbox.services.compression import CompressionService
from lightbox.services.events import EventBus
from lightbox.services.export import ExportService
from lightbox.services.ingest import IngestService
from lightbox.services.lifecycle import AccessNotes, LifecycleService
from lightbox.services.manage import ManageService
from lightbox.services.metadata import MetadataService
from lightbox.services.query import QueryService
from lightbox.services.restore import RestoreService
from lightbox.services.retrieve import RetrieveService
from lightbox.services.shares import ShareService
from lightbox.services.verify import VerifyService
from lightbox.storage.base import BlobStore
from lightbox.storage.replicated import ReplicatedBlobStore

log = logging.getLogger(__name__)


def build_index(url: str, settings: Settings) -> Index:
    if url.startswith(("sqlite:", "postgresql", "postgres:")):
        from lightbox.index.sql import SqlIndex

        return SqlIndex(
            url,
            synchronous_commit=settings.database.synchronous_commit,
            pool_size=settings.database.pool_size,
        )
    raise ConfigurationError(f"unsupported database URL {url!r}")


def build_blob_store(url: str, settings: Settings) -> BlobStore:
    """The store of ``url``; with ``storage.tiers``, the tiers as one store whose first tier is ``url``'s."""
    return _tiered(url, settings.storage.tiers, settings, spool="pending")


def _tiered(url: str, tiers: Mapping[str, str], settings: Settings, spool: str) -> BlobStore:
    """``url``'s store, or with ``tiers`` (name: URL) the tiers as one store; ``spool``: the data
    directory's folder for the pending writes of S3 stores."""
    first = _one_store(url, settings, spool)
    if not tiers:
        return first
    from lightbox.storage.tiered import TieredBlobStore

    return TieredBlobStore(
        first, {name: _one_store(tier_url, settings, spool) for name, tier_url in tiers.items()}
    )


def _one_store(url: str, settings: Settings, spool: str) -> BlobStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from lightbox.storage.filesystem import FileSystemBlobStore

        return FileSystemBlobStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from lightbox.storage.s3 import S3BlobStore, S3Options

        storage = settings.storage
        secret = storage.s3_secret_access_key
        options = S3Options(
            bucket=parsed.netloc,
            prefix=unquote(parsed.path),
            endpoint_url=storage.s3_endpoint,
            region=storage.s3_region,
            access_key_id=storage.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            part_size=storage.s3_part_size_mib << 20,
            connections=max(16, 2 * settings.ingest.workers),
        )
        # Objects being written wait on the local disk until their upload
        return S3BlobStore(options, spool=settings.data_dir / spool)
    raise ConfigurationError(f"unsupported storage URL {url!r}")


@dataclass(frozen=True)
class Storage:
    """The store the services use, and the backends under it (the scrub checks each copy on its own)."""

    blobs: BlobStore
    primary: BlobStore
    replica: BlobStore | None


def build_storage(settings: Settings) -> Storage:
    """The blob store of ``storage.url`` (and its tiers); with ``storage.replica_url``, one that replicates
    every object into the replica."""
    primary = build_blob_store(settings.storage_url, settings)
    replica_url = settings.storage.replica_url
    if replica_url is None:
        return Storage(primary, primary, None)
    taken = [settings.storage_url, *settings.storage.tiers.values()]
    if replica_url.rstrip("/") in {url.rstrip("/") for url in taken}:
        raise ConfigurationError("storage.replica_url names a store of storage.url or storage.tiers")
    replica = _replica_store(replica_url, settings)
    return Storage(ReplicatedBlobStore(primary, replica), primary, replica)


def _replica_store(url: str, settings: Settings) -> BlobStore:
    """The replica at ``url``, with the primary's tiers as folders of it (``@cold/...``), so that it holds
    each object under the key the archive knows it by. Its own pending folder: an S3 primary and an S3
    replica would otherwise write the same pending file."""
    from lightbox.storage.tiered import tier_key

    base = url.rstrip("/")
    mirrored = {name: f"{base}/{tier_key(name, '')}" for name in settings.storage.tiers}
    return _tiered(url, mirrored, settings, spool="pending-replica")


def dicom_settings(settings: Settings) -> AcceptorSettings:
    """The archive's side of its DICOM associations: those it accepts, and those it opens itself (to a
    C-MOVE destination, or to verify a remote AE)."""
    return AcceptorSettings(
        settings.ae_title,
        max_pdu_length=settings.network.max_pdu_length,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        idle_timeout=settings.network.idle_timeout,
        max_associations=settings.network.max_associations,
        max_async_operations=settings.network.max_async_operations,
    )


@dataclass
class Archive:
    """The running archive's services, for the adapters and the CLI."""

    settings: Settings
    index: Index
    blobs: BlobStore
    events: EventBus
    ingest: IngestService
    manage: ManageService
    retrieve: RetrieveService
    query: QueryService
    metadata: MetadataService
    admin: AdminService
    metrics: Metrics
    accounts: AccountService
    audit: AuditService
    export: ExportService
    shares: ShareService
    compression: CompressionService
    lifecycle: LifecycleService
    verify: VerifyService
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.ingest.close()
            if self.audit.recorder is not None:
                self.audit.recorder.close()  # the last records, before the index goes
            self.index.close()


def build_archive(settings: Settings, *, migrate: bool = True) -> Archive:
    """Backends named in the settings, the schema at the current version, and the services on them."""
    prefer_fast_decoders()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    index = build_index(settings.database_url, settings)
    if migrate:
        index.migrate()
    storage = build_storage(settings)
    blobs = storage.blobs
    events = EventBus()
    metrics = Metrics()  # a registry per archive: several archives in one process keep apart
    metrics.subscribe(events)
    ingest = IngestService(index, blobs, events, settings.ingest.duplicate_policy)
    manage = ManageService(index, blobs, ingest, events)
    retrieve = RetrieveService(index, blobs, events)
    query = QueryService(index, events)
    metadata = MetadataService(index, blobs)
    admin = AdminService(index, settings)
    accounts = AccountService(index, events=events)
    recorder = (
        AuditRecorder(index, events, flush_seconds=settings.audit.flush_seconds)
        if settings.audit.enabled
        else None
    )
    audit = AuditService(index, recorder)
    export = ExportService(retrieve, events)
    shares = ShareService(index, events)
    compression = CompressionService(index, blobs, ingest, settings.storage.compression)
    lifecycle = LifecycleService(index, blobs, manage, settings.storage)
    AccessNotes(index, events)  # for the lifecycle rules on last access
    verify = VerifyService(index, storage.primary, storage.replica)
    return Archive(
        settings,
        index,
        blobs,
        events,
        ingest,
        manage,
        retrieve,
        query,
        metadata,
        admin,
        metrics,
        accounts,
        audit,
        export,
        shares,
        compression,
        lifecycle,
        verify,
    )


# --- backup and restore --------------------------------------------------------------------------------
@contextlib.contextmanager
def opened_snapshot(path: Path) -> Iterator[Index]:
    """An index snapshot (an SQLite file) opened as an Index; left one self-contained file when closed."""
    from lightbox.index.snapshot import finish_sqlite_file
    from lightbox.index.sql import SqlIndex

    index = SqlIndex(f"sqlite:///{path.resolve()}", pool_size=2)
    try:
        yield index
    finally:
        index.close()
        finish_sqlite_file(path)


def folder_store(folder: Path, tiers: Iterable[str] = ()) -> BlobStore:
    """A blob store in a local folder: a backup's objects, or a restored archive's. Objects of other tiers
    (keys ``@<tier>/...``) go in ``<folder>/@<tier>``: ``tiers`` and those found there."""
    from lightbox.storage.filesystem import FileSystemBlobStore
    from lightbox.storage.tiered import TieredBlobStore

    names = set(tiers) | {p.name[1:] for p in folder.glob("@*") if p.is_dir()}
    first = FileSystemBlobStore(folder)
    if not names:
        return first
    return TieredBlobStore(first, {name: FileSystemBlobStore(folder / f"@{name}") for name in names})


def build_backup(archive: Archive) -> BackupService:
    return BackupService(
        archive.index, archive.blobs, opened_snapshot, workers=archive.settings.ingest.workers
    )


def build_restore(source: Path, workers: int = 4) -> RestoreService:
    return RestoreService(source, folder_store(objects_path(source)), opened_snapshot, workers=workers)


def index_engine(settings: Settings) -> str:
    return "postgresql" if settings.database_url.startswith("postgres") else "sqlite"


def restore_database(url: str) -> Index:
    """The empty PostgreSQL database a restore fills, at this schema."""
    if not url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise ConfigurationError("--database-url: a postgresql:// URL (an SQLite index goes in the data dir)")
    from lightbox.index.sql import SqlIndex

    index = SqlIndex(url)
    index.migrate()
    return index
