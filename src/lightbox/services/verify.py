"""Scrub: read every indexed object back from each store, recompute its size and SHA-256 against the index,
and report what is missing, unreadable or damaged, and what storage holds that no instance refers to
(orphans). With ``repair``, a bad copy is restored from a good one: the primary from the replica, or the
replica from the primary.

It runs beside a serving archive: a problem is reported only if the instance still refers to the same object
after it was seen (a delete or a re-encoding meanwhile is no damage), and objects written in the last minutes
are not called orphans (their index row may be about to commit).
"""

from __future__ import annotations

import enum
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta

from lightbox.index.base import Index, InstanceLocation
from lightbox.storage import keys
from lightbox.storage.base import BlobNotFound, BlobStore, BlobStoreError

log = logging.getLogger(__name__)

_PAGE = 200
_KEY_BATCH = 500
# An object this recent may be one whose index row is not committed yet: not an orphan (yet)
_IN_FLIGHT = timedelta(minutes=10)


class Fault(enum.StrEnum):
    MISSING = "missing"
    UNREADABLE = "unreadable"
    DAMAGED = "damaged"
    ORPHAN = "orphan"


@dataclass(frozen=True, slots=True)
class Problem:
    """One copy that is not what the index says. ``store`` is "primary" or "replica"; ``repair`` says what
    ``repair`` did (None when it was not asked for, or for orphans, which it leaves alone)."""

    store: str
    blob_key: str
    sop_instance_uid: str | None  # None for an orphan
    fault: Fault
    detail: str
    repaired: bool = False
    repair: str | None = None


@dataclass
class VerifyReport:
    objects: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def mb_per_second(self) -> float:
        return self.bytes_read / 1e6 / self.seconds if self.seconds > 0 else 0.0

    @property
    def unresolved(self) -> list[Problem]:
        return [p for p in self.problems if not p.repaired]

    @property
    def repaired(self) -> list[Problem]:
        return [p for p in self.problems if p.repaired]

    def as_dict(self) -> dict[str, object]:
        return {
            "objects": self.objects,
            "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "mb_per_second": round(self.mb_per_second, 3),
            "problems": [asdict(p) for p in self.problems],
            "repaired": len(self.repaired),
            "unresolved": len(self.unresolved),
        }


@dataclass(frozen=True, slots=True)
class _Copy:
    name: str
    store: BlobStore


