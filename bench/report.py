"""The results of a run: the targets they are held against, the printed tables and ``results.json``.

The tables are rendered from the same dictionary that is written to JSON, so the two never disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report_dicomweb import dicomweb_lines, dicomweb_targets
from bench.report_dimse import dimse_lines
from bench.report_storage import storage_lines, storage_targets
from bench.report_viewer import viewer_lines, viewer_targets
from bench.scrub_bench import scrub_lines
from bench.tables import latency_lines, table

IMPORT_TARGET = 400.0  # CT instances/s with the default threads, every object durable
AUDIT_SLOWDOWN_TARGET = 0.10  # recording the audit trail costs ingest at most this share of its rate
QUERY_P95_TARGET_MS = 20.0  # STUDY level at 100,000 instances, each engine
TARGET_INSTANCES = 100_000  # the query targets are stated at this archive size
RETRIEVE_TARGET_MB_S = 200.0  # C-GET of one CT series by getscu
RETRIEVE_TARGET_INSTANCES = 500  # the C-GET target is stated for a series of this many CT instances
# C-STORE ingest as a share of dcmtk's storescp on the same files, by number of associations (every object
# durable and indexed before its response); stated for a run of at least this many CT instances
STORE_RATIO_TARGETS = {1: 0.6, 4: 0.8}
STORE_TARGET_INSTANCES = 400


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the figure measured in this run; ``met`` is None when the run cannot judge it."""
    out: list[dict[str, Any]] = []
    full = results["run"]["mode"] == "full"
    default_run = next((r for r in results.get("import", []) if r.get("default")), None)
    if default_run is not None:
        durable = default_run["blob_fsyncs_per_object"] >= 2 and default_run["failed"] == 0
        out.append(
            {
                "target": f"CT import >= {IMPORT_TARGET:.0f} instances/s "
                f"({default_run['workers']} threads, every object durable)",
                "measured": f"{default_run['instances_per_s']:.0f}/s, "
                f"{default_run['blob_fsyncs_per_object']:.1f} fsyncs/object",
                "met": (default_run["instances_per_s"] >= IMPORT_TARGET and durable) if full else None,
            }
        )
    cost = results.get("audit_cost")
    if cost and cost.get("slowdown") is not None:
        out.append(
            {
                "target": f"Audit trail slows CT import by <= {AUDIT_SLOWDOWN_TARGET:.0%} "
                f"({cost['workers']} threads, medians of {cost['rounds']} alternating rounds)",
                "measured": f"{cost['slowdown']:+.1%} ({cost['median_on_per_s']:.0f}/s on, "
                f"{cost['median_off_per_s']:.0f}/s off)",
                "met": cost["slowdown"] <= AUDIT_SLOWDOWN_TARGET if full else None,
            }
        )
    engines = results.get("query", {}).get("engines", {})
    at_scale = results.get("index", {}).get("instances") == TARGET_INSTANCES
    for engine, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        overall = engines.get(engine, {}).get("overall")
        if not overall or not overall.get("queries"):
            continue
        errors = any(k.get("error") for k in engines[engine]["kinds"])
        out.append(
            {
                "target": f"{label} STUDY query p95 < {QUERY_P95_TARGET_MS:.0f} ms at 100,000 instances",
                "measured": f"p95 {overall['p95_ms']:.1f} ms" + (" (some kinds failed)" if errors else ""),
                "met": (overall["p95_ms"] < QUERY_P95_TARGET_MS and not errors) if at_scale else None,
            }
        )
    return (
        out
        + _dimse_targets(results.get("dimse") or {})
        + dicomweb_targets(results.get("dicomweb") or {})
        + storage_targets(results.get("storage") or {}, full)
        + viewer_targets(results.get("viewer") or {})
    )


