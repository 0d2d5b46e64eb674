"""The viewer part of the printed report and its targets: first image, whole series, study list."""

from __future__ import annotations

from typing import Any

from bench.tables import table

# (page, visit, figure, target in ms, what the target says)
TARGETS = (
    ("viewer", "cold", "first_image_ms", 2000, "Viewer deep link to the first image, cold"),
    ("viewer", "warm", "first_image_ms", 1000, "Viewer deep link to the first image, warm"),
    ("viewer", "cold", "series_ms", 4000, "Viewer deep link to the whole series, cold"),
    ("study list", "cold", "rows_ms", 2000, "OHIF's study list rows shown, cold"),
    ("study list", "warm", "rows_ms", 1000, "OHIF's study list rows shown, warm"),
    ("studies page", "cold", "rows_ms", 2000, "Lightbox's /studies rows shown, cold"),
    ("studies page", "warm", "rows_ms", 1000, "Lightbox's /studies rows shown, warm"),
)
TARGET_STUDIES = 10_000  # the study list targets are stated with this many studies in the archive
TARGET_SLICES = 300  # and the viewer's for a series of this many 512x512 CT slices


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.2f}"


def _span(value: list[int] | None) -> str:
    return "-" if value is None else f"{value[0] / 1000:.2f}-{value[1] / 1000:.2f}"


def _load(values: list[float] | None) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "?"


def viewer_lines(viewer: dict[str, Any], quick: bool) -> list[str]:
    title = (
        f"Viewer in chromium (headless): a {viewer['slices']}-slice 512x512 CT series, "
        f"{viewer['studies']:,} other studies; seconds since the navigation started"
    )
    if quick:
        title += f" (quick run; the study list targets are for {TARGET_STUDIES:,})"
    if "skipped" in viewer:
        return [f"{title}: skipped ({viewer['skipped']})", ""]
    if "error" in viewer or "runs" not in viewer:
        return [f"{title}: FAILED ({viewer.get('error', 'no runs')})", ""]
    rows = []
    for page, visits in viewer["medians"].items():
        for visit, m in visits.items():
            shown = m.get("first_image_ms") if page == "viewer" else m.get("rows_ms")
            rows.append(
                [
                    f"{page}, {visit}",
                    _ms(shown),
                    _ms(m.get("series_ms")),
                    _ms(m.get("bundle", [None, None])[1] if m.get("bundle") else None),
                    _ms(m.get("dom_content_loaded")),
                    _span(m.get("qido")),
                    _span(m.get("metadata")),
                    _ms(m.get("first_frame")),
                    f"{m['viewer_bytes'] / 1e6:.1f}" if m.get("viewer_bytes") is not None else "-",
                ]
            )
    headers = [
        "median of the runs",
        "shown",
        "series",
        "bundle",
        "DOM ready",
        "QIDO",
        "metadata",
        "frame 1",
        "MB",
    ]
    singles = {}
    for run in viewer["runs"]:
        key = f"{run['page']}, {run['visit']}"
        figure = run.get("first_image_ms", run.get("rows_ms"))
        singles.setdefault(key, []).append(
            _ms(figure) + (f"/{_ms(run['series_ms'])}" if "series_ms" in run else "")
        )
    return [
        title,
        f"  {viewer['rounds']} rounds, each with a new browser profile (cold: empty cache) and a second "
        "visit in a new tab (warm); logged in first",
        *table(headers, rows),
        "  shown: the first image drawn (viewer) or the first study row (study list: OHIF's at /, studies "
        "page: Lightbox's /studies);",
        "  series: the last of the frames received (frames as stored: "
        f"{viewer.get('storage_compression', '?')});",
        "  bundle: the main script received; QIDO, metadata: the first such request's start-end; MB: the "
        "viewer's files on the wire",
        *(f"  {key}: {', '.join(values)}" for key, values in singles.items()),
        f"  load average {_load(viewer.get('load_average_at_start'))} before, "
        f"{_load(viewer.get('load_average_at_end'))} after (1/5/15 min; the browser, the server and anything "
        "else share the cores)",
        "",
    ]


def viewer_targets(viewer: dict[str, Any]) -> list[dict[str, Any]]:
    """Each viewer target with this run's median; ``met`` is None when the run cannot judge it."""
    if not viewer or "skipped" in viewer:
        return []
    failed = "error" in viewer or "medians" not in viewer
    at_scale = viewer.get("studies") == TARGET_STUDIES and viewer.get("slices") == TARGET_SLICES
    out = []
    for page, visit, figure, target_ms, what in TARGETS:
        value = None if failed else viewer["medians"].get(page, {}).get(visit, {}).get(figure)
        scale = f"{TARGET_SLICES} slices" if page == "viewer" else f"{TARGET_STUDIES:,} studies"
        out.append(
            {
                "target": f"{what} < {target_ms / 1000:g} s ({scale}, median)",
                "measured": "failed" if value is None else f"{value / 1000:.2f} s",
                "met": False if value is None else (value < target_ms) if at_scale else None,
            }
        )
    return out
