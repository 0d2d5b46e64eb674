"""``python -m bench [--quick] [--only ingest|query|dimse|dicomweb|storage|viewer|scrub] ...``: run, print
tables, write JSON.

Phases: generate (or reuse) the datasets; import the CT instances with 1 thread and with the default
threads; import the small instances into SQLite and index the same objects on PostgreSQL (reindex, or a
bulk copy when a reindex would not fit the time budget); time STUDY-level queries on both; then measure the
DICOM port of ``lightbox serve`` (C-STORE, C-FIND on the same SQLite archive, C-GET and C-MOVE, memory),
then its DICOMweb (QIDO-RS on the same archive, WADO-RS retrieval and metadata, STOW-RS), then the viewer in
a real browser (first image, whole series, study list; cold and warm). After the CT import, the scrub of a
replicated CT archive (``lightbox verify``). See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import DEFAULT_DATA_DIR, dicomweb_phase, dimse_phase, scrub_bench, storage_bench, viewer_bench
from bench.archives import fresh_archive, isolate_from_environment
from bench.dataset import warm_page_cache
from bench.index_bench import (
    analyze_postgres,
    build_postgres,
    build_sqlite,
    copy_to_postgres,
    counts,
    postgres_version,
)
from bench.ingest_bench import run_import
from bench.machine import describe, load_average
from bench.phases import Phases
from bench.phases import dataset as cached_dataset
from bench.query_bench import (
    KINDS,
    WARMUP_PER_KIND,
    Query,
    QueryUnavailable,
    pooled,
    run_queries,
    timed_and_warmup_queries,
)
from bench.report import render, targets, write_json
from lightbox.app import Archive
from lightbox.config import IngestSettings

# CT instances, small instances (index scale, C-FIND, QIDO-RS), the retrieved series (C-GET, C-MOVE,
# WADO-RS), the large object stored over C-STORE, the concurrent associations (each sends ct / associations
# instances), the series whose metadata is timed, the CT instances stored over STOW-RS and the studies
# around the CT series the viewer opens (its study list's archive).
FULL = {
    "ct": 1000,
    "small": 100_000,
    "series": 500,
    "big_object_mib": 1024,
    "associations": 50,
    "metadata_series": 600,
    "stow": 1000,
    "viewer_studies": 10_000,
}
QUICK = {
    "ct": 100,
    "small": 10_000,
    "series": 100,
    "big_object_mib": 200,
    "associations": 10,
    "metadata_series": 100,
    "stow": 200,
    "viewer_studies": 1_000,
}
# --pg-index auto reindexes only when the measured part of the run is projected to stay within this, which
# leaves a margin under the 15-minute ceiling (dataset generation, once per machine, is not counted).
AUTO_BUDGET_S = 12 * 60
RESERVE_S = 90  # PostgreSQL start, queries and clean-up after the PostgreSQL index is built
DIMSE_RESERVE_S = 120  # the DICOM phases that follow the queries in a full run (their import is shared)
DICOMWEB_RESERVE_S = 90  # the DICOMweb phases after them (QIDO-RS shares the import too)
VIEWER_RESERVE_S = 180  # the viewer in a browser, last
AUDIT_ROUNDS = 5  # alternating imports with and without the audit trail
REINDEX_VS_IMPORT = 0.9  # a reindex has run at about 0.9 times the SQLite import rate of the same run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 CT and 10,000 small instances")
    parser.add_argument(
        "--only",
        choices=("ingest", "dimse", "query", "dicomweb", "storage", "viewer", "scrub"),
        help="run only the CT import, only the queries, only the DICOM port (C-STORE, C-FIND, C-GET, "
        "C-MOVE, memory), only DICOMweb (QIDO-RS, WADO-RS, metadata, STOW-RS), only storage (lossless "
        "compression, S3), only the viewer in chromium (first image, whole series, study list) or only the "
        "scrub (lightbox verify) of a replicated CT archive",
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip everything on PostgreSQL")
    parser.add_argument(
        "--pg-index",
        choices=("auto", "reindex", "copy"),
        default="auto",
        help="how PostgreSQL gets the index-scale rows: reindex the objects, bulk-copy the SQLite rows, or "
        "auto (reindex when this run's SQLite import rate projects the run within 12 minutes)",
    )
    parser.add_argument("--queries", type=int, default=50, help="timed queries per kind and engine (50)")
    parser.add_argument("--keep", action="store_true", help="keep the archives built under bench-data/runs")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="default: ./bench-data")
    return parser.parse_args(argv)


def ingest_phase(args: argparse.Namespace, results: dict[str, Any], phases: Phases, count: int) -> None:
    dataset = cached_dataset(args.data_dir, "ct", count, phases)
    results["datasets"]["ct"] = dataset.summary()
    default = IngestSettings().workers
    for workers in sorted({1, default}):
        with phases(f"CT import, {workers} thread{'s' if workers > 1 else ''}"):
            warm_page_cache(dataset.files)
            root = args.data_dir / "runs" / f"ct-{workers}"
            archive = fresh_archive(root)
            try:
                label = f"CT {dataset.total_bytes / len(dataset.files) / 1e3:.0f} kB"
                run = run_import(archive, dataset.files, dataset.total_bytes, workers, label)
            finally:
                archive.close()
            if not args.keep:
                shutil.rmtree(root)
        results["import"].append({**run.as_dict(), "default": workers == default})
    with phases("CT import with and without the audit trail"):
        results["audit_cost"] = audit_cost(args, dataset, default)


def storage_phase(args: argparse.Namespace, results: dict[str, Any], phases: Phases, count: int) -> None:
    dataset = cached_dataset(args.data_dir, "ct", count, phases)
    results["datasets"]["ct"] = dataset.summary()
    storage: dict[str, Any] = {}
    results["storage"] = storage
    with phases("lossless codecs on CT"):
        storage["codecs"] = storage_bench.codec_figures(dataset.files)
    with phases("CT import with compression on and off"):
        storage["compression_import"] = storage_bench.compression_import(
            args.data_dir, dataset.files, dataset.total_bytes, IngestSettings().workers
        )
    with phases("blob stores: filesystem and S3 (moto)"):
        storage["blob_stores"] = storage_bench.blob_store_figures(dataset.files)


def audit_cost(args: argparse.Namespace, dataset: Any, workers: int) -> dict[str, Any]:
    """The import rate with the audit trail recorded and without, in alternating rounds so that the
    disk's own swings fall on both alike; the slowdown compares the medians."""
    rates: dict[str, list[float]] = {"on": [], "off": []}
    cpu_ms: dict[str, list[float]] = {"on": [], "off": []}  # process CPU per object: steadier than rates
    for round_ in range(AUDIT_ROUNDS):
        for audit in (True, False):
            root = args.data_dir / "runs" / f"ct-audit-{audit}"
            archive = fresh_archive(root, audit=audit)
            side = "on" if audit else "off"
            cpu = time.process_time()
            try:
                label = f"round {round_ + 1}, audit {side}"
                run = run_import(archive, dataset.files, dataset.total_bytes, workers, label)
            finally:
                archive.close()  # the last records are written: counted in the CPU, not in the rate
            rates[side].append(run.rate)
            cpu_ms[side].append((time.process_time() - cpu) * 1000 / len(dataset.files))
            shutil.rmtree(root, ignore_errors=True)
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    cpu_on, cpu_off = statistics.median(cpu_ms["on"]), statistics.median(cpu_ms["off"])
    return {
        "workers": workers,
        "instances": len(dataset.files),
        "rounds": AUDIT_ROUNDS,
        "on_per_s": [round(r, 1) for r in rates["on"]],
        "off_per_s": [round(r, 1) for r in rates["off"]],
        "median_on_per_s": round(on, 1),
        "median_off_per_s": round(off, 1),
        "slowdown": round(1 - on / off, 3) if off else None,
        "cpu_ms_per_object_on": round(cpu_on, 2),
        "cpu_ms_per_object_off": round(cpu_off, 2),
    }