class VerifyService:
    def __init__(
        self, index: Index, primary: BlobStore, replica: BlobStore | None = None, workers: int = 2
    ) -> None:
        self.index = index
        self.copies = [_Copy("primary", primary)] + ([_Copy("replica", replica)] if replica else [])
        self.workers = workers

    def verify(
        self, *, repair: bool = False, progress: Callable[[VerifyReport], None] | None = None
    ) -> VerifyReport:
        """Check every copy of every indexed object, then look for orphans; with ``repair``, restore bad
        copies from good ones."""
        report = VerifyReport()
        started = time.monotonic()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="lightbox-verify") as pool:
            after = None
            while page := self.index.stored_objects(after, _PAGE):
                for problems, read in pool.map(lambda o: self._verify_one(o, repair), page):
                    report.problems.extend(problems)
                    report.bytes_read += read
                report.objects += len(page)
                after = page[-1].blob_key
                if progress is not None:
                    progress(report)
        for copy in self.copies:
            report.problems.extend(self._orphans(copy))
        report.seconds = time.monotonic() - started
        return report

    # --- one object ----------------------------------------------------------------------------------
    def _verify_one(self, obj: InstanceLocation, repair: bool) -> tuple[list[Problem], int]:
        faults: list[tuple[_Copy, Fault, str]] = []
        read = 0
        for copy in self.copies:
            fault, detail, count = _check(copy.store, obj)
            read += count
            if fault is not None:
                faults.append((copy, fault, detail))
        if faults and not self._still_current(obj):
            return [], read  # deleted or replaced meanwhile: what was seen is no longer the instance
        problems = []
        for copy, fault, detail in faults:
            problem = Problem(copy.name, obj.blob_key, obj.sop_instance_uid, fault, detail)
            if repair:
                problem = self._repair(problem, obj, copy, faults)
            problems.append(problem)
        return problems, read

    def _still_current(self, obj: InstanceLocation) -> bool:
        found = self.index.find_instance(obj.sop_instance_uid)
        return found is not None and found.blob_key == obj.blob_key

    def _repair(
        self, problem: Problem, obj: InstanceLocation, bad: _Copy, faults: list[tuple[_Copy, Fault, str]]
    ) -> Problem:
        bad_names = {copy.name for copy, _, _ in faults}
        good = next((c for c in self.copies if c.name not in bad_names), None)
        if good is None:
            why = "no replica (storage.replica_url)" if len(self.copies) == 1 else "no good copy left"
            return _with(problem, False, f"not repairable: {why}")
        try:
            info = bad.store.put(obj.blob_key, good.store.open_range(obj.blob_key, 0))
        except (BlobNotFound, BlobStoreError) as exc:
            return _with(problem, False, f"not repaired: copying from the {good.name} failed: {exc}")
        if (info.size, info.sha256) != (obj.size, obj.sha256):
            return _with(problem, False, f"not repaired: the {good.name} copy changed while it was copied")
        if not self._still_current(obj):
            # A delete came in meanwhile: the copy just restored must not outlive it
            bad.store.delete(obj.blob_key)
            return _with(problem, False, "not repaired: the instance was deleted meanwhile")
        log.warning("restored the %s copy of %s from the %s", bad.name, obj.blob_key, good.name)
        return _with(problem, True, f"restored from the {good.name}")

    # --- orphans ---------------------------------------------------------------------------------------
    def _orphans(self, copy: _Copy) -> Iterator[Problem]:
        """Objects no instance refers to and no pending deletion covers."""
        cutoff_us = int((datetime.now(UTC) - _IN_FLIGHT).timestamp() * 1_000_000)
        batch: list[str] = []
        for key in copy.store.keys(""):  # every key
            if keys.key_time_us(key) < cutoff_us:
                batch.append(key)
            if len(batch) >= _KEY_BATCH:
                yield from self._unreferenced(copy, batch)
                batch = []
        yield from self._unreferenced(copy, batch)

    def _unreferenced(self, copy: _Copy, batch: list[str]) -> Iterator[Problem]:
        if not batch:
            return
        indexed = self.index.indexed_blob_keys(batch)
        # Pending deletions after the rows, as recovery does: a delete committing in between is in one of them
        rest = [k for k in batch if k not in indexed]
        pending = set(self.index.pending_blob_deletions(len(rest), among=rest)) if rest else set()
        for key in rest:
            if key not in pending and copy.store.exists(key):  # still there: not removed meanwhile
                yield Problem(copy.name, key, None, Fault.ORPHAN, "no instance refers to it")


def _check(store: BlobStore, obj: InstanceLocation) -> tuple[Fault | None, str, int]:
    """Read one copy through: its fault (None: sound), what is wrong, and how many bytes were read."""
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in store.open_range(obj.blob_key, 0):
            digest.update(chunk)
            size += len(chunk)
    except BlobNotFound:
        return Fault.MISSING, "not in the store", size
    except BlobStoreError as exc:
        return Fault.UNREADABLE, str(exc), size
    if size != obj.size:
        return Fault.DAMAGED, f"{size} bytes where {obj.size} were stored", size
    if digest.hexdigest() != obj.sha256:
        return Fault.DAMAGED, "SHA-256 differs from the one recorded at ingest", size
    return None, "", size


def _with(problem: Problem, repaired: bool, what: str) -> Problem:
    return replace(problem, repaired=repaired, repair=what)
