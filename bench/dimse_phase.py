"""``--only dimse``: Lightbox's DICOM port measured against a running ``lightbox serve`` and dcmtk's tools.

Four parts, each a phase of its own, each recorded under ``results["dimse"]``: C-STORE ingest against
storescp, C-FIND latency at index scale, C-GET and C-MOVE of one CT series, and the server's resident memory
under C-STORE. A part that fails is recorded with its error and the run goes on with the next one, so a
broken service shows up in the report instead of hiding the parts that work.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.dcmtk import DcmtkMissing, tool
from tests.support.server import running_server

from bench import dimse_find, dimse_memory, dimse_retrieve, dimse_store
from bench.ct import series_uids
from bench.dataset import warm_page_cache
from bench.index_bench import import_small_archive
from bench.phases import Phases, dataset
from bench.query_bench import WARMUP_PER_KIND, pooled, timed_and_warmup_queries


@contextmanager
def _part(phases: Phases, name: str, dimse: dict[str, Any], key: str) -> Iterator[dict[str, Any]]:
    """Run one part as a phase; its failure is recorded in ``dimse[key]`` and the phase's note."""
    with phases(name) as entry:
        try:
            yield entry
        except DcmtkMissing as exc:
            dimse[key] = {"skipped": str(exc)}
            entry["note"] = f"skipped: {exc}"
        except Exception as exc:  # a broken part must not hide the others
            dimse[key] = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"}
            entry["note"] = f"FAILED: {type(exc).__name__}"


def run(
    args: argparse.Namespace,
    results: dict[str, Any],
    phases: Phases,
    sizes: dict[str, int],
    index_archive: Path | None,
) -> None:
    """Every DICOM part; ``index_archive`` is the query benchmark's SQLite archive when it ran before."""
    dimse: dict[str, Any] = {}
    results["dimse"] = dimse
    runs = args.data_dir / "runs"
    try:
        for name in ("storescu", "storescp", "getscu", "movescu", "dcmqrscp", "dcmqridx"):
            tool(name)
    except DcmtkMissing as exc:
        dimse["skipped"] = str(exc)
        return
    cts = dataset(args.data_dir, "ct", sizes["ct"], phases)
    results["datasets"]["ct"] = cts.summary()

    with _part(phases, "DICOM C-STORE ingest vs storescp", dimse, "store"):
        warm_page_cache(cts.files)
        dimse["store"] = {"rows": dimse_store.run(cts.files, cts.total_bytes, runs)}

    find_part(args, results, phases, sizes["small"], index_archive)

    series = dataset(args.data_dir, "ct-series", sizes["series"], phases)
    results["datasets"]["ct-series"] = series.summary()
    name = f"DICOM C-GET and C-MOVE of a {sizes['series']}-instance series"
    with _part(phases, name, dimse, "retrieve"):
        warm_page_cache(series.files)
        uids = series_uids()
        dimse["retrieve"] = dimse_retrieve.run(series.files, series.total_bytes, uids, runs)

    memory: dict[str, Any] = {}
    dimse["memory"] = memory
    mib = sizes["big_object_mib"]
    name = f"serve memory: one {dimse_memory.size_label(mib)} object over C-STORE"
    with _part(phases, name, memory, "big_object"):
        memory["big_object"] = dimse_memory.big_object(mib, runs)
    associations = sizes["associations"]
    name = f"serve memory: {associations} associations at once"
    with _part(phases, name, memory, "concurrent"):
        warm_page_cache(cts.files)
        memory["concurrent"] = dimse_memory.concurrent(cts.files, cts.total_bytes, associations, runs)


def find_part(
    args: argparse.Namespace, results: dict[str, Any], phases: Phases, count: int, archive: Path | None
) -> None:
    """C-FIND over the query benchmark's archive, or over one imported here the same way."""
    dimse = results["dimse"]
    find: dict[str, Any] = {"instances": count, "per_kind": args.queries, "warmup_per_kind": WARMUP_PER_KIND}
    if archive is None:
        small = dataset(args.data_dir, "small", count, phases)
        results["datasets"]["small"] = small.summary()
        with _part(phases, f"import {count:,} small instances for C-FIND", dimse, "find"):
            archive, find["archive"] = import_small_archive(args.data_dir, small)
        if archive is None:
            return
    else:
        find["archive"] = "the query benchmark's SQLite archive, served as it left it"
    with _part(phases, f"DICOM C-FIND latency at {count:,} instances", dimse, "find"):
        queries, warmup = timed_and_warmup_queries(count, args.queries)
        with running_server(archive, aes=[dimse_find.CLIENT_AE]) as server:
            port = server.dicom_port
            kinds = dimse_find.run_own_scu(port, "LIGHTBOX", queries, warmup)
            python_kinds, echo = dimse_find.run(port, "LIGHTBOX", queries, warmup)
            reference = dimse_find.findscu_reference(port, "LIGHTBOX", queries, dimse_find.FINDSCU_REPEATS)
        pynetdicom = {**pooled(python_kinds), "echo": echo}
        dimse["find"] = {**find, **pooled(kinds), "pynetdicom": pynetdicom, "findscu": reference}
