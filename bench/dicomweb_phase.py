"""``--only dicomweb``: DICOMweb on the HTTP port of a running ``lightbox serve``, measured with httpx.

Four parts, each a phase of its own, each recorded under ``results["dicomweb"]``: QIDO-RS latency at index
scale, WADO-RS retrieval of one CT series against reading its files, WADO-RS metadata of a series, and
STOW-RS ingest with 1 and 4 clients. A part that fails is recorded with its error and the run goes on.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.server import running_server

from bench import dicomweb_frames, dicomweb_metadata, dicomweb_qido, dicomweb_stow, dicomweb_wado
from bench.archives import fresh_archive
from bench.ct import header_series_uids, series_uids
from bench.dataset import DatasetInfo, warm_page_cache
from bench.index_bench import import_small_archive
from bench.ingest_bench import run_import
from bench.phases import Phases, dataset
from bench.query_bench import WARMUP_PER_KIND, pooled, timed_and_warmup_queries
from lightbox.config import IngestSettings

STOW_DATASET = 1000  # STOW-RS posts files of ct-1000, the full run's CT dataset, in quick runs as well
STOW_CLIENTS = (1, 4)


@contextmanager
def _part(phases: Phases, name: str, web: dict[str, Any], key: str) -> Iterator[dict[str, Any]]:
    """Run one part as a phase; its failure is recorded in ``web[key]`` and the phase's note."""
    with phases(name) as entry:
        try:
            yield entry
        except Exception as exc:  # a broken part must not hide the others
            web[key] = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"}
            entry["note"] = f"FAILED: {type(exc).__name__}"


def _note_dataset(results: dict[str, Any], kind: str, info: DatasetInfo) -> None:
    """Record a dataset under its kind, or under its name when another of that kind is recorded already."""
    known = results["datasets"].get(kind)
    key = kind if known is None or known["name"] == info.name else info.name
    results["datasets"][key] = info.summary()


def run(
    args: argparse.Namespace,
    results: dict[str, Any],
    phases: Phases,
    sizes: dict[str, int],
    index_archive: Path | None,
) -> None:
    """Every DICOMweb part; ``index_archive`` is the query benchmark's SQLite archive when it ran before."""
    results["dicomweb"] = {}
    qido_part(args, results, phases, sizes["small"], index_archive)
    series_parts(args, results, phases, sizes["series"], sizes["metadata_series"])
    stow_part(args, results, phases, sizes["stow"])


def qido_part(
    args: argparse.Namespace, results: dict[str, Any], phases: Phases, count: int, archive: Path | None
) -> None:
    """QIDO-RS over the query benchmark's archive, or over one imported here the same way."""
    web = results["dicomweb"]
    qido: dict[str, Any] = {"instances": count, "per_kind": args.queries, "warmup_per_kind": WARMUP_PER_KIND}
    if archive is None:
        small = dataset(args.data_dir, "small", count, phases)
        _note_dataset(results, "small", small)
        with _part(phases, f"import {count:,} small instances for QIDO-RS", web, "qido"):
            archive, qido["archive"] = import_small_archive(args.data_dir, small)
        if archive is None:
            return
    else:
        qido["archive"] = "the query benchmark's SQLite archive, served as it left it"
    with _part(phases, f"QIDO-RS latency at {count:,} instances", web, "qido"):
        queries, warmup = timed_and_warmup_queries(count, args.queries)
        with running_server(archive) as server:
            kinds = dicomweb_qido.run(server.base_url, server.headers, queries, warmup)
            maximum = dicomweb_qido.server_maximum(server.base_url, server.headers)
        web["qido"] = {**qido, **pooled(kinds), "server_maximum": maximum}


def series_parts(
    args: argparse.Namespace, results: dict[str, Any], phases: Phases, count: int, headers_count: int
) -> None:
    """WADO-RS retrieval of the CT series and metadata of the header series, both stored in one archive."""
    web = results["dicomweb"]
    series = dataset(args.data_dir, "ct-series", count, phases)
    _note_dataset(results, "ct-series", series)
    headers = dataset(args.data_dir, "ct-headers", headers_count, phases)
    _note_dataset(results, "ct-headers", headers)
    root = args.data_dir / "runs" / "dicomweb-series"
    data: Path | None = None
    name = f"import the series for WADO-RS ({count} CT, {headers_count} headers)"
    with _part(phases, name, web, "wado") as entry:
        files = series.files + headers.files
        warm_page_cache(files)
        archive = fresh_archive(root)
        try:
            # Not timed as such: a series just stored is what a viewer opens, its objects in the page cache.
            workers = IngestSettings().workers
            total = series.total_bytes + headers.total_bytes
            imported = run_import(archive, files, total, workers, "series import")
        finally:
            archive.close()
        if imported.failed:
            raise RuntimeError(f"{imported.failed} of {len(files)} instances failed to import")
        entry["note"] = f"{imported.rate:,.0f} instances/s"
        data = root
    if data is None:
        web["metadata"] = {"error": "the series could not be imported"}
        return
    name = f"WADO-RS retrieval of a {count}-instance series"
    with _part(phases, name, web, "wado"), running_server(data) as server:
        stored = sorted(p for p in (data / "objects").rglob("*.dcm") if p.is_file())
        web["wado"] = dicomweb_wado.run(
            server.base_url, server.headers, series_uids(), series.files, series.total_bytes, stored
        )
    name = f"WADO-RS frames of a {count}-instance series, one request at a time"
    with _part(phases, name, web, "frames"), running_server(data) as server:
        pid = server.process.pid
        web["frames"] = dicomweb_frames.run(server.base_url, server.headers, series_uids(), pid)
    name = f"WADO-RS metadata of a {headers_count}-instance series"
    with _part(phases, name, web, "metadata"), running_server(data) as server:
        web["metadata"] = dicomweb_metadata.run(
            server.base_url, server.headers, header_series_uids(), headers_count
        )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


def stow_part(args: argparse.Namespace, results: dict[str, Any], phases: Phases, count: int) -> None:
    """The first ``count`` files of ct-1000 over STOW-RS, by each number of clients into a fresh archive."""
    cts = dataset(args.data_dir, "ct", STOW_DATASET, phases)
    _note_dataset(results, "ct", cts)
    files = cts.files[:count]
    total = sum(p.stat().st_size for p in files)
    stow: dict[str, Any] = {"instances": len(files), "per_request": dicomweb_stow.PER_REQUEST, "rows": []}
    results["dicomweb"]["stow"] = stow
    for clients in STOW_CLIENTS:
        name = f"STOW-RS of {len(files):,} CT instances, {clients} client{'s' if clients > 1 else ''}"
        with _part(phases, name, stow, f"error_{clients}"):
            warm_page_cache(files)
            stow["rows"].append(dicomweb_stow.run(files, total, clients, args.data_dir / "runs"))