def _queries(archive: Archive, note: str, queries: list[Query], warmup: list[Query]) -> dict[str, Any]:
    try:
        kinds = run_queries(archive, queries, warmup)
    except QueryUnavailable as exc:
        return {"skipped": str(exc)}
    return {"note": note, **pooled(kinds)}


def query_phase(
    args: argparse.Namespace,
    results: dict[str, Any],
    phases: Phases,
    count: int,
    started: float,
    later_s: float,
) -> Path:
    """Index scale and queries; returns the SQLite archive's directory, closed, for the C-FIND part.

    ``later_s`` is the time the phases after this one are expected to take, for the PostgreSQL budget."""
    dataset = cached_dataset(args.data_dir, "small", count, phases)
    results["datasets"]["small"] = dataset.summary()
    workers = IngestSettings().workers
    queries, warmup = timed_and_warmup_queries(count, args.queries)
    index: dict[str, Any] = {"instances": count, "counts": {}}
    query: dict[str, Any] = {
        "instances": count,
        "per_kind": args.queries,
        "warmup_per_kind": WARMUP_PER_KIND,
        "kinds": list(KINDS),
        "engines": {},
    }
    results["index"], results["query"] = index, query
    runs = args.data_dir / "runs"

    with phases(f"import {count:,} small instances into SQLite"):
        warm_page_cache(dataset.files)
        sqlite_archive, sqlite_run = build_sqlite(runs / "index-sqlite", dataset, workers)
    index["sqlite_import"] = sqlite_run.as_dict()
    try:
        index["counts"]["SQLite"] = counts(sqlite_archive)
        with phases("queries on SQLite"):
            note = "as the archive leaves it: no ANALYZE"
            query["engines"]["sqlite"] = _queries(sqlite_archive, note, queries, warmup)
        if args.no_postgres:
            index["postgresql"] = query["engines"]["postgresql"] = {"skipped": "--no-postgres"}
        else:
            measured = time.perf_counter() - started - phases.seconds("dataset ") + later_s
            postgres_part(args, results, phases, sqlite_archive, queries, warmup, workers, measured)
    finally:
        sqlite_archive.close()
    return sqlite_archive.settings.data_dir


