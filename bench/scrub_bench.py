"""Scrub rate: ``lightbox verify`` over a replicated archive of CT objects, both copies read back and
checked against their SHA-256.

Up to ``MAX_OBJECTS`` of the CT dataset are imported into an archive whose every object also goes to a
replica store (and, for reference, into one without a replica: what synchronous replication costs
ingest). Then the scrub runs twice: with the objects still in the page cache (what hashing and the read
path cost) and after the archive's files were dropped from it, so that each byte is read from the disk
(what a scrub of an archive larger than memory sees).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

from bench.archives import fresh_archive
from bench.dataset import warm_page_cache
from bench.ingest_bench import run_import
from bench.phases import Phases
from bench.phases import dataset as cached_dataset
from bench.tables import table
from lightbox.config import IngestSettings
from lightbox.services.verify import VerifyReport

MAX_OBJECTS = 500  # 263 MB of CT, twice that read by a scrub: the part stays within a minute


def run(args: argparse.Namespace, results: dict[str, Any], phases: Phases, dataset_count: int) -> None:
    dataset = cached_dataset(args.data_dir, "ct", dataset_count, phases)
    results["datasets"]["ct"] = dataset.summary()
    files = dataset.files[:MAX_OBJECTS]
    count, source_bytes = len(files), sum(path.stat().st_size for path in files)
    root = args.data_dir / "runs" / "scrub"
    workers = IngestSettings().workers
    scrub: dict[str, Any] = {"instances": count}
    with phases(f"CT import without a replica, {workers} threads (the reference)"):
        warm_page_cache(files)
        plain = fresh_archive(root)
        try:
            scrub["import_plain"] = run_import(plain, files, source_bytes, workers, "CT, one store").as_dict()
        finally:
            plain.close()
    archive = fresh_archive(root, replica_url=f"file://{(root / 'replica').resolve()}")
    try:
        with phases(f"CT import into a replicated archive, {workers} threads"):
            warm_page_cache(files)
            imported = run_import(archive, files, source_bytes, workers, "CT, replicated")
            scrub["import"] = imported.as_dict()
        for cache in ("warm", "cold"):
            with phases(f"scrub {count:,} CT objects and their replicas, page cache {cache}"):
                if cache == "cold":
                    _drop_from_page_cache([root / "objects", root / "replica"])
                scrub[cache] = _figures(archive.verify.verify())
    finally:
        archive.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    results["scrub"] = scrub


def _figures(report: VerifyReport) -> dict[str, Any]:
    return {
        "objects": report.objects,
        "bytes_read": report.bytes_read,
        "seconds": round(report.seconds, 3),
        "mb_per_s": round(report.mb_per_second, 1),
        "objects_per_s": round(report.objects / report.seconds, 1) if report.seconds else 0.0,
        "problems": len(report.problems),
    }


def _drop_from_page_cache(folders: list[Path]) -> None:
    """Ask the kernel to forget the cached pages of these files (they are clean: fsynced at commit)."""
    for folder in folders:
        for path in folder.rglob("*.dcm"):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def scrub_lines(scrub: dict[str, Any]) -> list[str]:
    imported, plain = scrub["import"], scrub["import_plain"]
    title = (
        f"Scrub (lightbox verify) of {scrub['instances']:,} CT objects, each read back from the primary and "
        "the replica and hashed"
    )
    rows = [
        [
            f"page cache {cache}",
            f"{scrub[cache]['objects']:,}",
            f"{scrub[cache]['bytes_read'] / 1e6:,.0f}",
            f"{scrub[cache]['seconds']:.2f}",
            f"{scrub[cache]['mb_per_s']:,.0f}",
            f"{scrub[cache]['objects_per_s']:,.0f}",
            str(scrub[cache]["problems"]),
        ]
        for cache in ("warm", "cold")
        if cache in scrub
    ]
    return [
        title,
        *table(["scrub", "objects", "MB read", "seconds", "MB/s", "objects/s", "problems"], rows),
        f"  CT import ({imported['workers']} threads): {imported['instances_per_s']:.0f}/s replicated "
        f"({imported['blob_fsyncs_per_object']:.1f} fsyncs/object, {imported['failed']} failed), "
        f"{plain['instances_per_s']:.0f}/s into one store "
        f"({plain['blob_fsyncs_per_object']:.1f} fsyncs/object)",
        "",
    ]
