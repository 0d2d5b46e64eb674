"""Archive management: the remote AE registry, deletes, start-up recovery and reindexing from the objects."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from lightbox.domain.accounts import ALL_AE_PERMISSIONS, AePermission, format_ae_permissions
from lightbox.domain.actor import Actor, as_actor
from lightbox.domain.errors import Forbidden, InvalidObject, InvalidQuery, LightboxError, NotFound
from lightbox.domain.levels import Level
from lightbox.domain.uids import is_valid_uid
from lightbox.index.base import Deletion, Index, IndexStatistics, RemoteAE
from lightbox.services.events import EventBus, InstancesDeleted, SettingsChanged
from lightbox.services.ingest import IngestService
from lightbox.storage import keys
from lightbox.storage.base import BlobStore, BlobStoreError

log = logging.getLogger(__name__)

_AE_TITLE = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}")
_HOST = re.compile(r"[A-Za-z0-9.\-:\[\]]{1,253}")
# Recovery looks this far before the newest indexed object: clocks of several nodes drift a little.
_RECOVERY_MARGIN = timedelta(hours=1)
_BATCH = 500
_DELETABLE = {
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.IMAGE: "SOPInstanceUID",
}


@dataclass
class ReindexReport:
    indexed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


class ManageService:
    def __init__(
        self, index: Index, blobs: BlobStore, ingest: IngestService, events: EventBus | None = None
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.ingest = ingest
        self.events = events or EventBus()

    # --- remote AE registry ----------------------------------------------------------------------------
    def add_remote_ae(
        self,
        ae_title: str,
        host: str,
        port: int,
        description: str = "",
        permissions: frozenset[AePermission] = ALL_AE_PERMISSIONS,
        source: Actor | str = "cli",
    ) -> RemoteAE:
        """Register a remote AE; ``permissions``: what it may ask (by default everything)."""
        if not _AE_TITLE.fullmatch(ae_title) or not ae_title.strip():
            raise InvalidObject(
                f"{ae_title!r} is not a valid AE title (1-16 printable characters, no backslash)"
            )
        if not _HOST.fullmatch(host):
            raise InvalidObject(f"{host!r} is not a valid host name or address")
        if not 0 < port < 65536:
            raise InvalidObject(f"port {port} is out of range 1-65535")
        ae = RemoteAE(ae_title.strip(), host, port, description, frozenset(permissions))
        self.index.add_remote_ae(ae)
        what = f"remote AE registered ({host}:{port}, {format_ae_permissions(ae.permissions)})"
        self.events.publish(SettingsChanged(as_actor(source), what, ae.ae_title))
        return ae

    def remove_remote_ae(self, ae_title: str, source: Actor | str = "cli") -> RemoteAE:
        """Remove it from the registry; what it was."""
        ae = self.get_remote_ae(ae_title)
        self.index.remove_remote_ae(ae.ae_title)
        self.events.publish(SettingsChanged(as_actor(source), "remote AE removed", ae.ae_title))
        return ae

    def get_remote_ae(self, ae_title: str) -> RemoteAE:
        ae = self.index.get_remote_ae(ae_title.strip())
        if ae is None:
            raise NotFound(f"no remote AE {ae_title!r} is registered")
        return ae

    def list_remote_aes(self) -> list[RemoteAE]:
        return self.index.list_remote_aes()

    def statistics(self) -> IndexStatistics:
        return self.index.statistics()

    def health(self) -> dict[str, str]:
        """Whether the index and the blob store answer: "ok", or the error, for each."""
        checks: dict[str, str] = {}
        for name, check in (("index", self.index.check), ("storage", self.blobs.check)):
            try:
                check()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"error: {exc}"
        return checks

    # --- delete --------------------------------------------------------------------------------------------
    def delete(self, level: Level, uid: str, source: Actor | str, *, own_only: bool = False) -> Deletion:
        """Delete a study, series or instance: its index rows and its objects, nothing left orphaned.

        The order matters. The rows go first, in one durable transaction that also records the objects'
        keys as pending deletions; then the objects; then the records. A crash after that commit leaves
        objects without rows, which recovery would otherwise index again and so undo an acknowledged
        delete: recovery finishes the recorded deletions first instead. Objects first would be worse: a
        crash then leaves rows whose objects are gone for good.

        ``own_only``: the acting user may delete what they stored only (Forbidden otherwise).
        """
        keyword = _DELETABLE.get(level)
        if keyword is None:
            raise InvalidQuery(f"cannot delete at the {level.value} level")
        if not is_valid_uid(uid):
            raise InvalidQuery(f"{keyword} {uid!r} is not a valid UID")
        actor = as_actor(source)
        if own_only and not actor.user:
            raise Forbidden("only a user's own uploads may be deleted, and this request names no user")
        deletion = self.index.delete_content(level, uid, only_by=actor.user if own_only else None)
        if not self._remove_objects(deletion.blob_keys):
            log.warning("objects of deleted %s %s stay pending until the next start", level.value, uid)
        self.events.publish(
            InstancesDeleted(
                actor,
                level.value,
                uid,
                deletion.patient_id,
                deletion.study_instance_uid,
                deletion.sop_instance_uids,
                deletion.size_bytes,
            )
        )
        return deletion

    def finish_deletions(self) -> int:
        """Remove the objects of deletes that a crash (or a storage failure) interrupted; how many."""
        done = 0
        while pending := self.index.pending_blob_deletions(_BATCH):
            if not self._remove_objects(pending):
                break  # storage fails: the rest waits for the next start
            done += len(pending)
        return done

    def _remove_objects(self, blob_keys: Sequence[str]) -> bool:
        """Delete the objects, then forget their pending records (in batches); False if storage failed."""
        for i in range(0, len(blob_keys), _BATCH):
            batch = blob_keys[i : i + _BATCH]
            removed: list[str] = []
            try:
                for key in batch:
                    self.blobs.delete(key)
                    removed.append(key)
            except BlobStoreError:
                log.exception("cannot remove a deleted object from storage")
                return False
            finally:
                self.index.forget_blob_deletions(removed)
        return True

    # --- recovery and reindex --------------------------------------------------------------------------
    def recover(self) -> ReindexReport:
        """Index every durable object that a crash left unindexed; remove pending writes of dead processes.

        Objects are durable before their index row commits and the commit does not wait for an fsync, so
        after a crash the newest objects may be missing from the index. Only the hour partitions from just
        before the newest indexed object onwards can hold such objects, so only those are listed.
        """
        self.blobs.recover()
        finished = self.finish_deletions()
        if finished:
            log.warning("recovery removed %d objects of interrupted deletes", finished)
        latest = self.index.latest_ingest_time()
        if latest is None:
            candidates: Iterator[str] = self.blobs.keys()
        else:
            candidates = self._keys_since(latest - _RECOVERY_MARGIN)
        report = self._index_unindexed(candidates)
        if report.indexed or report.failed:
            log.warning("recovery indexed %d objects, %d failed", report.indexed, len(report.failed))
        return report

    def reindex(self, progress: Callable[[int], None] | None = None, workers: int = 4) -> ReindexReport:
        """Rebuild the index from the stored objects (the source of truth). The AE registry stays."""
        self.finish_deletions()
        self.index.clear_content()
        return self._index_all(self._not_deleted(self.blobs.keys()), progress, workers)

    def _not_deleted(self, candidates: Iterator[str]) -> Iterator[str]:
        """The keys whose deletion is not pending: a deleted instance must never come back."""
        batch: list[str] = []
        for key in candidates:
            batch.append(key)
            if len(batch) >= _BATCH:
                yield from self._drop_pending(batch)
                batch = []
        yield from self._drop_pending(batch)

    def _drop_pending(self, batch: list[str]) -> list[str]:
        if not batch:
            return batch
        pending = set(self.index.pending_blob_deletions(len(batch), among=batch))
        return [k for k in batch if k not in pending]

    def _keys_since(self, start: datetime) -> Iterator[str]:
        hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        end = datetime.now(UTC) + _RECOVERY_MARGIN
        while hour <= end:
            yield from self.blobs.keys(keys.partition_prefix(hour))
            hour += timedelta(hours=1)

    def _index_unindexed(self, candidates: Iterator[str]) -> ReindexReport:
        report = ReindexReport()
        batch: list[str] = []

        def flush() -> None:
            indexed = self.index.indexed_blob_keys(batch)
            # Pending deletions are looked up after the rows: a delete that commits in between (on another
            # node) is then seen in one of the two.
            missing = self._drop_pending([k for k in batch if k not in indexed])
            part = self._index_all(iter(missing), None, 4)
            report.indexed += part.indexed
            report.failed.extend(part.failed)
            batch.clear()

        for key in candidates:
            batch.append(key)
            if len(batch) >= 500:
                flush()
        if batch:
            flush()
        return report

    def _index_all(
        self, candidates: Iterator[str], progress: Callable[[int], None] | None, workers: int
    ) -> ReindexReport:
        report = ReindexReport()

        def one(key: str) -> tuple[str, str | None]:
            try:
                self.ingest.index_stored(key)
                return key, None
            except LightboxError as exc:
                return key, exc.message
            except Exception as exc:  # a damaged object must not stop the rebuild
                log.exception("cannot index stored object %s", key)
                return key, str(exc)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reindex") as pool:
            # Keys come in time order; index in bounded windows so newer versions win over older ones.
            window: list[str] = []
            for key in candidates:
                window.append(key)
                if len(window) >= workers * 16:
                    self._collect(pool.map(one, window), report, progress)
                    window = []
            if window:
                self._collect(pool.map(one, window), report, progress)
        return report

    @staticmethod
    def _collect(
        results: Iterator[tuple[str, str | None]],
        report: ReindexReport,
        progress: Callable[[int], None] | None,
    ) -> None:
        for key, error in results:
            if error is None:
                report.indexed += 1
            else:
                report.failed.append((key, error))
            if progress:
                progress(1)