def postgres_part(
    args: argparse.Namespace,
    results: dict[str, Any],
    phases: Phases,
    sqlite_archive: Archive,
    queries: list[Query],
    warmup: list[Query],
    workers: int,
    measured: float,
) -> None:
    from tests.support.postgres import PostgresUnavailable, create_database, postgres_server

    index, query = results["index"], results["query"]
    method, why = _pg_method(args.pg_index, index, measured)
    root = args.data_dir / "runs" / "index-pg"
    try:
        with postgres_server(fsync=True) as server_url:
            database_url = create_database(server_url, "lightbox_bench")
            results["machine"]["postgresql"] = postgres_version(database_url)
            if method == "reindex":
                with phases(f"reindex {index['instances']:,} instances into PostgreSQL") as entry:
                    entry["note"] = why
                    objects = sqlite_archive.settings.storage_url
                    pg_archive, built = build_postgres(root, database_url, objects, workers)
            else:
                with phases(f"bulk-copy {index['instances']:,} instances' rows into PostgreSQL") as entry:
                    entry["note"] = why
                    pg_archive, built = copy_to_postgres(root, database_url, sqlite_archive)
            index["postgresql"] = {**built.as_dict(), "method": method, "why": why}
            try:
                index["counts"]["PostgreSQL"] = counts(pg_archive)
                with phases("queries on PostgreSQL") as entry:
                    analyzed = analyze_postgres(database_url)
                    entry["note"] = f"ANALYZE took {analyzed:.1f} s"
                    note = "after ANALYZE, as autovacuum would do"
                    query["engines"]["postgresql"] = _queries(pg_archive, note, queries, warmup)
            finally:
                pg_archive.close()
    except PostgresUnavailable as exc:
        index["postgresql"] = query["engines"]["postgresql"] = {"skipped": str(exc)}


def _pg_method(choice: str, index: dict[str, Any], measured: float) -> tuple[str, str]:
    """Reindex or bulk copy, and why: ``auto`` projects the reindex from this run's SQLite import rate."""
    if choice != "auto":
        return choice, f"--pg-index {choice}"
    rate = REINDEX_VS_IMPORT * index["sqlite_import"]["instances_per_s"]
    projected = measured + index["instances"] / max(rate, 1.0) + RESERVE_S
    if projected <= AUTO_BUDGET_S:
        return "reindex", f"auto: the run is projected at {projected / 60:.1f} min with it"
    return "copy", (
        f"auto: a reindex at about {rate:.0f}/s would take the run to {projected / 60:.1f} min, past "
        f"{AUTO_BUDGET_S // 60} min; --pg-index reindex measures it anyway"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    isolate_from_environment()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sizes = QUICK if args.quick else FULL
    args.data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "run": {
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "mode": "quick" if args.quick else "full",
            "only": args.only,
            "argv": sys.argv[1:] if argv is None else argv,
        },
        "machine": describe(args.data_dir),
        "datasets": {},
        "import": [],
    }
    phases = Phases()
    results["phases"] = phases.items
    index_archive = None
    try:
        if args.only in (None, "ingest"):
            ingest_phase(args, results, phases, sizes["ct"])
        if args.only in (None, "scrub"):
            # Before the queries: its time counts in what --pg-index auto has measured by then.
            scrub_bench.run(args, results, phases, sizes["ct"])
        if args.only in (None, "query"):
            later = DIMSE_RESERVE_S + DICOMWEB_RESERVE_S + VIEWER_RESERVE_S if args.only is None else 0.0
            index_archive = query_phase(args, results, phases, sizes["small"], started, later)
        if args.only in (None, "dimse"):
            # After the queries: C-FIND is served from the archive they were timed on, imported once.
            dimse_phase.run(args, results, phases, sizes, index_archive)
        if args.only in (None, "dicomweb"):
            # After the DICOM port: QIDO-RS is served from the archive C-FIND was, imported once for both.
            dicomweb_phase.run(args, results, phases, sizes, index_archive)
        if args.only in (None, "storage"):
            storage_phase(args, results, phases, sizes["ct"])
        if args.only in (None, "viewer"):
            viewer_bench.run(args, results, phases, sizes)
    finally:
        if not args.keep:
            with phases("remove the run's archives"):
                shutil.rmtree(args.data_dir / "runs", ignore_errors=True)
        results["run"]["seconds"] = round(time.perf_counter() - started, 1)
        results["machine"]["load_average_at_end"] = load_average()
        results["targets"] = targets(results)
        write_json(results, args.data_dir / "results.json")
        print(render(results))
        print(f"\nresults written to {args.data_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
