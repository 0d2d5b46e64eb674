"""What the viewer shows and when, seen from inside the page, on the page's own clock: for the benchmark.

The browser tests wait for an image with ``tests/support/viewer.py`` (``wait_for_image``: polled from
Python every 200 ms); the benchmark needs the moment it was drawn, to the animation frame, hence this.

``WATCH`` is a script to add to a Playwright browser context (``context.add_init_script(WATCH)``): it runs
in every document before the page's own scripts and records, in ``performance.now()`` milliseconds since the
navigation started (the page's own clock, so polling from Python adds nothing to the figures):

- ``firstImage``: the first animation frame in which a viewport's canvas holds a pixel that is not black.
  OHIF draws an image only into the canvases of its viewports (``.cornerstone-viewport-element canvas``);
  the viewport is black until then, and its overlays (texts, orientation markers) are HTML and SVG, not in
  the canvas. The canvas is scaled down to 16x16 samples for the test, which keeps each look well under a
  millisecond; a CT slice's body covers far more than a sample.
- ``rows``: the first animation frame in which a study list shows a row of a study: a row of a table body
  with text. OHIF's: other than its row of filters (while it searches, it shows an empty row); Lightbox's
  ``/studies`` page: its table's rows, filled once the search has answered.

It also raises the page's resource timing buffer (250 entries by default), so that every frame request of
a series is kept for ``frames_received``.
"""

from __future__ import annotations

import time
from typing import Any

WATCH = """
(() => {
  if (window.__lightboxWatch) return;
  const seen = { firstImage: null, rows: null };
  window.__lightboxWatch = seen;
  performance.setResourceTimingBufferSize(100000);
  const probe = document.createElement("canvas");
  probe.width = probe.height = 16;
  const samples = probe.getContext("2d", { willReadFrequently: true });
  const drawn = () => {
    for (const canvas of document.querySelectorAll(".cornerstone-viewport-element canvas")) {
      if (!canvas.width || !canvas.height) continue;
      samples.clearRect(0, 0, 16, 16);
      samples.drawImage(canvas, 0, 0, 16, 16);
      const rgba = samples.getImageData(0, 0, 16, 16).data;
      for (let i = 0; i < rgba.length; i += 4) {
        if (rgba[i] + rgba[i + 1] + rgba[i + 2] > 30) return true;
      }
    }
    return false;
  };
  const rows = () => {
    for (const row of document.querySelectorAll("tbody tr:not([data-filter-row])")) {
      if (row.textContent.trim() !== "") return true;  // not the empty row shown while it searches
    }
    return false;
  };
  const look = () => {
    if (seen.firstImage === null && drawn()) seen.firstImage = performance.now();
    if (seen.rows === null && rows()) seen.rows = performance.now();
    if (seen.firstImage === null || seen.rows === null) requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();
"""

# Frame requests of WADO-RS (PS3.18 10.4.1.1.6): .../instances/{uid}/frames/{list}
FRAME_PATH = "/frames/"


class NotShown(AssertionError):
    """The page did not show what was waited for in time."""


def first_image_ms(page: Any, timeout_s: float = 60.0) -> float:
    """When the first image was drawn, in milliseconds since the page's navigation started; waits for it."""
    return _poll(page, "firstImage", timeout_s)


def rows_ms(page: Any, timeout_s: float = 60.0) -> float:
    """When the study list showed its first row, in milliseconds since the navigation started."""
    return _poll(page, "rows", timeout_s)


def _poll(page: Any, key: str, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while True:
        found = page.evaluate(f"window.__lightboxWatch ? window.__lightboxWatch.{key} : null")
        if found is not None:
            return float(found)
        if time.monotonic() > deadline:
            raise NotShown(f"nothing seen for {key} in {timeout_s:.0f} s")
        time.sleep(0.05)


def frames_received(page: Any) -> tuple[int, float | None]:
    """How many distinct frames the page has received in full, and when the last of them ended (ms since
    the navigation started): from the resource timing entries of its WADO-RS frame requests."""
    count, last = page.evaluate(
        """(path) => {
          const ends = new Map();
          for (const entry of performance.getEntriesByType("resource")) {
            if (entry.name.includes(path) && entry.responseEnd > 0) {
              ends.set(entry.name, Math.max(ends.get(entry.name) || 0, entry.responseEnd));
            }
          }
          return [ends.size, ends.size ? Math.max(...ends.values()) : null];
        }""",
        FRAME_PATH,
    )
    return int(count), (float(last) if last is not None else None)
