"""The DICOMweb part of the printed report and its targets: QIDO-RS, WADO-RS, metadata and STOW-RS."""

from __future__ import annotations

from typing import Any

from bench.tables import latency_lines, table

QIDO_P95_TARGET_MS = 50.0  # STUDY level at 100,000 instances
QIDO_TARGET_INSTANCES = 100_000
WADO_RATIO_TARGET = 0.70  # of the rate at which this process reads the same files, both from the disk
WADO_TARGET_INSTANCES = 500
METADATA_P95_TARGET_MS = 100.0
METADATA_TARGET_INSTANCES = 600
METADATA_JUDGED = "gzip"  # the encoding a browser-based viewer asks for


def _failed(title: str, part: dict[str, Any]) -> list[str] | None:
    if "error" in part:
        return [f"{title}: FAILED ({part['error']})", ""]
    return None


def _quick(quick: bool, target: int) -> str:
    return f" (quick run; the target is for {target:,})" if quick else ""


def _qido(qido: dict[str, Any], quick: bool) -> list[str]:
    if "instances" not in qido:
        return _failed("DICOMweb QIDO-RS", qido) or []
    title = f"DICOMweb QIDO-RS, GET /dicom-web/studies?..., at {qido['instances']:,} instances"
    lines = [
        title + _quick(quick, QIDO_TARGET_INSTANCES),
        f"  httpx, one keep-alive connection, Accept-Encoding: gzip; {qido['per_kind']} timed per kind after "
        f"{qido['warmup_per_kind']} warm-up;",
        "  time until the JSON answer (every page) is read and parsed",
        f"  archive: {qido['archive']}",
        *latency_lines(qido),
    ]
    maximum = qido.get("server_maximum")
    if maximum:
        warning = f"Warning: {maximum['warning']}" if maximum["warning"] else "no Warning"
        lines.append(f"  a search for every study returns {maximum['page']:,} matches, {warning}")
    return [*lines, ""]


def _wado(wado: dict[str, Any], quick: bool) -> list[str]:
    if "instances" not in wado:
        return _failed("DICOMweb WADO-RS retrieval", wado) or []
    title = (
        f"DICOMweb WADO-RS retrieval of a {wado['instances']}-instance CT series "
        f"({wado['bytes'] / 1e6:.1f} MB as stored, transfer-syntax=*; cold: dropped from the page cache)"
        + _quick(quick, WADO_TARGET_INSTANCES)
    )
    rows = [
        [
            r["label"],
            str(r["runs"]),
            " ".join(f"{s:.2f}" for s in r["seconds"]),
            f"{r['best_mb_per_s']:.0f}",
            f"{r['median_mb_per_s']:.0f}",
        ]
        for r in wado["rows"]
    ]
    lines = [title, *table(["run", "runs", "seconds", "best MB/s", "median MB/s"], rows)]
    lines.append(
        f"  {wado['rows'][0]['label'].split(',')[1].strip()}: WADO-RS / reading the files, both cold: "
        f"{wado['ratio']:.2f} of the best runs, "
        f"{wado['ratio_median']:.2f} of the medians"
    )
    return [*lines, ""]


def _frames(frames: dict[str, Any]) -> list[str]:
    if "instances" not in frames:
        return _failed("DICOMweb WADO-RS frames", frames) or []
    return [
        f"DICOMweb WADO-RS frames, one request at a time as a viewer asks (frame 1 of each of "
        f"{frames['instances']} CT instances, {frames['requests']} timed requests, one connection)",
        f"  median {frames['median_ms']:.2f} ms, p95 {frames['p95_ms']:.2f} ms, "
        f"{frames['requests_per_s']:.0f} requests/s; server CPU {frames['server_cpu_ms']:.2f} ms a request",
        "",
    ]


def _metadata(metadata: dict[str, Any], quick: bool) -> list[str]:
    if "instances" not in metadata:
        return _failed("DICOMweb WADO-RS metadata", metadata) or []
    title = (
        f"DICOMweb WADO-RS metadata of a {metadata['instances']}-instance CT series "
        f"({metadata['warmup']} warm-up, {metadata['timed']} timed; time until the body is read)"
        + _quick(quick, METADATA_TARGET_INSTANCES)
    )
    rows = [
        [
            r["encoding"],
            f"{r['body_bytes'] / 1e6:.2f}",
            f"{r['wire_bytes'] / 1e6:.2f}",
            f"{r['median_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            f"{r['max_ms']:.1f}",
            f"{r['not_modified']['median_ms']:.1f}",
            f"{r['not_modified']['p95_ms']:.1f}",
        ]
        for r in metadata["rows"]
    ]
    headers = [
        "Accept-Encoding",
        "JSON MB",
        "sent MB",
        "median ms",
        "p95 ms",
        "max ms",
        "304 median",
        "304 p95",
    ]
    note = "  304: the same request with the answer's ETag in If-None-Match"
    return [title, *table(headers, rows), note, ""]


