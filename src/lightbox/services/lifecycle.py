"""Storage tiers over time: the lifecycle rules move studies between tiers, the retention rules delete
studies past an age, and studies' last access is noted for the rules that ask for it.

A move copies each object into its new tier, checks the copy's checksum against the index, and then points
the instance at the copy in one transaction that makes the old object a pending deletion a few minutes
later (a retrieval that located it just before can finish). The copy is itself a pending deletion from
before it is written until that transaction: a crash leaves the instance on one whole object, and the
other goes. Retrieval works throughout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from lightbox.config import StorageSettings
from lightbox.domain.actor import Actor
from lightbox.domain.errors import LightboxError
from lightbox.domain.levels import Level
from lightbox.index.base import Index, TierQuery
from lightbox.services.background import BackgroundLoop
from lightbox.services.events import EventBus, InstancesRetrieved
from lightbox.services.manage import ManageService
from lightbox.storage import keys
from lightbox.storage.base import BlobNotFound, BlobStore, BlobStoreError
from lightbox.storage.tiered import split_key, tier_key

log = logging.getLogger(__name__)

RETENTION = Actor("retention")
READERS_GRACE = timedelta(minutes=10)  # an old object stays this long for readers that located it
_WRITER_GRACE = timedelta(hours=1)  # a copy being written is removed by recovery only after this
_BATCH = 50
_CHUNK = 1 << 20


@dataclass
class LifecycleReport:
    moved: dict[str, int] = field(default_factory=dict)  # objects moved into each tier
    failed: int = 0  # objects left where they were (damaged, storage failing): tried again next time
    deleted_studies: int = 0


class LifecycleService:
    def __init__(
        self, index: Index, blobs: BlobStore, manage: ManageService, settings: StorageSettings
    ) -> None:
        self.index = index
        self.blobs = blobs
        self.manage = manage
        self.settings = settings

    def tier_name(self, tier: str | None) -> str:
        return tier or self.settings.first_tier

    def _tier(self, name: str) -> str | None:
        return None if name == self.settings.first_tier else name

    def apply(self, now: datetime | None = None) -> LifecycleReport:
        """Every rule once: moves in the rules' order (a study several rules match ends in the last one's
        tier), then retention."""
        now = now or datetime.now(UTC)
        report = LifecycleReport()
        for rule in self.settings.lifecycle:
            query = TierQuery(
                self._tier(rule.to),
                stored_before=_before(now, rule.older_than_days),
                accessed_before=_before(now, rule.not_accessed_days),
                modality=rule.modality,
            )
            done: set[str] = set()
            while batch := [uid for uid in self.index.studies_for_tier(query, _BATCH) if uid not in done]:
                for uid in batch:
                    done.add(uid)
                    self.move_study(uid, query.tier, report)
        for retention in self.settings.retention:
            cutoff = now - timedelta(days=retention.older_than_days)
            while uids := self.index.studies_stored_before(cutoff, retention.modality, _BATCH):
                for uid in uids:
                    self._delete(uid, report)
        return report

    def move_study(self, study_instance_uid: str, tier: str | None, report: LifecycleReport) -> None:
        for sop, key, sha256 in self.index.objects_outside_tier(study_instance_uid, tier):
            if self._move(sop, key, sha256, tier):
                name = self.tier_name(tier)
                report.moved[name] = report.moved.get(name, 0) + 1
            else:
                report.failed += 1

    def _move(self, sop: str, key: str, sha256: str, tier: str | None) -> bool:
        new_key = tier_key(tier, keys.sibling_key(split_key(key)[1]))
        self.index.note_pending_deletions(sop, [new_key], not_before=datetime.now(UTC) + _WRITER_GRACE)
        try:
            with self.blobs.writer(new_key) as writer:
                for chunk in self.blobs.open_range(key, 0):
                    writer.write(chunk)
                if writer.sha256 != sha256:
                    log.error("not moving %s: its object %s fails its checksum", sop, key)
                    self._drop(new_key)
                    return False
                writer.commit()
            if self.index.move_object(sop, key, new_key, tier, READERS_GRACE):
                return True
        except (BlobNotFound, BlobStoreError) as exc:
            log.warning("cannot move %s to %s now: %s", sop, self.tier_name(tier), exc)
        self._drop(new_key)  # the instance changed or went meanwhile, or the copy failed
        return False

    def _drop(self, key: str) -> None:
        try:
            self.blobs.delete(key)
        except BlobStoreError:
            return  # the pending deletion stays: recovery removes it
        self.index.forget_blob_deletions([key])

    def _delete(self, study_instance_uid: str, report: LifecycleReport) -> None:
        try:
            self.manage.delete(Level.STUDY, study_instance_uid, RETENTION)
        except LightboxError as exc:  # deleted meanwhile
            log.warning("retention could not delete study %s: %s", study_instance_uid, exc)
            return
        report.deleted_studies += 1
        log.info("retention deleted study %s", study_instance_uid)

    def usage(self) -> dict[str, tuple[int, int]]:
        """Instances and bytes per tier, every configured tier listed."""
        counts = {self.tier_name(tier): figures for tier, figures in self.index.tier_usage().items()}
        names = [self.settings.first_tier, *self.settings.tiers]
        return {name: counts.get(name, (0, 0)) for name in names}


def _before(now: datetime, days: float | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


class AccessNotes:
    """Notes when studies are retrieved or viewed (for ``not_accessed_days``), at most once an hour each."""

    def __init__(self, index: Index, events: EventBus, resolution: timedelta = timedelta(hours=1)) -> None:
        self.index = index
        self.resolution = resolution
        self._noted: dict[str, datetime] = {}
        self._lock = threading.Lock()
        events.subscribe(InstancesRetrieved, self._retrieved)

    def _retrieved(self, event: InstancesRetrieved) -> None:
        now = datetime.now(UTC)
        with self._lock:
            due = [
                u
                for u in event.study_instance_uids
                if now - self._noted.get(u, now - 2 * self.resolution) > self.resolution
            ]
            for uid in due:
                self._noted[uid] = now
            if len(self._noted) > 100_000:
                self._noted.clear()
        if due:
            try:
                self.index.note_study_access(due, now)
            except Exception:  # a note missed costs a rule's precision, never the retrieval
                log.exception("could not note study access")


class Lifecycle(BackgroundLoop):
    """Applies the rules in a thread of its own every ``interval``, then removes what is due for removal."""

    def __init__(
        self, service: LifecycleService, interval: timedelta, housekeeping: Callable[[], object] | None = None
    ) -> None:
        super().__init__("lightbox-lifecycle")
        self.service = service
        self.interval = interval
        self.housekeeping = housekeeping

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.service.apply()
                if report.moved or report.deleted_studies or report.failed:
                    log.info(
                        "lifecycle: moved %s, %d failed, %d studies deleted",
                        report.moved,
                        report.failed,
                        report.deleted_studies,
                    )
                if self.housekeeping is not None:
                    self.housekeeping()
            except Exception:
                log.exception("the lifecycle rules failed; tried again later")
            self._stop.wait(self.interval.total_seconds())
