"""SQL Index backend for SQLite and PostgreSQL: one code path, dialect quirks in ``_Dialect``.

Every public method is one unit of work, run by ``_run`` in its own transaction and retried with jitter when
the engine reports a serialization failure, a deadlock, a lock timeout or a unique-key race (Orthanc's
``StatelessDatabaseOperations`` does the same). Index commits need not wait for an fsync of their own: the
stored objects are the source of truth and start-up recovery indexes any object a crash left unindexed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, NoResultFound, OperationalError

from lightbox.domain.accounts import format_ae_permissions, parse_ae_permissions
from lightbox.domain.errors import Conflict, DuplicateRejected, Forbidden, NotFound, OutOfResources
from lightbox.domain.levels import Level
from lightbox.index import matching
from lightbox.index.base import (
    CompressionCandidate,
    ContentFilter,
    Deletion,
    DuplicatePolicy,
    Index,
    IndexStatistics,
    InstanceDocument,
    InstanceLocation,
    InstanceRecord,
    MetadataVersion,
    NewInstance,
    PatientRecord,
    RemoteAE,
    SeriesRecord,
    StoreOutcome,
    StoreResult,
    StudyRecord,
    TierQuery,
)
from lightbox.index.models import (
    CONTENT_TABLES,
    audit_head,
    instance_replacements,
    instances,
    metadata,
    patients,
    pending_deletions,
    remote_aes,
    series,
    studies,
)
from lightbox.index.prepared import Prepared, execute_raw
from lightbox.index.snapshot import copy_tables, finish_sqlite_file, schema_revision, sqlite_snapshot
from lightbox.index.sql_accounts import SqlAccounts
from lightbox.index.sql_audit import SqlAudit
from lightbox.index.sql_shares import SqlShares
from lightbox.index.utc import aware, aware_or_none

log = logging.getLogger(__name__)
T = TypeVar("T")

_MAX_ATTEMPTS = 12
_RETRY_PGCODES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available
_LOCATE_PAGE = 1000
# A page of locations after an instance id: rows of InstanceLocation's fields, then the instance id
_LocationPage = Callable[[Connection, int], Sequence[Sequence[Any]]]


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# orjson encodes the attribute documents about ten times faster than the standard library.
_JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def _now() -> datetime:
    return datetime.now(UTC)


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        return True  # a concurrent store inserted the same key first; the retry sees its row
    if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
        return True
    if isinstance(exc, DBAPIError):
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return code in _RETRY_PGCODES
    return False


def normalize_url(url: str) -> str:
    """Pick our drivers: ``postgresql://`` means psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class SqlIndex(SqlAccounts, SqlAudit, SqlShares, Index):
    def __init__(self, url: str, *, synchronous_commit: bool = False, pool_size: int = 8) -> None:
        self.url = normalize_url(url)
        self._synchronous_commit = synchronous_commit
        self._engine = self._make_engine(self.url, synchronous_commit, pool_size)
        self.dialect = self._engine.dialect.name
        self._insert = pg_dialect.insert if self.dialect == "postgresql" else sqlite_dialect.insert
        # SQLite has one writer at a time. Its busy handler, which makes the others wait, sleeps and polls
        # (1, 2, 5, 10 ms...): with several C-STOREs at once most of their time went to those sleeps. The
        # writers of this process queue here instead, each woken as the one before commits; the busy
        # handler still arbitrates with other processes.
        self._sqlite_writer = threading.RLock()
        self._hot = _IngestStatements(self._engine.dialect, self._insert)
        self._locators: dict[tuple[str, ...], Prepared] = {}  # by the unique keys a retrieve names

    # --- engine and units of work ---------------------------------------------------------------------
    @staticmethod
    def _make_engine(url: str, synchronous_commit: bool, pool_size: int) -> Engine:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url, pool_size=pool_size, max_overflow=16, connect_args={"timeout": 60}, **_JSON_CODEC
            )

            @event.listens_for(engine, "connect")
            def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                # NORMAL: commits are atomic and consistent; a power cut may lose the last ones, which
                # start-up recovery re-indexes from the durable objects.
                cur.execute("PRAGMA synchronous=" + ("FULL" if synchronous_commit else "NORMAL"))
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=60000")
                # LIKE must be case-sensitive (DICOM matching is) and may then use the b-tree indexes.
                cur.execute("PRAGMA case_sensitive_like=ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn: Connection) -> None:
                # Writers take the lock at BEGIN, so two writers never deadlock upgrading a read lock.
                write = conn.get_execution_options().get("lightbox_write", False)
                # on the driver's cursor: Core's own execution would cost as much as an ingest's statements
                execute_raw(conn, "BEGIN IMMEDIATE" if write else "BEGIN").close()

            return engine
        # psycopg prepares a statement run 5 times, and PostgreSQL's generic plan for a search cannot see
        # its values: with ORDER BY id LIMIT it may walk the primary key past every row. Plan each
        # statement for its values (the planning costs far less than such a walk).
        options = "-c plan_cache_mode=force_custom_plan"
        if not synchronous_commit:
            options += " -c synchronous_commit=off"
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=16,
            pool_pre_ping=True,
            connect_args={"options": options},
            **_JSON_CODEC,
        )

    def _run(self, fn: Callable[[Connection], T], *, write: bool, durable: bool = False) -> T:
        """``durable``: the commit waits for the database's fsync whatever ``synchronous_commit`` says."""
        delay = 0.005
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            serialize = (
                self._sqlite_writer if write and self.dialect == "sqlite" else contextlib.nullcontext()
            )
            try:
                with serialize, self._engine.connect() as conn:
                    conn.execution_options(lightbox_write=write)
                    durability = self._durable_commit(conn) if durable else contextlib.nullcontext()
                    with durability, conn.begin():
                        if durable and self.dialect == "postgresql":
                            conn.exec_driver_sql("SET LOCAL synchronous_commit TO on")
                        return fn(conn)
            except (DBAPIError, IntegrityError) as exc:
                if attempt == _MAX_ATTEMPTS or not _retryable(exc):
                    if isinstance(exc, OperationalError):
                        raise OutOfResources(f"index unavailable: {exc.orig}") from exc
                    raise
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _durable_commit(self, conn: Connection) -> Iterator[None]:
        """SQLite: a synchronous=FULL commit on this connection (the level cannot change inside a transaction,
        so it is set before and restored after). PostgreSQL sets it in the transaction (``_run``)."""
        if self.dialect != "sqlite":
            yield
            return
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA synchronous=FULL")
        try:
            yield
        finally:
            try:
                raw.execute("PRAGMA synchronous=" + ("FULL" if self._synchronous_commit else "NORMAL"))
            except Exception:
                conn.invalidate()  # never hand a connection at the wrong level back to the pool

    def read(self, fn: Callable[[Connection], T]) -> T:
        return self._run(fn, write=False)

    def write(self, fn: Callable[[Connection], T]) -> T:
        return self._run(fn, write=True)

    @property
    def sql_dialect(self) -> Dialect:
        return self._engine.dialect

    # --- lifecycle -------------------------------------------------------------------------------------
    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self._engine.connect() as conn:
            conn.execution_options(lightbox_write=True)
            with conn.begin():
                if self.dialect == "postgresql":
                    # Several nodes may start together; one migrates, the others wait for it.
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7355608)")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")

    def check(self) -> None:
        self.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())

    def close(self) -> None:
        if self.dialect == "sqlite":
            # Refresh the planner's statistics where they are stale (SQLite's advice for long-lived
            # databases); cheap when nothing changed.
            with contextlib.suppress(DBAPIError), self._engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA optimize")
        self._engine.dispose()

    @property
    def engine(self) -> Engine:
        return self._engine

    # --- backup ----------------------------------------------------------------------------------------
    def snapshot(self, target: Path) -> None:
        if self.dialect == "sqlite":
            sqlite_snapshot(self._engine, target)
            return
        copy = SqlIndex(f"sqlite:///{target}")
        try:
            copy.migrate()  # this code's revision, which copy_tables checks against the source's
            with self._engine.connect() as source, copy.engine.connect() as dest:
                dest.execution_options(lightbox_write=True)
                with source.begin(), dest.begin():
                    # One MVCC snapshot for every table, as pg_dump takes it.
                    source.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    copy_tables(source, dest)
        finally:
            copy.close()
        finish_sqlite_file(target)

    def restore_from(self, source: Path) -> None:
        if self.dialect == "sqlite":
            raise ValueError("an SQLite index is restored by copying the snapshot file")
        snapshot = SqlIndex(f"sqlite:///{source}")
        try:
            with snapshot.engine.connect() as src, self._engine.connect() as dest, src.begin(), dest.begin():
                if any(_count(dest, t) for t in metadata.sorted_tables if t is not audit_head):
                    raise Conflict("the target database is not empty: restore into a new database")
                copy_tables(src, dest)
        finally:
            snapshot.close()

    def restored_in_first_tier(self, new_keys: Mapping[str, str]) -> None:
        stmt = (
            update(instances)
            .where(instances.c.blob_key == bindparam("old"))
            .values(blob_key=bindparam("new"), tier=None)
        )
        pairs = [{"old": old, "new": new} for old, new in new_keys.items()]

        def run(conn: Connection) -> None:
            for i in range(0, len(pairs), 1000):
                conn.execute(stmt, pairs[i : i + 1000])
            conn.execute(delete(pending_deletions))

        self.write(run)

    def schema_revision(self) -> str | None:
        return self.read(schema_revision)

    def stored_objects(self, after_key: str | None, limit: int) -> list[InstanceLocation]:
        stmt = _location_select().order_by(instances.c.blob_key).limit(limit)
        if after_key is not None:
            stmt = stmt.where(instances.c.blob_key > after_key)
        return self.read(lambda conn: [_location(r._mapping) for r in conn.execute(stmt)])

    # --- ingest ----------------------------------------------------------------------------------------
    def find_instance(self, sop_instance_uid: str) -> InstanceLocation | None:
        def run(conn: Connection) -> InstanceLocation | None:
            row = conn.execute(
                _location_select().where(instances.c.sop_instance_uid == sop_instance_uid)
            ).first()
            return _location(row._mapping) if row else None

        return self.read(run)

    def store_instance(
        self,
        new: NewInstance,
        policy: DuplicatePolicy,
        before_commit: Callable[[], object] | None = None,
    ) -> StoreResult:
        def run(conn: Connection) -> StoreResult:
            result = self._store(conn, new, policy)
            if before_commit is not None:
                before_commit()
            return result

        return self.write(run)

    def _store(self, conn: Connection, new: NewInstance, policy: DuplicatePolicy) -> StoreResult:
        rows = new.rows
        hot = self._hot
        sop_uid = rows.instance.columns["sop_instance_uid"]
        found = hot.existing.first(conn, {"sop": sop_uid})
        outcome = StoreOutcome.STORED
        obsolete: str | None = None
        replaced_sha: str | None = None
        if new.replaces_sha256 is not None:
            return self._store_reencoding(conn, new, found)
        if found is not None:
            existing = _Existing(*found)
            if existing.sha256 == new.sha256:
                return StoreResult(StoreOutcome.ALREADY_PRESENT, obsolete_blob_key=new.blob_key)
            if aware(existing.ingested_at) > new.ingested_at:
                # Recovery or reindex met an older version after the newer one: the newer stays.
                return StoreResult(StoreOutcome.KEPT_EXISTING, obsolete_blob_key=new.blob_key)
            if policy is DuplicatePolicy.REJECT:
                raise DuplicateRejected(
                    f"SOP Instance {sop_uid} is stored already with different content "
                    "(duplicate policy: reject)"
                )
            if policy is DuplicatePolicy.KEEP:
                return StoreResult(StoreOutcome.KEPT_EXISTING, obsolete_blob_key=new.blob_key)
            self._record_replacement(conn, sop_uid, existing, new)
            self._detach_instance(conn, existing.id)
            outcome, obsolete, replaced_sha = StoreOutcome.REPLACED, existing.blob_key, existing.sha256
        return self._insert_instance(conn, new, outcome, obsolete, replaced_sha)

    def _store_reencoding(self, conn: Connection, new: NewInstance, found: Any) -> StoreResult:
        """Replace the instance by a re-encoding of it, if it is still the object re-encoded."""
        existing = _Existing(*found) if found is not None else None
        if existing is None or existing.sha256 != new.replaces_sha256:
            # Deleted or replaced meanwhile: the re-encoding stays a pending deletion and goes
            return StoreResult(StoreOutcome.KEPT_EXISTING, obsolete_blob_key=new.blob_key)
        sop_uid = new.rows.instance.columns["sop_instance_uid"]
        kept = conn.execute(delete(pending_deletions).where(pending_deletions.c.blob_key == new.blob_key))
        if kept.rowcount != 1:  # its pending deletion was carried out meanwhile: the object may be gone
            return StoreResult(StoreOutcome.KEPT_EXISTING, obsolete_blob_key=new.blob_key)
        self._record_replacement(conn, sop_uid, existing, new)
        # Readers that located the old object a moment ago may still open it: it goes a while later
        gone_from = _now() + _REPLACED_OBJECT_GRACE
        conn.execute(
            insert(pending_deletions).values(
                blob_key=existing.blob_key, sop_instance_uid=sop_uid, deleted_at=gone_from
            )
        )
        self._detach_instance(conn, existing.id)
        return self._insert_instance(conn, new, StoreOutcome.REPLACED, None, existing.sha256)

    @staticmethod
    def _record_replacement(conn: Connection, sop_uid: str, existing: _Existing, new: NewInstance) -> None:
        """Both objects' keys and checksums, kept for good: what was replaced, by what, when."""
        conn.execute(
            insert(instance_replacements).values(
                sop_instance_uid=sop_uid,
                old_blob_key=existing.blob_key,
                old_sha256=existing.sha256,
                new_blob_key=new.blob_key,
                new_sha256=new.sha256,
                source=new.source,
                replaced_at=_now(),
            )
        )

    def _insert_instance(
        self,
        conn: Connection,
        new: NewInstance,
        outcome: StoreOutcome,
        obsolete: str | None,
        replaced_sha: str | None,
    ) -> StoreResult:
        rows = new.rows
        hot = self._hot
        now = _now()
        study_uid = rows.study.columns["study_instance_uid"]
        study = hot.study.first(conn, {"uid": study_uid})
        new_study = False
        if study is None:
            patient_key = {
                "pid": rows.patient.columns["patient_id"],
                "issuer": rows.patient.columns["issuer_of_patient_id"],
            }
            patient_fk, new_patient = self._get_or_create(
                conn,
                "patients",
                hot.patient_id,
                patient_key,
                {**rows.patient.columns, "attrs": rows.patient.attrs, "created_at": now},
            )
            study_fk, new_study = self._get_or_create(
                conn,
                "studies",
                hot.study_id,
                {"uid": study_uid},
                {
                    **rows.study.columns,
                    "patient_fk": patient_fk,
                    "attrs": rows.study.attrs,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if not new_study:  # a concurrent store created it; its patient is the study's patient
                study_patient = _one(hot.study.first(conn, {"uid": study_uid}))[1]
                if new_patient and study_patient != patient_fk:
                    conn.execute(delete(patients).where(patients.c.id == patient_fk))  # it holds nothing
                patient_fk = study_patient
        else:
            study_fk, patient_fk = study

        modality = rows.series.columns["modality"]
        series_fk, new_series = self._get_or_create(
            conn,
            "series",
            hot.series_id,
            {"uid": rows.series.columns["series_instance_uid"]},
            {**rows.series.columns, "study_fk": study_fk, "attrs": rows.series.attrs, "created_at": now},
        )
        hot.insert_instance.run(
            conn,
            {
                **rows.instance.columns,
                "series_fk": series_fk,
                "transfer_syntax_uid": new.transfer_syntax_uid,
                "blob_key": new.blob_key,
                "size": new.size,
                "sha256": new.sha256,
                "ingested_at": new.ingested_at,
                "source": new.source,
                "stored_by": new.stored_by,
                "attrs": rows.instance.attrs,
                "bulk": [list(item) for item in new.bulk],
            },
        )
        # Counters, always top-down (patient, study, series) so concurrent stores lock in one order.
        delta = {"d_studies": int(new_study), "d_series": int(new_series), "d_size": new.size, "now": now}
        hot.bump_patient.run(conn, {**delta, "id_": patient_fk})
        hot.bump_study.run(conn, {**delta, "id_": study_fk})
        if new_series and modality:
            current = _one(hot.modalities.first(conn, {"id_": study_fk}))[0]
            hot.set_modalities.run(conn, {"id_": study_fk, "m": _add_modality(current, modality)})
        hot.bump_series.run(conn, {**delta, "id_": series_fk})
        return StoreResult(outcome, obsolete_blob_key=obsolete, replaced_sha256=replaced_sha)

    def _get_or_create(
        self,
        conn: Connection,
        table: str,
        lookup: Prepared,
        key: Mapping[str, Any],
        values: Mapping[str, Any],
    ) -> tuple[int, bool]:
        row_id = lookup.scalar(conn, key)
        if row_id is not None:
            return int(row_id), False
        row_id = self._hot.create[table].scalar(conn, values)
        if row_id is not None:
            return int(row_id), True
        return int(_one(lookup.first(conn, key))[0]), False

    def _detach_instance(self, conn: Connection, instance_id: int) -> None:
        """Delete one instance row, adjust the counters and remove parents left empty."""
        inst = conn.execute(
            select(instances.c.series_fk, instances.c.size, series.c.study_fk, studies.c.patient_fk)
            .join(series, series.c.id == instances.c.series_fk)
            .join(studies, studies.c.id == series.c.study_fk)
            .where(instances.c.id == instance_id)
        ).one()
        conn.execute(delete(instances).where(instances.c.id == instance_id))
        series_left = conn.execute(
            update(series)
            .where(series.c.id == inst.series_fk)
            .values(num_instances=series.c.num_instances - 1, size_bytes=series.c.size_bytes - inst.size)
            .returning(series.c.num_instances)
        ).scalar_one()
        series_gone = series_left == 0
        if series_gone:
            conn.execute(delete(series).where(series.c.id == inst.series_fk))
        study_left = conn.execute(
            update(studies)
            .where(studies.c.id == inst.study_fk)
            .values(
                num_series=studies.c.num_series - int(series_gone),
                num_instances=studies.c.num_instances - 1,
                size_bytes=studies.c.size_bytes - inst.size,
                updated_at=_now(),
            )
            .returning(studies.c.num_instances)
        ).scalar_one()
        study_gone = study_left == 0
        if study_gone:
            conn.execute(delete(studies).where(studies.c.id == inst.study_fk))
        elif series_gone:
            remaining = conn.execute(
                select(series.c.modality).where(series.c.study_fk == inst.study_fk).distinct()
            ).scalars()
            conn.execute(
                update(studies)
                .where(studies.c.id == inst.study_fk)
                .values(modalities_in_study="\\".join(sorted(m for m in remaining if m)))
            )
        patient_left = conn.execute(
            update(patients)
            .where(patients.c.id == inst.patient_fk)
            .values(
                num_studies=patients.c.num_studies - int(study_gone),
                num_series=patients.c.num_series - int(series_gone),
                num_instances=patients.c.num_instances - 1,
                size_bytes=patients.c.size_bytes - inst.size,
            )
            .returning(patients.c.num_instances)
        ).scalar_one()
        if patient_left == 0:
            conn.execute(delete(patients).where(patients.c.id == inst.patient_fk))

    def indexed_blob_keys(self, keys: Iterable[str]) -> set[str]:
        wanted = list(keys)
        found: set[str] = set()

        def run(conn: Connection, chunk: list[str]) -> list[str]:
            return list(
                conn.execute(select(instances.c.blob_key).where(instances.c.blob_key.in_(chunk))).scalars()
            )

        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            found.update(self.read(lambda conn, c=chunk: run(conn, c)))  # type: ignore[misc]
        return found

    def latest_ingest_time(self) -> datetime | None:
        value = self.read(lambda conn: conn.execute(select(func.max(instances.c.ingested_at))).scalar())
        return aware_or_none(value)

    def clear_content(self) -> None:
        def run(conn: Connection) -> None:
            for table in CONTENT_TABLES:
                conn.execute(delete(table))

        self.write(run)

    def statistics(self) -> IndexStatistics:
        def run(conn: Connection) -> IndexStatistics:
            counts = [conn.execute(select(func.count()).select_from(t)).scalar_one() for t in CONTENT_TABLES]
            size = conn.execute(select(func.coalesce(func.sum(instances.c.size), 0))).scalar_one()
            n_inst, n_series, n_studies, n_patients = counts
            return IndexStatistics(n_patients, n_studies, n_series, n_inst, int(size))

        return self.read(run)

    # --- browse and delete -----------------------------------------------------------------------------
    def list_patients(
        self, where: ContentFilter, after_id: int | None, limit: int
    ) -> Sequence[PatientRecord]:
        stmt = select(*_PATIENT_COLUMNS).select_from(patients)
        rows = self._page(stmt, patients, Level.PATIENT, where, after_id, limit)
        return [PatientRecord(**_aware_times(r)) for r in rows]

    def list_studies(self, where: ContentFilter, after_id: int | None, limit: int) -> Sequence[StudyRecord]:
        stmt = (
            select(*_STUDY_COLUMNS).select_from(studies).join(patients, patients.c.id == studies.c.patient_fk)
        )
        rows = self._page(stmt, studies, Level.STUDY, where, after_id, limit)
        return [
            StudyRecord(
                **{
                    **_aware_times(r),
                    "modalities_in_study": tuple(m for m in r["modalities_in_study"].split("\\") if m),
                }
            )
            for r in rows
        ]

    def list_series(self, where: ContentFilter, after_id: int | None, limit: int) -> Sequence[SeriesRecord]:
        stmt = (
            select(*_SERIES_COLUMNS)
            .select_from(series)
            .join(studies, studies.c.id == series.c.study_fk)
            .join(patients, patients.c.id == studies.c.patient_fk)
        )
        rows = self._page(stmt, series, Level.SERIES, where, after_id, limit)
        return [SeriesRecord(**_aware_times(r)) for r in rows]

    def list_instances(
        self, where: ContentFilter, after_id: int | None, limit: int
    ) -> Sequence[InstanceRecord]:
        stmt = (
            select(*_INSTANCE_COLUMNS)
            .select_from(instances)
            .join(series, series.c.id == instances.c.series_fk)
            .join(studies, studies.c.id == series.c.study_fk)
            .join(patients, patients.c.id == studies.c.patient_fk)
        )
        rows = self._page(stmt, instances, Level.IMAGE, where, after_id, limit)
        return [InstanceRecord(**_aware_times(r)) for r in rows]

    def _page(
        self, stmt: Any, table: Any, level: Level, where: ContentFilter, after_id: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """One keyset page of ``stmt`` by ``table``'s row id, restricted to ``where``."""
        for name, column in _FILTER_COLUMNS.items():
            value = getattr(where, name)
            if value is None:
                continue
            if _FILTER_DEPTH[name] > level.depth:
                raise ValueError(f"a {level.value.lower()} listing cannot be filtered by {name}")
            stmt = stmt.where(column == value)
        if after_id is not None:
            stmt = stmt.where(table.c.id > after_id)
        stmt = stmt.order_by(table.c.id).limit(limit)
        return self.read(lambda conn: _dicts(conn.execute(stmt)))

    def delete_content(self, level: Level, uid: str, only_by: str | None = None) -> Deletion:
        if level not in _DELETE_TARGETS:
            raise ValueError(f"cannot delete at the {level.value} level")
        # Durable whatever synchronous_commit says: the caller removes the objects once this returns, and a
        # commit lost in a power cut would leave rows whose objects are gone.
        return self._run(lambda conn: self._delete(conn, level, uid, only_by), write=True, durable=True)

    def _delete(self, conn: Connection, level: Level, uid: str, only_by: str | None) -> Deletion:
        key_column, noun = _DELETE_TARGETS[level]
        target = conn.execute(
            select(
                patients.c.id.label("patient_fk"),
                patients.c.patient_id,
                studies.c.id.label("study_fk"),
                studies.c.study_instance_uid,
                series.c.id.label("series_fk"),
                instances.c.id.label("instance_id"),
            )
            .select_from(instances)
            .join(series, series.c.id == instances.c.series_fk)
            .join(studies, studies.c.id == series.c.study_fk)
            .join(patients, patients.c.id == studies.c.patient_fk)
            .where(key_column == uid)
            .limit(1)
        ).first()
        if target is None:
            raise NotFound(f"no {noun} {uid} is stored")
        # Lock top-down, the order in which ingest updates the counters, so that a concurrent store of the
        # same study waits for this delete (or is retried) instead of deadlocking with it.
        conn.execute(select(patients.c.id).where(patients.c.id == target.patient_fk).with_for_update())
        study = conn.execute(
            select(studies.c.num_instances).where(studies.c.id == target.study_fk).with_for_update()
        ).one()
        if level is Level.STUDY:
            scope = instances.c.series_fk.in_(select(series.c.id).where(series.c.study_fk == target.study_fk))
        elif level is Level.SERIES:
            conn.execute(select(series.c.id).where(series.c.id == target.series_fk).with_for_update())
            scope = instances.c.series_fk == target.series_fk
        else:
            scope = instances.c.id == target.instance_id
        if only_by is not None:
            # Checked under the locks: no instance of another can join the study before the delete
            stored_by = instances.c.stored_by
            others = select(instances.c.id).where(scope, or_(stored_by.is_(None), stored_by != only_by))
            if conn.execute(others.limit(1)).first() is not None:
                raise Forbidden(f"{noun} {uid} holds instances {only_by} did not store: ask an administrator")
        doomed = conn.execute(
            select(instances.c.sop_instance_uid, instances.c.blob_key, instances.c.size).where(scope)
        ).all()
        now = _now()
        conn.execute(
            insert(pending_deletions),
            [
                {"blob_key": r.blob_key, "sop_instance_uid": r.sop_instance_uid, "deleted_at": now}
                for r in doomed
            ],
        )
        size = sum(r.size for r in doomed)
        if level is Level.IMAGE:
            self._detach_instance(conn, target.instance_id)
        elif level is Level.SERIES:
            conn.execute(delete(instances).where(scope))
            conn.execute(delete(series).where(series.c.id == target.series_fk))
            study_gone = study.num_instances - len(doomed) <= 0
            if study_gone:
                conn.execute(delete(studies).where(studies.c.id == target.study_fk))
            else:
                remaining = conn.execute(
                    select(series.c.modality).where(series.c.study_fk == target.study_fk).distinct()
                ).scalars()
                conn.execute(
                    update(studies)
                    .where(studies.c.id == target.study_fk)
                    .values(
                        num_series=studies.c.num_series - 1,
                        num_instances=studies.c.num_instances - len(doomed),
                        size_bytes=studies.c.size_bytes - size,
                        modalities_in_study="\\".join(sorted(m for m in remaining if m)),
                        updated_at=now,
                    )
                )
            self._shrink_patient(conn, target.patient_fk, int(study_gone), 1, len(doomed), size)
        else:
            series_count = conn.execute(
                select(func.count()).select_from(series).where(series.c.study_fk == target.study_fk)
            ).scalar_one()
            conn.execute(delete(instances).where(scope))
            conn.execute(delete(series).where(series.c.study_fk == target.study_fk))
            conn.execute(delete(studies).where(studies.c.id == target.study_fk))
            self._shrink_patient(conn, target.patient_fk, 1, series_count, len(doomed), size)
        return Deletion(
            level=level,
            uid=uid,
            patient_id=target.patient_id,
            study_instance_uid=target.study_instance_uid,
            sop_instance_uids=tuple(r.sop_instance_uid for r in doomed),
            blob_keys=tuple(r.blob_key for r in doomed),
            size_bytes=size,
        )

    @staticmethod
    def _shrink_patient(
        conn: Connection, patient_fk: int, n_studies: int, n_series: int, n_instances: int, size: int
    ) -> None:
        left = conn.execute(
            update(patients)
            .where(patients.c.id == patient_fk)
            .values(
                num_studies=patients.c.num_studies - n_studies,
                num_series=patients.c.num_series - n_series,
                num_instances=patients.c.num_instances - n_instances,
                size_bytes=patients.c.size_bytes - size,
            )
            .returning(patients.c.num_instances)
        ).scalar_one()
        if left <= 0:
            conn.execute(delete(patients).where(patients.c.id == patient_fk))

    def pending_blob_deletions(self, limit: int, among: Iterable[str] | None = None) -> list[str]:
        stmt = select(pending_deletions.c.blob_key).order_by(pending_deletions.c.id).limit(limit)
        if among is None:
            stmt = stmt.where(pending_deletions.c.deleted_at <= _now())  # not the objects still being written
            return self.read(lambda conn: list(conn.execute(stmt).scalars()))
        wanted = list(among)
        found: list[str] = []
        for i in range(0, len(wanted), 500):
            chunk = stmt.where(pending_deletions.c.blob_key.in_(wanted[i : i + 500]))
            found.extend(self.read(lambda conn, c=chunk: list(conn.execute(c).scalars())))  # type: ignore[misc]
        return found[:limit]

    def studies_for_tier(self, rule: TierQuery, limit: int) -> list[str]:
        st, inst = studies.c, instances.c
        outside = _outside_tier(inst.tier, rule.tier)
        conditions: list[Any] = [
            select(instances.c.id)
            .join(series, series.c.id == inst.series_fk)
            .where(series.c.study_fk == st.id, outside)
            .exists()
        ]
        if rule.stored_before is not None:
            conditions.append(st.created_at < rule.stored_before)
        if rule.accessed_before is not None:
            conditions.append(func.coalesce(st.accessed_at, st.created_at) < rule.accessed_before)
        if rule.modality:
            conditions.append(_has_modality(st.modalities_in_study, rule.modality))
        stmt = select(st.study_instance_uid).where(*conditions).order_by(st.created_at, st.id).limit(limit)
        return self.read(lambda conn: list(conn.execute(stmt).scalars()))

    def objects_outside_tier(self, study_instance_uid: str, tier: str | None) -> list[tuple[str, str, str]]:
        inst = instances.c
        outside = _outside_tier(inst.tier, tier)
        stmt = (
            select(inst.sop_instance_uid, inst.blob_key, inst.sha256)
            .join(series, series.c.id == inst.series_fk)
            .join(studies, studies.c.id == series.c.study_fk)
            .where(studies.c.study_instance_uid == study_instance_uid, outside)
            .order_by(inst.id)
        )
        return self.read(lambda conn: [(r[0], r[1], r[2]) for r in conn.execute(stmt)])

    def move_object(
        self, sop_instance_uid: str, old_key: str, new_key: str, tier: str | None, readers_grace: timedelta
    ) -> bool:
        def run(conn: Connection) -> bool:
            moved = conn.execute(
                update(instances)
                .where(instances.c.sop_instance_uid == sop_instance_uid, instances.c.blob_key == old_key)
                .values(blob_key=new_key, tier=tier)
            )
            if moved.rowcount != 1:
                return False
            kept = conn.execute(delete(pending_deletions).where(pending_deletions.c.blob_key == new_key))
            if kept.rowcount != 1:  # its pending deletion was carried out meanwhile: the copy may be gone
                raise _Undo()
            conn.execute(
                insert(pending_deletions).values(
                    blob_key=old_key, sop_instance_uid=sop_instance_uid, deleted_at=_now() + readers_grace
                )
            )
            return True

        try:
            return self.write(run)
        except _Undo:
            return False

    def note_study_access(self, study_instance_uids: Iterable[str], when: datetime) -> None:
        uids = list(study_instance_uids)
        if not uids:
            return
        # At most one write an hour for a study that is read all day
        stale = or_(studies.c.accessed_at.is_(None), studies.c.accessed_at < when - _ACCESS_RESOLUTION)
        stmt = update(studies).where(studies.c.study_instance_uid.in_(uids), stale).values(accessed_at=when)
        self.write(lambda conn: conn.execute(stmt))

    def tier_usage(self) -> dict[str | None, tuple[int, int]]:
        stmt = select(instances.c.tier, func.count(), func.coalesce(func.sum(instances.c.size), 0)).group_by(
            instances.c.tier
        )
        return self.read(lambda conn: {r[0]: (int(r[1]), int(r[2])) for r in conn.execute(stmt)})

    def studies_stored_before(self, when: datetime, modality: str | None, limit: int) -> list[str]:
        st = studies.c
        conditions: list[Any] = [st.created_at < when]
        if modality:
            conditions.append(_has_modality(st.modalities_in_study, modality))
        stmt = select(st.study_instance_uid).where(*conditions).order_by(st.created_at, st.id).limit(limit)
        return self.read(lambda conn: list(conn.execute(stmt).scalars()))

    def compression_candidates(
        self, transfer_syntaxes: Iterable[str], after_id: int, limit: int
    ) -> list[CompressionCandidate]:
        c = instances.c
        stmt = (
            select(
                c.id, c.sop_instance_uid, c.blob_key, c.sha256, c.size, c.source, c.stored_by, c.ingested_at
            )
            .where(
                c.id > after_id, c.transfer_syntax_uid.in_(list(transfer_syntaxes)), c.compression.is_(None)
            )
            .order_by(c.id)
            .limit(limit)
        )
        rows = self.read(lambda conn: list(conn.execute(stmt)))
        return [CompressionCandidate(*row[:7], aware(row[7])) for row in rows]

    def keep_uncompressed(self, sop_instance_uid: str, sha256: str, reason: str) -> None:
        stmt = (
            update(instances)
            .where(instances.c.sop_instance_uid == sop_instance_uid, instances.c.sha256 == sha256)
            .values(compression=reason[:200])
        )
        self.write(lambda conn: conn.execute(stmt))

    def note_pending_deletions(
        self, sop_instance_uid: str, blob_keys: Iterable[str], not_before: datetime
    ) -> None:
        rows = [
            {"blob_key": k, "sop_instance_uid": sop_instance_uid, "deleted_at": not_before} for k in blob_keys
        ]
        if rows:
            self.write(lambda conn: conn.execute(insert(pending_deletions), rows))

    def forget_blob_deletions(self, keys: Iterable[str]) -> None:
        wanted = list(keys)
        for i in range(0, len(wanted), 500):
            stmt = delete(pending_deletions).where(pending_deletions.c.blob_key.in_(wanted[i : i + 500]))
            self.write(lambda conn, s=stmt: conn.execute(s))  # type: ignore[misc]

    # --- query -----------------------------------------------------------------------------------------
    def search(self, spec: Any, after_id: int | None, limit: int) -> Sequence[Mapping[str, Any]]:
        stmt = matching.build_search(spec, after_id, limit)
        return self.read(lambda conn: _dicts(conn.execute(stmt)))

    # --- retrieve --------------------------------------------------------------------------------------
    def locate(self, level: Level, uids: Mapping[str, Sequence[str]]) -> Iterator[InstanceLocation]:
        for keyword in uids:
            if keyword not in _UNIQUE_KEY_COLUMNS:
                raise ValueError(f"{keyword} is not a unique key")
        if not any(uids.values()):
            raise ValueError("a retrieve needs at least one unique key")
        if all(len(wanted) == 1 for wanted in uids.values() if wanted):
            return self._locations(self._single_values_page(uids))
        conditions = and_(*(_UNIQUE_KEY_COLUMNS[k].in_(list(v)) for k, v in uids.items() if v))

        def page(conn: Connection, after: int) -> Sequence[Sequence[Any]]:
            return conn.execute(_locate_page(conditions, after)).all()

        return self._locations(page)

    def _single_values_page(self, uids: Mapping[str, Sequence[str]]) -> _LocationPage:
        """One value a key, the shape of nearly every WADO-RS request (a viewer's frame requests among
        them): a prepared statement, without Core's compilation and result set-up on each request."""
        values = {keyword: wanted[0] for keyword, wanted in uids.items() if wanted}
        keywords = tuple(sorted(values))
        locator = self._locators.get(keywords)
        if locator is None:
            conditions = and_(*(_UNIQUE_KEY_COLUMNS[k] == _B(k) for k in keywords))
            locator = self._locators[keywords] = Prepared(
                _locate_page(conditions, _B("after")), self.sql_dialect
            )
        return lambda conn, after: locator.rows(conn, {**values, "after": after})

    def _locations(self, page: _LocationPage) -> Iterator[InstanceLocation]:
        """The locations the pages give, each page its own short read: a long C-MOVE must not pin a
        snapshot of the index."""
        after = 0
        while True:
            rows = self.read(lambda conn, a=after: page(conn, a))  # type: ignore[misc]
            for row in rows:
                yield InstanceLocation(*row[:-1])
            if len(rows) < _LOCATE_PAGE:
                return
            after = rows[-1][-1]

    def metadata_version(
        self, study_uid: str, series_uid: str | None = None, sop_instance_uid: str | None = None
    ) -> MetadataVersion | None:
        # A document is its parents' attributes and its instance row's; an instance row is never changed
        # in place where a document would show it (a replaced object is a new row), so the parents'
        # attributes and the instances' row ids and checksums stand for all of it.
        def run(conn: Connection) -> MetadataVersion | None:
            parents = conn.execute(_parents_select(study_uid, series_uid).order_by(series.c.id)).all()
            if not parents:
                return None
            members = select(instances.c.id, instances.c.sha256).where(
                instances.c.series_fk.in_([row[0] for row in parents])
            )
            if sop_instance_uid is not None:
                members = members.where(instances.c.sop_instance_uid == sop_instance_uid)
            rows = conn.execute(members.order_by(instances.c.id)).all()
            if not rows:
                return None
            digest = hashlib.sha256(orjson.dumps([list(row) for row in parents], option=orjson.OPT_SORT_KEYS))
            digest.update(";".join(f"{row_id}:{sha}" for row_id, sha in rows).encode())
            return MetadataVersion(digest.hexdigest(), len(rows))

        return self.read(run)

    def documents(
        self, study_uid: str, series_uid: str | None = None, sop_instance_uid: str | None = None
    ) -> Iterator[InstanceDocument]:
        parents_stmt = _parents_select(study_uid, series_uid)
        # patient, then study, then series attributes: a lower level has the last word
        parents = {
            row[0]: {**row[3], **row[2], **row[1]}
            for row in self.read(lambda conn: list(conn.execute(parents_stmt)))
        }
        if not parents:
            return
        after: tuple[int, int, int] = (-1, -1, -1)  # series id, instance number (-1: none), id
        number = func.coalesce(instances.c.instance_number, -1)
        while True:
            stmt = (
                _location_select()
                .add_columns(instances.c.series_fk, number.label("number"), instances.c.id)
                .add_columns(instances.c.attrs, instances.c.bulk)
                .where(instances.c.series_fk.in_(list(parents)))
                .where(tuple_(instances.c.series_fk, number, instances.c.id) > tuple_(*after))
                .order_by(instances.c.series_fk, number, instances.c.id)
                .limit(_LOCATE_PAGE)
            )
            if sop_instance_uid is not None:
                stmt = stmt.where(instances.c.sop_instance_uid == sop_instance_uid)
            page = self.read(lambda conn, s=stmt: list(conn.execute(s)))  # type: ignore[misc]
            for row in page:
                m = row._mapping
                yield InstanceDocument(_location(m), parents[m["series_fk"]], m["attrs"], m["bulk"])
            if len(page) < _LOCATE_PAGE:
                return
            last = page[-1]
            after = (last.series_fk, last.number, last.id)

    # --- remote AE registry ----------------------------------------------------------------------------
    def add_remote_ae(self, ae: RemoteAE) -> None:
        def run(conn: Connection) -> None:
            exists = conn.execute(select(remote_aes.c.id).where(remote_aes.c.ae_title == ae.ae_title)).first()
            if exists:
                raise Conflict(f"remote AE {ae.ae_title!r} is registered already")
            conn.execute(
                insert(remote_aes).values(
                    ae_title=ae.ae_title,
                    host=ae.host,
                    port=ae.port,
                    description=ae.description,
                    created_at=_now(),
                    permissions=format_ae_permissions(ae.permissions),
                )
            )

        self.write(run)

    def remove_remote_ae(self, ae_title: str) -> None:
        def run(conn: Connection) -> None:
            if conn.execute(delete(remote_aes).where(remote_aes.c.ae_title == ae_title)).rowcount == 0:
                raise NotFound(f"no remote AE {ae_title!r} is registered")

        self.write(run)

    def get_remote_ae(self, ae_title: str) -> RemoteAE | None:
        def run(conn: Connection) -> RemoteAE | None:
            row = conn.execute(select(remote_aes).where(remote_aes.c.ae_title == ae_title)).first()
            return _remote_ae(row._mapping) if row else None

        return self.read(run)

    def list_remote_aes(self) -> list[RemoteAE]:
        def run(conn: Connection) -> list[RemoteAE]:
            rows = conn.execute(select(remote_aes).order_by(remote_aes.c.ae_title))
            return [_remote_ae(r._mapping) for r in rows]

        return self.read(run)


# The ingest hot path's statements, built once: SQLAlchemy then only binds parameters (about a third of the
# time of building them per call).
_B = bindparam
_SELECT_EXISTING = (
    select(instances.c.id, instances.c.sha256, instances.c.blob_key, instances.c.ingested_at)
    .where(instances.c.sop_instance_uid == _B("sop"))
    .with_for_update()
)
_SELECT_STUDY = select(studies.c.id, studies.c.patient_fk).where(studies.c.study_instance_uid == _B("uid"))
_SELECT_STUDY_ID = select(studies.c.id).where(studies.c.study_instance_uid == _B("uid"))
_SELECT_SERIES_ID = select(series.c.id).where(series.c.series_instance_uid == _B("uid"))
_SELECT_PATIENT = select(patients.c.id).where(
    patients.c.patient_id == _B("pid"), patients.c.issuer_of_patient_id == _B("issuer")
)
_BUMP_PATIENT = (
    update(patients)
    .where(patients.c.id == _B("id_"))
    .values(
        num_studies=patients.c.num_studies + _B("d_studies"),
        num_series=patients.c.num_series + _B("d_series"),
        num_instances=patients.c.num_instances + 1,
        size_bytes=patients.c.size_bytes + _B("d_size"),
    )
)
_BUMP_STUDY = (
    update(studies)
    .where(studies.c.id == _B("id_"))
    .values(
        num_series=studies.c.num_series + _B("d_series"),
        num_instances=studies.c.num_instances + 1,
        size_bytes=studies.c.size_bytes + _B("d_size"),
        updated_at=_B("now"),
    )
)
_BUMP_SERIES = (
    update(series)
    .where(series.c.id == _B("id_"))
    .values(num_instances=series.c.num_instances + 1, size_bytes=series.c.size_bytes + _B("d_size"))
)
_SELECT_MODALITIES = select(studies.c.modalities_in_study).where(studies.c.id == _B("id_"))
_SET_MODALITIES = update(studies).where(studies.c.id == _B("id_")).values(modalities_in_study=_B("m"))


class _IngestStatements:
    """The statements above prepared for one engine (``insert``: its dialect's INSERT, for ON CONFLICT)."""

    def __init__(self, dialect: Any, insert: Callable[[Any], Any]) -> None:
        self.existing = Prepared(_SELECT_EXISTING, dialect)
        self.study = Prepared(_SELECT_STUDY, dialect)
        self.study_id = Prepared(_SELECT_STUDY_ID, dialect)
        self.series_id = Prepared(_SELECT_SERIES_ID, dialect)
        self.patient_id = Prepared(_SELECT_PATIENT, dialect)
        self.insert_instance = Prepared(insert(instances), dialect, by_keys=True)
        self.bump_patient = Prepared(_BUMP_PATIENT, dialect)
        self.bump_study = Prepared(_BUMP_STUDY, dialect)
        self.bump_series = Prepared(_BUMP_SERIES, dialect)
        self.modalities = Prepared(_SELECT_MODALITIES, dialect)
        self.set_modalities = Prepared(_SET_MODALITIES, dialect)
        self.create = {
            table.name: Prepared(
                insert(table).on_conflict_do_nothing().returning(table.c.id), dialect, by_keys=True
            )
            for table in (patients, studies, series)
        }


# A replaced object stays this long for readers that located it just before (a re-encoding's original)
_REPLACED_OBJECT_GRACE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class _Existing:
    """The row of the instance stored already under the SOP Instance UID being stored."""

    id: int
    sha256: str
    blob_key: str
    ingested_at: datetime


def _one(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    if row is None:
        raise NoResultFound("a row the transaction saw is gone")
    return row


# Listings: the columns of each level's record, and the unique keys a listing may be filtered by with the
# shallowest level each belongs to (a study listing may be filtered by patient, not by series).
_PATIENT_COLUMNS = (
    patients.c.id,
    patients.c.patient_id,
    patients.c.issuer_of_patient_id,
    patients.c.patient_name,
    patients.c.patient_birth_date,
    patients.c.patient_sex,
    patients.c.num_studies,
    patients.c.num_series,
    patients.c.num_instances,
    patients.c.size_bytes,
    patients.c.created_at,
)
_STUDY_COLUMNS = (
    studies.c.id,
    studies.c.study_instance_uid,
    patients.c.patient_id,
    patients.c.issuer_of_patient_id,
    patients.c.patient_name,
    studies.c.study_date,
    studies.c.study_time,
    studies.c.accession_number,
    studies.c.study_id,
    studies.c.study_description,
    studies.c.referring_physician_name,
    studies.c.modalities_in_study,
    studies.c.num_series,
    studies.c.num_instances,
    studies.c.size_bytes,
    studies.c.created_at,
    studies.c.updated_at,
)
_SERIES_COLUMNS = (
    series.c.id,
    series.c.series_instance_uid,
    studies.c.study_instance_uid,
    patients.c.patient_id,
    series.c.modality,
    series.c.series_number,
    series.c.series_description,
    series.c.series_date,
    series.c.series_time,
    series.c.body_part_examined,
    series.c.num_instances,
    series.c.size_bytes,
    series.c.created_at,
)
_INSTANCE_COLUMNS = (
    instances.c.id,
    instances.c.sop_instance_uid,
    instances.c.sop_class_uid,
    series.c.series_instance_uid,
    studies.c.study_instance_uid,
    patients.c.patient_id,
    instances.c.instance_number,
    instances.c.content_date,
    instances.c.content_time,
    instances.c.number_of_frames,
    instances.c.rows,
    instances.c.columns,
    instances.c.transfer_syntax_uid,
    instances.c.size,
    instances.c.sha256,
    instances.c.source,
    instances.c.ingested_at,
)
_FILTER_COLUMNS = {
    "patient_id": patients.c.patient_id,
    "study_instance_uid": studies.c.study_instance_uid,
    "series_instance_uid": series.c.series_instance_uid,
    "sop_instance_uid": instances.c.sop_instance_uid,
}
_FILTER_DEPTH = {"patient_id": 0, "study_instance_uid": 1, "series_instance_uid": 2, "sop_instance_uid": 3}
_DELETE_TARGETS = {
    Level.STUDY: (studies.c.study_instance_uid, "study"),
    Level.SERIES: (series.c.series_instance_uid, "series"),
    Level.IMAGE: (instances.c.sop_instance_uid, "instance"),
}


def _dicts(result: Any) -> list[dict[str, Any]]:
    """A result's rows as dictionaries: its column names taken once, not from each row (a row's own
    ``_mapping`` works them out again each time, about as long as the rest of the row's conversion)."""
    names = list(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result]


def _aware_times(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: aware(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _location_select() -> Any:
    return (
        select(
            studies.c.study_instance_uid,
            series.c.series_instance_uid,
            instances.c.sop_instance_uid,
            instances.c.sop_class_uid,
            instances.c.transfer_syntax_uid,
            instances.c.blob_key,
            instances.c.size,
            instances.c.sha256,
        )
        .select_from(instances)
        .join(series, series.c.id == instances.c.series_fk)
        .join(studies, studies.c.id == series.c.study_fk)
        .join(patients, patients.c.id == studies.c.patient_fk)
    )


def _parents_select(study_uid: str, series_uid: str | None) -> Any:
    """The series of a study (or the one series) with their study's and patient's attributes."""
    stmt = (
        select(series.c.id, series.c.attrs, studies.c.attrs, patients.c.attrs)
        .join(studies, studies.c.id == series.c.study_fk)
        .join(patients, patients.c.id == studies.c.patient_fk)
        .where(studies.c.study_instance_uid == study_uid)
    )
    if series_uid is not None:
        stmt = stmt.where(series.c.series_instance_uid == series_uid)
    return stmt


_UNIQUE_KEY_COLUMNS = {
    "PatientID": patients.c.patient_id,
    "StudyInstanceUID": studies.c.study_instance_uid,
    "SeriesInstanceUID": series.c.series_instance_uid,
    "SOPInstanceUID": instances.c.sop_instance_uid,
}


def _locate_page(conditions: Any, after: Any) -> Any:
    """A page of the locations matching ``conditions`` after instance id ``after``: InstanceLocation's
    fields in order, then the instance id."""
    return (
        _location_select()
        .add_columns(instances.c.id)
        .where(conditions, instances.c.id > after)
        .order_by(instances.c.id)
        .limit(_LOCATE_PAGE)
    )


def _location(m: Any) -> InstanceLocation:
    return InstanceLocation(
        study_instance_uid=m["study_instance_uid"],
        series_instance_uid=m["series_instance_uid"],
        sop_instance_uid=m["sop_instance_uid"],
        sop_class_uid=m["sop_class_uid"],
        transfer_syntax_uid=m["transfer_syntax_uid"],
        blob_key=m["blob_key"],
        size=m["size"],
        sha256=m["sha256"],
    )


def _remote_ae(m: Any) -> RemoteAE:
    permissions = parse_ae_permissions(m["permissions"])
    return RemoteAE(m["ae_title"], m["host"], m["port"], m["description"], permissions)


class _Undo(Exception):
    """Rolls a write transaction back from inside it."""


_ACCESS_RESOLUTION = timedelta(hours=1)


def _outside_tier(column: Any, tier: str | None) -> Any:
    return column.is_not(None) if tier is None else or_(column.is_(None), column != tier)


def _has_modality(column: Any, modality: str) -> Any:
    """``modalities_in_study`` (values joined by backslashes) holds ``modality``."""
    sep = "\\"
    return or_(
        column == modality,
        column.startswith(modality + sep, autoescape=True),
        column.endswith(sep + modality, autoescape=True),
        column.contains(sep + modality + sep, autoescape=True),
    )


def _count(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _add_modality(current: str, modality: str) -> str:
    present = set(filter(None, current.split("\\")))
    present.add(modality)
    return "\\".join(sorted(present))


def make_sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'index.db').resolve()}"