def _stow(stow: dict[str, Any]) -> list[str]:
    title = (
        f"DICOMweb STOW-RS ingest of {stow['instances']:,} CT instances, {stow['per_request']} a request, "
        "bodies streamed from the page cache (Lightbox fsyncs and indexes each object)"
    )
    rows = [
        [
            r["label"],
            f"{r['instances']:,}",
            str(r["requests"]),
            f"{r['seconds']:.2f}",
            f"{r['instances_per_s']:.0f}",
            f"{r['mb_per_s']:.1f}",
        ]
        for r in stow["rows"]
    ]
    lines = [
        title,
        *(table(["run", "instances", "requests", "seconds", "inst/s", "MB/s"], rows) if rows else []),
    ]
    lines += [f"  FAILED ({value})" for key, value in stow.items() if key.startswith("error")]
    return [*lines, ""]


def dicomweb_lines(web: dict[str, Any], quick: bool) -> list[str]:
    out: list[str] = []
    if "qido" in web:
        out += _qido(web["qido"], quick)
    if "wado" in web:
        out += _wado(web["wado"], quick)
    if "frames" in web:
        out += _frames(web["frames"])
    if "metadata" in web:
        out += _metadata(web["metadata"], quick)
    if "stow" in web:
        out += _stow(web["stow"])
    return out


def _verdict(failed: bool, met: bool, at_scale: bool) -> bool | None:
    """False for a failed part; otherwise whether the target was met, or None below the target's scale."""
    if failed:
        return False
    return met if at_scale else None


def dicomweb_targets(web: dict[str, Any]) -> list[dict[str, Any]]:
    """Each DICOMweb target with this run's figure; ``met`` is None when the run cannot judge it."""
    out: list[dict[str, Any]] = []
    qido = web.get("qido")
    if qido:
        overall = qido.get("overall") or {}
        failed = (
            "error" in qido
            or any(k.get("error") for k in qido.get("kinds", []))
            or not overall.get("queries")
        )
        out.append(
            {
                "target": f"QIDO-RS STUDY search p95 < {QIDO_P95_TARGET_MS:.0f} ms at 100,000 instances",
                "measured": (f"p95 {overall['p95_ms']:.1f} ms" if overall.get("queries") else "no figure")
                + (" (failed)" if failed else ""),
                "met": _verdict(
                    failed,
                    not failed and overall["p95_ms"] < QIDO_P95_TARGET_MS,
                    qido.get("instances") == QIDO_TARGET_INSTANCES,
                ),
            }
        )
    wado = web.get("wado")
    if wado:
        ratio = wado.get("ratio")
        out.append(
            {
                "target": f"WADO-RS {WADO_TARGET_INSTANCES}-instance series >= {WADO_RATIO_TARGET:.0%} of "
                "the file read rate",
                "measured": f"{ratio:.0%} ({wado['rows'][0]['best_mb_per_s']:.0f} MB/s)"
                if ratio
                else "failed",
                "met": _verdict(
                    ratio is None,
                    ratio is not None and ratio >= WADO_RATIO_TARGET,
                    wado.get("instances") == WADO_TARGET_INSTANCES,
                ),
            }
        )
    metadata = web.get("metadata")
    if metadata:
        row = next((r for r in metadata.get("rows", []) if r["encoding"] == METADATA_JUDGED), None)
        out.append(
            {
                "target": f"Series metadata p95 < {METADATA_P95_TARGET_MS:.0f} ms "
                f"({METADATA_TARGET_INSTANCES} instances, {METADATA_JUDGED})",
                "measured": f"p95 {row['p95_ms']:.1f} ms" if row else "failed",
                "met": _verdict(
                    row is None,
                    row is not None and row["p95_ms"] < METADATA_P95_TARGET_MS,
                    metadata.get("instances") == METADATA_TARGET_INSTANCES,
                ),
            }
        )
    return out
