"""``--only viewer``: the speed a radiologist feels in the diagnostic viewer (OHIF) of ``lightbox serve``.

One archive holds a 300-slice 512x512 CT series and, around it, single-instance studies (10,000 in a full
run): the first instance of each study of the index-scale dataset. Debian's chromium (headless, driven by
Playwright) logs in once per browser profile through ``/login`` (typing is not timed), then visits

- the viewer's deep link ``/viewer?StudyInstanceUIDs=<the CT study>``: time to the first image drawn (a
  viewport's canvas shows a pixel that is not black once the viewer has drawn into it,
  ``tests/support/viewer_watch.py``) and to the whole series received (the 300th distinct WADO-RS frame
  request ended, from the page's resource timing);
- the study lists, OHIF's at ``/`` and Lightbox's own page at ``/studies``: time until the first study row
  is shown.

The CT series is compressed as ``lightbox serve`` leaves objects with the default settings (lossless,
JPEG-LS) before the server starts, and the server runs with its background compression off, so that it
does not take the CPU during the measurement; the viewer gets the frames as stored.

Each is visited cold (a new profile: empty HTTP cache) and warm (a second visit in a new tab of the same
profile), in rounds with fresh profiles; the report gives the medians, the JSON every run. Times are the
page's own clock: milliseconds since its navigation started. Each run also records its waterfall (the main
bundle received, DOMContentLoaded, the first QIDO-RS, the series metadata, the first frame) and the bytes of
the viewer's files that crossed the wire.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.browser import CHROMIUM
from tests.support.server import RunningServer, running_server
from tests.support.viewer_watch import WATCH, first_image_ms, frames_received, rows_ms

from bench.archives import fresh_archive
from bench.ct import series_uids
from bench.dataset import warm_page_cache
from bench.ingest_bench import run_import
from bench.machine import load_average
from bench.phases import Phases, dataset
from bench.population import INSTANCES_PER_STUDY
from lightbox.app import Archive
from lightbox.config import IngestSettings
from lightbox.domain.accounts import Role
from lightbox.domain.compression import Codec

SLICES = 300
ROUNDS = 3
USER, PASSWORD = "reader", "bench viewer password"
WINDOW = {"width": 1280, "height": 800}
SERIES_TIMEOUT_S = 60.0
# What each visit's waterfall keeps, from the page's navigation and resource timing entries
_WATERFALL = """() => {
  const resources = performance.getEntriesByType("resource");
  const first = (test) => resources.filter(test).sort((a, b) => a.startTime - b.startTime)[0];
  const span = (entry) => entry ? [Math.round(entry.startTime), Math.round(entry.responseEnd)] : null;
  const navigation = performance.getEntriesByType("navigation")[0];
  const frames = resources.filter((e) => e.name.includes("/frames/"));
  const own = resources.filter((e) => !e.name.includes("/dicom-web/"));
  return {
    bundle: span(first((e) => /\\/app\\.bundle\\.[0-9a-f]+\\.js$/.test(e.name))),
    dom_content_loaded: Math.round(navigation.domContentLoadedEventEnd),
    qido: span(first((e) => e.name.includes("/dicom-web/studies?"))),
    metadata: span(first((e) => e.name.endsWith("/metadata"))),
    first_frame: frames.length ? Math.round(Math.min(...frames.map((e) => e.responseEnd))) : null,
    viewer_files: own.length,
    viewer_bytes: own.reduce((sum, e) => sum + e.transferSize, 0),
  };
}"""


def run(args: argparse.Namespace, results: dict[str, Any], phases: Phases, sizes: dict[str, int]) -> None:
    """Build the archive, then time the viewer and the study list; a failure is recorded, not raised."""
    studies = sizes["viewer_studies"]
    viewer: dict[str, Any] = {"slices": SLICES, "studies": studies, "rounds": ROUNDS}
    results["viewer"] = viewer
    if not CHROMIUM.exists():
        viewer["skipped"] = f"no browser at {CHROMIUM}: apt-get install chromium"
        return
    series = dataset(args.data_dir, "ct-series", SLICES, phases)
    small = dataset(args.data_dir, "small", studies * INSTANCES_PER_STUDY, phases)
    for kind, info in (("ct-series", series), ("small", small)):
        results["datasets"].setdefault(kind, info.summary())
    root = args.data_dir / "runs" / "viewer"
    try:
        with phases(f"import the viewer's archive ({SLICES} CT, {studies:,} studies)") as entry:
            entry["note"] = _build(root, series.files, small.files[::INSTANCES_PER_STUDY], studies, viewer)
        with phases(f"viewer and study list in chromium, {ROUNDS} rounds cold and warm") as entry:
            viewer["load_average_at_start"] = load_average()
            with running_server(root, env={"LIGHTBOX_STORAGE_COMPRESSION": "none"}) as server:
                viewer.update(_measure(server))
            viewer["load_average_at_end"] = load_average()
            entry["note"] = f"load {'/'.join(str(v) for v in viewer['load_average_at_end'])} at end"
    except Exception as exc:  # a broken part must not hide the others
        viewer["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def _build(
    root: Path, ct_files: list[Path], study_files: list[Path], studies: int, viewer: dict[str, Any]
) -> str:
    """The archive: the CT series, one instance of each of ``studies`` studies, compressed at rest as the
    server would do it, and the reader's account."""
    if len(study_files) != studies:
        raise RuntimeError(f"{len(study_files)} studies in the dataset, {studies} expected")
    warm_page_cache(ct_files + study_files)
    archive = fresh_archive(root)
    try:
        workers = IngestSettings().workers
        notes = []
        for files, label in ((ct_files, "CT series"), (study_files, "studies")):
            imported = run_import(archive, files, 0, workers, label)
            if imported.failed:
                raise RuntimeError(f"{imported.failed} of {len(files)} {label} instances failed to import")
            notes.append(f"{label} {imported.rate:,.0f}/s")
            if label == "CT series":
                notes.append(_compress_series(archive, len(files), viewer))
        archive.accounts.add_user(USER, Role.RADIOLOGIST, PASSWORD)
    finally:
        archive.close()
    return ", ".join(notes)


