"""Lossless compression of stored objects: each uncompressed object is re-encoded (``formats.lossless``),
proven pixel for pixel, and put in place of the original through the ingest service, which keeps both
checksums (the replacement record) and makes the swap crash-safe.

``Compressor`` runs it in the background of ``lightbox serve``: right after objects arrive (their senders
were answered already, so ingest does not wait for the codec) and over older objects, a batch at a time;
``lightbox compress`` runs it over the whole archive at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from lightbox.domain.actor import Actor
from lightbox.domain.compression import Codec
from lightbox.formats import lossless
from lightbox.formats.lossless import KeptAsIs
from lightbox.index.base import CompressionCandidate, Index, StoreOutcome
from lightbox.services.background import BackgroundLoop
from lightbox.services.ingest import IngestService
from lightbox.storage.base import BlobNotFound, BlobStore, BlobStoreError

log = logging.getLogger(__name__)

ACTOR = Actor("compression")
# A re-encoding being written is removed by recovery only after this: by then its writer has finished
_GRACE = timedelta(hours=1)
_BATCH = 50


@dataclass
class CompressionReport:
    compressed: int = 0
    kept: int = 0  # left as they are, with the reason recorded
    skipped: int = 0  # changed, deleted or unreadable meanwhile: tried again later
    bytes_before: int = 0
    bytes_after: int = 0

    def add(self, other: CompressionReport) -> None:
        self.compressed += other.compressed
        self.kept += other.kept
        self.skipped += other.skipped
        self.bytes_before += other.bytes_before
        self.bytes_after += other.bytes_after


class CompressionService:
    def __init__(self, index: Index, blobs: BlobStore, ingest: IngestService, codec: Codec) -> None:
        self.index = index
        self.blobs = blobs
        self.ingest = ingest
        self.codec = codec

    def compress_batch(self, after_id: int = 0, limit: int = _BATCH) -> tuple[CompressionReport, int | None]:
        """Compress the next ``limit`` candidates after row ``after_id``; the report and the last row id
        seen (None: none was left)."""
        report = CompressionReport()
        candidates = self.index.compression_candidates(lossless.UNCOMPRESSED, after_id, limit)
        for candidate in candidates:
            self.compress_one(candidate, report)
        return report, candidates[-1].id if candidates else None

    def compress_all(self, progress: Callable[[CompressionReport], None] | None = None) -> CompressionReport:
        total, after = CompressionReport(), 0
        while True:
            report, last = self.compress_batch(after)
            if last is None:
                return total
            total.add(report)
            after = last
            if progress is not None:
                progress(total)

    def compress_one(self, candidate: CompressionCandidate, report: CompressionReport) -> None:
        sop = candidate.sop_instance_uid
        try:
            with self.blobs.open(candidate.blob_key) as f:
                original = f.read(lossless.MAX_PIXEL_BYTES * 2 + 1)
            if len(original) > lossless.MAX_PIXEL_BYTES * 2:
                raise KeptAsIs("too large to re-encode in memory")
            compressed = lossless.compress(original, self.codec)
            if len(compressed) >= len(original):
                raise KeptAsIs(f"{self.codec.value} does not make it smaller")
        except KeptAsIs as why:
            self.index.keep_uncompressed(sop, candidate.sha256, str(why))
            report.kept += 1
            return
        except (BlobNotFound, BlobStoreError) as exc:  # deleted meanwhile, or storage failing: later
            log.warning("cannot compress %s now: %s", sop, exc)
            report.skipped += 1
            return
        except Exception as exc:  # an object pydicom cannot take apart: keep it, and say why
            log.warning("keeping %s uncompressed: %s", sop, exc)
            self.index.keep_uncompressed(sop, candidate.sha256, f"could not be re-encoded: {exc}")
            report.kept += 1
            return
        outcome = self.ingest.store_reencoding(compressed, candidate, ACTOR, _GRACE)
        if outcome is StoreOutcome.REPLACED:
            report.compressed += 1
            report.bytes_before += len(original)
            report.bytes_after += len(compressed)
        else:
            report.skipped += 1


class Compressor(BackgroundLoop):
    """Compresses in a thread of its own: a batch, then the next; when none is left, removes the originals
    whose readers are done and pauses ``idle_seconds`` before looking for newly stored objects."""

    def __init__(
        self,
        service: CompressionService,
        housekeeping: Callable[[], object] | None = None,
        idle_seconds: float = 2.0,
    ) -> None:
        super().__init__("lightbox-compress")
        self.service = service
        self.housekeeping = housekeeping  # removes the replaced originals once their readers are done
        self.idle_seconds = idle_seconds
        self.total = CompressionReport()

    def _run(self) -> None:
        after = 0
        while not self._stop.is_set():
            try:
                report, last = self.service.compress_batch(after)
            except Exception:
                log.exception("compression stopped for a while")
                self._stop.wait(self.idle_seconds * 10)
                continue
            self.total.add(report)
            if last is not None:
                after = last
                continue
            if self.housekeeping is not None:
                try:
                    self.housekeeping()
                except Exception:
                    log.exception("removing replaced objects failed; tried again later")
            self._stop.wait(self.idle_seconds)
