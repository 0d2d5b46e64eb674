"""The viewer part of the benchmark's report: medians judged against the targets at their scale only, and
a part that failed or was skipped said as such."""

from __future__ import annotations

from typing import Any

from bench.report_viewer import viewer_lines, viewer_targets
from bench.viewer_bench import _medians


def _run(page: str, visit: str, round_: int, **figures: Any) -> dict[str, Any]:
    waterfall = {
        "bundle": [10, 300 + round_],
        "dom_content_loaded": 900,
        "qido": [1000, 1010] if page == "viewer" else None,
        "metadata": [1100, 1180] if page == "viewer" else None,
        "first_frame": 1500 if page == "viewer" else None,
        "viewer_files": 40,
        "viewer_bytes": 3_500_000 if visit == "cold" else 600,
    }
    return {"round": round_, "page": page, "visit": visit, **figures, "waterfall": waterfall}


def _viewer(studies: int = 10_000) -> dict[str, Any]:
    runs = []
    for round_ in (1, 2, 3):
        runs.append(_run("viewer", "cold", round_, first_image_ms=1800 + 100 * round_, series_ms=5000))
        runs.append(_run("viewer", "warm", round_, first_image_ms=1200, series_ms=4500))
        runs.append(_run("study list", "cold", round_, rows_ms=1500))
        runs.append(_run("study list", "warm", round_, rows_ms=900 if round_ < 3 else 2000))
        runs.append(_run("studies page", "cold", round_, rows_ms=600))
        runs.append(_run("studies page", "warm", round_, rows_ms=1100))
    medians = _medians(runs)
    return {"slices": 300, "studies": studies, "rounds": 3, "runs": runs, "medians": medians}


def test_medians_by_page_and_visit() -> None:
    medians = _viewer()["medians"]
    assert medians["viewer"]["cold"]["first_image_ms"] == 2000
    assert medians["viewer"]["cold"]["bundle"] == [10, 302]  # spans element-wise
    assert medians["viewer"]["cold"]["qido"] == [1000, 1010]
    assert medians["study list"]["warm"]["rows_ms"] == 900
    assert medians["study list"]["cold"]["qido"] is None  # a figure some run lacks has no median


def test_targets_are_judged_at_their_scale() -> None:
    verdicts = {t["target"].split(" <")[0]: t["met"] for t in viewer_targets(_viewer())}
    assert verdicts == {
        "Viewer deep link to the first image, cold": False,  # 2.0 s is not under 2 s
        "Viewer deep link to the first image, warm": False,
        "Viewer deep link to the whole series, cold": False,
        "OHIF's study list rows shown, cold": True,
        "OHIF's study list rows shown, warm": True,
        "Lightbox's /studies rows shown, cold": True,
        "Lightbox's /studies rows shown, warm": False,
    }
    assert {t["met"] for t in viewer_targets(_viewer(studies=1_000))} == {None}  # a quick run


def test_failed_and_skipped_parts() -> None:
    failed = {"slices": 300, "studies": 10_000, "rounds": 3, "error": "TimeoutError: no image"}
    assert {t["met"] for t in viewer_targets(failed)} == {False}
    assert "FAILED (TimeoutError: no image)" in viewer_lines(failed, quick=False)[0]
    skipped = {"slices": 300, "studies": 10_000, "rounds": 3, "skipped": "no browser"}
    assert viewer_targets(skipped) == []
    assert "skipped (no browser)" in viewer_lines(skipped, quick=False)[0]


def test_the_table_shows_medians_and_each_run() -> None:
    text = "\n".join(viewer_lines(_viewer(), quick=False))
    assert "viewer, cold" in text and "2.00" in text and "5.00" in text
    assert "study list, warm: 0.90, 0.90, 2.00" in text
    assert "viewer, cold: 1.90/5.00, 2.00/5.00, 2.10/5.00" in text