def _dimse_targets(dimse: dict[str, Any]) -> list[dict[str, Any]]:
    out = _store_targets(dimse.get("store") or {})
    find = dimse.get("find")
    if find and "skipped" not in find:
        overall = find.get("overall") or {}
        failed = find.get("error") or any(k.get("error") for k in find.get("kinds", []))
        at_scale = find.get("instances") == TARGET_INSTANCES
        out.append(
            {
                "target": f"DIMSE C-FIND STUDY p95 < {QUERY_P95_TARGET_MS:.0f} ms at 100,000 instances",
                "measured": (f"p95 {overall['p95_ms']:.1f} ms" if overall.get("queries") else "no figure")
                + (" (failed)" if failed else ""),
                "met": False if failed else (overall["p95_ms"] < QUERY_P95_TARGET_MS) if at_scale else None,
            }
        )
    retrieve = dimse.get("retrieve")
    if retrieve and "skipped" not in retrieve:
        rows = retrieve.get("rows", [])
        get = next((r for r in rows if r["operation"] == "C-GET" and not r["reference"]), None)
        full = retrieve.get("instances") == RETRIEVE_TARGET_INSTANCES
        out.append(
            {
                "target": f"DIMSE C-GET of a {RETRIEVE_TARGET_INSTANCES}-instance CT series "
                f">= {RETRIEVE_TARGET_MB_S:.0f} MB/s",
                "measured": f"{get['mb_per_s']:.0f} MB/s" if get else "failed",
                "met": False if get is None else (get["mb_per_s"] >= RETRIEVE_TARGET_MB_S) if full else None,
            }
        )
    return out