def _compress_series(archive: Archive, count: int, viewer: dict[str, Any]) -> str:
    """The CT series as the server leaves it with the default settings: losslessly compressed. Only the
    series, the first ``count`` objects stored: the other studies' objects stay as they are, and the
    server runs with its background compression off, so that it does not take the CPU during the runs."""
    codec = archive.compression.codec
    viewer["storage_compression"] = str(codec)
    if codec is Codec.NONE:
        return "not compressed"
    started = time.perf_counter()
    done, _ = archive.compression.compress_batch(0, limit=count)
    if done.compressed != count:
        raise RuntimeError(f"{done.compressed} of the {count} CT objects compressed ({codec})")
    return f"series compressed ({codec}) in {time.perf_counter() - started:.0f} s"


def _measure(server: RunningServer) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    study = series_uids()[0]
    deep_link = f"{server.base_url}/viewer?StudyInstanceUIDs={study}"
    runs: list[dict[str, Any]] = []
    with sync_playwright() as playwright:
        for round_ in range(1, ROUNDS + 1):
            with _profile(playwright, server) as context:
                for visit in ("cold", "warm"):
                    figures = _viewer(context, deep_link)
                    runs.append({"round": round_, "page": "viewer", "visit": visit, **figures})
            with _profile(playwright, server) as context:
                for page, path in (("study list", "/"), ("studies page", "/studies")):
                    for visit in ("cold", "warm"):
                        figures = _study_list(context, server.base_url + path)
                        runs.append({"round": round_, "page": page, "visit": visit, **figures})
    return {"runs": runs, "medians": _medians(runs)}


@contextmanager
def _profile(playwright: Any, server: RunningServer) -> Iterator[Any]:
    """A browser with a new profile (an empty cache), logged in through the login page."""
    folder = tempfile.mkdtemp(prefix="lightbox-bench-profile-")
    context = playwright.chromium.launch_persistent_context(
        folder, executable_path=str(CHROMIUM), headless=True, viewport=WINDOW
    )
    try:
        context.add_init_script(WATCH)
        page = context.new_page()
        # next: no page of the viewer, so that its files are not in the cache yet
        page.goto(server.base_url + "/login?next=/api/me")
        page.fill("#username", USER)
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.press("#password", "Enter")
        page.close()
        yield context
    finally:
        context.close()
        shutil.rmtree(folder, ignore_errors=True)


def _viewer(context: Any, deep_link: str) -> dict[str, Any]:
    page = context.new_page()
    try:
        page.goto(deep_link)
        first = first_image_ms(page)
        loaded = _series_loaded(page)
        return {"first_image_ms": round(first), "series_ms": loaded, "waterfall": page.evaluate(_WATERFALL)}
    finally:
        page.close()


def _series_loaded(page: Any) -> int | None:
    """When the last of the series' frames was received; None when not all of them came in time."""
    waited = 0.0
    while waited < SERIES_TIMEOUT_S:
        count, last = frames_received(page)
        if count >= SLICES and last is not None:
            return round(last)
        page.wait_for_timeout(200)
        waited += 0.2
    return None


def _study_list(context: Any, url: str) -> dict[str, Any]:
    page = context.new_page()
    try:
        page.goto(url)
        shown = rows_ms(page)
        return {"rows_ms": round(shown), "waterfall": page.evaluate(_WATERFALL)}
    finally:
        page.close()


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each figure by page and visit: ``{"viewer": {"cold": {"first_image_ms": ...}}}``."""
    out: dict[str, Any] = {}
    for run_ in runs:
        figures = out.setdefault(run_["page"], {}).setdefault(run_["visit"], {})
        for key in ("first_image_ms", "series_ms", "rows_ms"):
            if key in run_:
                figures.setdefault(key, []).append(run_[key])
        for key, value in run_["waterfall"].items():
            figures.setdefault(key, []).append(value)
    for visits in out.values():
        for figures in visits.values():
            for key, values in figures.items():
                figures[key] = _median(values)
    return out


def _median(values: list[Any]) -> Any:
    """The median of numbers, of [start, end] spans element-wise; None when a run had no figure."""
    if any(v is None for v in values):
        return None
    if isinstance(values[0], list):
        return [round(statistics.median(v[i] for v in values)) for i in range(len(values[0]))]
    return round(statistics.median(values))
