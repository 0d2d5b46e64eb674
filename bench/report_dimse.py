"""The DICOM part of the printed report: C-STORE, C-FIND, C-GET/C-MOVE and the server's memory."""

from __future__ import annotations

from typing import Any

from bench.tables import latency_lines, table


def _failed(title: str, part: dict[str, Any]) -> list[str] | None:
    """The lines for a part that was skipped or failed, else None."""
    if "skipped" in part:
        return [f"{title}: skipped ({part['skipped']})", ""]
    if "error" in part:
        return [f"{title}: FAILED ({part['error']})", ""]
    return None


def _store(store: dict[str, Any]) -> list[str]:
    title = "DICOM C-STORE ingest (storescu -> SCP, TCP_NODELAY=1; Lightbox fsyncs and indexes each object)"
    failed = _failed(title, store)
    if failed:
        return failed
    rows = [
        [
            r["label"],
            f"{r['instances']:,}",
            f"{r['storescp_per_s']:.0f}",
            f"{r['lightbox_per_s']:.0f}",
            f"{r['lightbox_mb_per_s']:.1f}",
            f"{r['lightbox_cpu_ms']:.2f}" if "lightbox_cpu_ms" in r else "-",
            f"{r['ratio']:.2f}",
        ]
        for r in store["rows"]
    ]
    headers = ["run", "instances", "storescp/s", "lightbox/s", "MB/s", "CPU ms/obj", "ratio"]
    return [title, *table(headers, rows), ""]


def _find(find: dict[str, Any], quick: bool) -> list[str]:
    if "instances" not in find:
        return _failed("DICOM C-FIND", find) or []
    scale = f"{find['instances']:,} instances" + (" (quick run; the target is for 100,000)" if quick else "")
    title = f"DICOM C-FIND, STUDY level, at {scale}"
    lines = [
        title,
        f"  Lightbox's requestor (asyncio; matches counted, not decoded), one association for every query; "
        f"{find['per_kind']} timed per kind after {find['warmup_per_kind']} warm-up; time until the final "
        "response is read",
        f"  archive: {find['archive']}",
        *latency_lines(find),
    ]
    python = find.get("pynetdicom")
    if python:
        lines.append("  the same queries from pynetdicom (each match decoded; its reactor polls every ms):")
        lines += latency_lines(python)
        echo = python.get("echo")
        if echo:
            lines.append(
                f"  pynetdicom's C-ECHO round trip on the same association: {echo['median_ms']:.2f} ms "
                f"(median; p95 {echo['p95_ms']:.2f} ms)"
            )
    if find["findscu"]:
        lines.append(
            "  reference, dcmtk's findscu repeating one query of each kind on one association "
            f"({find['findscu'][0]['repeats']} times; mean ms per query):"
        )
        rows = [[r["kind"], f"{r['matches']:,}", f"{r['mean_ms']:.2f}"] for r in find["findscu"]]
        lines += table(["query", "matches", "mean ms"], rows, indent="    ")
    return [*lines, ""]


def _retrieve(retrieve: dict[str, Any], quick: bool) -> list[str]:
    if "instances" not in retrieve:
        return _failed("DICOM C-GET and C-MOVE", retrieve) or []
    title = (
        f"DICOM C-GET and C-MOVE of a {retrieve['instances']}-instance CT series "
        f"({retrieve['bytes'] / 1e6:.1f} MB; {retrieve['max_pdu'] // 1024} kB PDUs; TCP_NODELAY=1)"
        + (" (quick run; the target is for 500)" if quick else "")
    )
    rows = [
        [
            r["operation"],
            r["label"],
            f"{r['seconds']:.2f}",
            f"{r['instances_per_s']:.0f}",
            f"{r['mb_per_s']:.1f}",
            f"{r['received']:,}",
        ]
        for r in retrieve["rows"]
    ]
    headers = ["operation", "from -> to", "seconds", "inst/s", "MB/s", "received"]
    return [title, *table(headers, rows), ""]


def _memory(memory: dict[str, Any], quick: bool) -> list[str]:
    title = "lightbox serve resident memory under C-STORE (VmRSS every 50 ms and VmHWM, MiB)" + (
        " (quick run: smaller object, fewer associations)" if quick else ""
    )
    rows, notes = [], []
    for key in ("big_object", "concurrent"):
        case = memory.get(key)
        if case is None:
            continue
        if "label" not in case:
            notes += _failed(f"  {key.replace('_', ' ')}", case) or []
            continue
        rate = f"{case['instances_per_s']:.0f}" if "instances_per_s" in case else "-"
        rows.append(
            [
                case["label"],
                f"{case['seconds']:.2f}",
                rate,
                f"{case['mb_per_s']:.1f}",
                f"{case['baseline_mib']:.0f}",
                f"{case['peak_mib']:.0f}",
                f"{case['growth_mib']:.0f}",
            ]
        )
    headers = ["run", "seconds", "inst/s", "MB/s", "baseline", "peak", "growth"]
    return [title, *(table(headers, rows) if rows else []), *[n for n in notes if n], ""]


def dimse_lines(dimse: dict[str, Any], quick: bool) -> list[str]:
    if "skipped" in dimse:
        return [f"DICOM: skipped ({dimse['skipped']})", ""]
    out: list[str] = []
    if "store" in dimse:
        out += _store(dimse["store"])
    if "find" in dimse:
        out += _find(dimse["find"], quick)
    if "retrieve" in dimse:
        out += _retrieve(dimse["retrieve"], quick)
    if dimse.get("memory"):
        out += _memory(dimse["memory"], quick)
    return out