def _store_targets(store: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in store.get("rows", []):
        goal = STORE_RATIO_TARGETS.get(row["associations"])
        if goal is None:
            continue
        out.append(
            {
                "target": f"DIMSE C-STORE, {row['label']}, >= {goal:.0%} of storescp's rate "
                "(every object durable and indexed)",
                "measured": f"{row['ratio']:.2f} ({row['lightbox_per_s']:.0f}/s, "
                f"storescp {row['storescp_per_s']:.0f}/s)",
                "met": row["ratio"] >= goal if row["instances"] >= STORE_TARGET_INSTANCES else None,
            }
        )
    return out


def write_json(results: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


def _import_rows(runs: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            r["label"],
            str(r["workers"]),
            f"{r['instances']:,}",
            f"{r['seconds']:.2f}",
            f"{r['instances_per_s']:,.0f}",
            f"{r['mb_per_s']:.1f}",
            f"{r['blob_fsyncs_per_object']:.1f}",
            str(r["failed"]),
        ]
        for r in runs
    ]


_IMPORT_HEADERS = ["run", "threads", "instances", "seconds", "inst/s", "MB/s", "fsyncs/obj", "failed"]


def _machine_lines(m: dict[str, Any]) -> list[str]:
    return [
        f"machine   {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {m['os']}, "
        f"bench-data on {m['filesystem']}",
        f"software  Python {m['python']}, SQLite {m['sqlite']}, PostgreSQL {m['postgresql'] or 'not used'}, "
        f"pydicom {m['pydicom']}, SQLAlchemy {m['sqlalchemy']}",
        f"code      lightbox {m['lightbox']}, commit {m['commit'] or 'unknown'}",
        f"load      {_load(m['load_average_at_start'])} at start, {_load(m['load_average_at_end'])} at end "
        "(1/5/15 min; anything else running skews the figures)",
    ]


def _load(values: list[float] | None) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "?"


def _query_lines(query: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for engine, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        data = query["engines"].get(engine)
        if data is None:
            continue
        if "skipped" in data:
            lines += [f"  {label}: skipped ({data['skipped']})"]
            continue
        lines += [f"  {label} ({data['note']})", *latency_lines(data)]
    return lines


def render(results: dict[str, Any]) -> str:
    run = results["run"]
    out = [
        f"Lightbox benchmark, {run['mode']} run ({run['started']})",
        *_machine_lines(results["machine"]),
        "",
    ]
    if results.get("datasets"):
        out.append("Datasets (deterministic; cached in bench-data/datasets)")
        for d in results["datasets"].values():
            how = "cached" if d["cached"] else f"generated in {d['generation_seconds']:.1f} s"
            out.append(
                f"  {d['name']:<14} {d['files']:>8,} files  {d['bytes'] / 1e6:>8.1f} MB  "
                f"{d['mean_file_bytes'] / 1e3:>6.1f} kB/file  {how}"
            )
        out.append("")
    if results.get("import"):
        out.append("CT import (SQLite index, filesystem objects fsynced; sources read from the page cache)")
        out += table(_IMPORT_HEADERS, _import_rows(results["import"]))
        out.append("")
    cost = results.get("audit_cost")
    if cost and cost.get("slowdown") is not None:
        out.append(
            f"Audit trail cost ({cost['instances']:,} CT, {cost['workers']} threads, alternating rounds): "
            f"on {', '.join(f'{r:.0f}' for r in cost['on_per_s'])}/s, "
            f"off {', '.join(f'{r:.0f}' for r in cost['off_per_s'])}/s, slowdown {cost['slowdown']:+.1%}; "
            f"CPU {cost['cpu_ms_per_object_on']:.2f} ms/object on, {cost['cpu_ms_per_object_off']:.2f} off"
        )
        out.append("")
    index = results.get("index")
    if index:
        out.append(f"Index scale ({index['instances']:,} small instances)")
        rows = _import_rows([index["sqlite_import"]])
        pg = index.get("postgresql")
        if pg and "skipped" not in pg:
            # A bulk copy measures no ingest path, so it gets no rate.
            rate = f"{pg['instances_per_s']:,.0f}" if pg.get("method") == "reindex" else "-"
            seconds = f"{pg['seconds']:.2f}"
            rows.append(
                [
                    pg["label"],
                    str(pg["workers"]),
                    f"{pg['indexed']:,}",
                    seconds,
                    rate,
                    "-",
                    "-",
                    str(pg["failed"]),
                ]
            )
        out += table(_IMPORT_HEADERS, rows)
        if pg and "skipped" in pg:
            out.append(f"  PostgreSQL: skipped ({pg['skipped']})")
        elif pg:
            out.append(f"  PostgreSQL index by {pg['method']}: {pg['why']}")
        for engine, c in index.get("counts", {}).items():
            out.append(
                f"  {engine} index holds {c['patients']:,} patients, {c['studies']:,} studies, "
                f"{c['series']:,} series, {c['instances']:,} instances"
            )
        out.append("")
    query = results.get("query")
    if query:
        if "skipped" in query:
            out += [f"STUDY-level queries: skipped ({query['skipped']})", ""]
        else:
            out.append(
                f"STUDY-level queries at {query['instances']:,} instances ({query['per_kind']} timed per "
                f"kind after {query['warmup_per_kind']} warm-up; time until the last match is read)"
            )
            out += [*_query_lines(query), ""]
    if results.get("dimse"):
        out += dimse_lines(results["dimse"], results["run"]["mode"] == "quick")
    if results.get("dicomweb"):
        out += dicomweb_lines(results["dicomweb"], results["run"]["mode"] == "quick")
    if results.get("storage"):
        out += storage_lines(results["storage"])
    if results.get("viewer"):
        out += viewer_lines(results["viewer"], results["run"]["mode"] == "quick")
    if results.get("scrub"):
        out += scrub_lines(results["scrub"])
    if results.get("targets"):
        out.append("Targets")
        for t in results["targets"]:
            verdict = {True: "MET", False: "NOT MET", None: "n/a (quick run)"}[t["met"]]
            out.append(f"  {t['target']:<72} {t['measured']:<28} {verdict}")
        out.append("")
    out.append("Phases (wall-clock seconds)")
    for p in results["phases"]:
        out.append(f"  {p['name']:<52} {p['seconds']:>8.1f}" + (f"  {p['note']}" if p.get("note") else ""))
    out.append(f"  {'total':<52} {run['seconds']:>8.1f}")
    return "\n".join(out)
