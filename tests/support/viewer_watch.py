"""What the viewer shows and when, seen from inside the page, on the page's own clock: for the benchmark.

The browser tests wait for an image with ``tests/support/viewer.py`` (``wait_for_image``: polled from
Python every 200 ms); the benchmark needs the moment it was drawn, hence this.

``WATCH`` is a script to add to a Playwright browser context (``context.add_init_script(WATCH)``): it runs
in every document before the page's own scripts and records, in ``performance.now()`` milliseconds since the
navigation started (the page's own clock, so polling from Python adds nothing to the figures):

- ``firstImage``: the moment a viewport's canvas first holds a pixel that is not black. OHIF draws an image
  only into the canvases of its viewports (its overlays, texts and orientation markers, are HTML and SVG),
  and its renderer (cornerstone3D) dispatches ``CORNERSTONE_IMAGE_RENDERED`` on the viewport's element
  right after each drawing: the canvas is looked at then, scaled down to 16x16 samples (a CT slice's body
  covers far more than a sample). Looking at every canvas in every animation frame instead, as this did
  first, read the GPU's pixels back 60 times a second while the viewer started, and cost the page about
  0.1 s of the time it measured; the event comes 30-60 ms before the next look would have seen the image.
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
  const shows = (canvas) => {
    if (!canvas || !canvas.width || !canvas.height) return false;
    samples.clearRect(0, 0, 16, 16);
    samples.drawImage(canvas, 0, 0, 16, 16);
    const rgba = samples.getImageData(0, 0, 16, 16).data;
    for (let i = 0; i < rgba.length; i += 4) {
      if (rgba[i] + rgba[i + 1] + rgba[i + 2] > 30) return true;
    }
    return false;
  };
  // The viewer's renderer announces each drawing into a viewport's canvas with this event (it does not
  // bubble: a capturing listener on the window sees it); the canvas is looked at then, once a drawing.
  const rendered = (event) => {
    const element = event.target;
    if (seen.firstImage === null && element.querySelector && shows(element.querySelector("canvas"))) {
      seen.firstImage = performance.now();
      window.removeEventListener("CORNERSTONE_IMAGE_RENDERED", rendered, true);
    }
  };
  window.addEventListener("CORNERSTONE_IMAGE_RENDERED", rendered, true);
  const rows = () => {
    for (const row of document.querySelectorAll("tbody tr:not([data-filter-row])")) {
      if (row.textContent.trim() !== "") return true;  // not the empty row shown while it searches
    }
    return false;
  };
  const look = () => {
    if (rows()) seen.rows = performance.now();
    else if (seen.firstImage === null) requestAnimationFrame(look);  // a viewer has no study rows
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
