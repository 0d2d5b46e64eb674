"""Driving the OHIF viewer in the browser tests: logging in, reading a viewport's overlay and pixels."""

from __future__ import annotations

import re
from typing import Any

# The drawn pixels of a viewport's canvas: how many there are and how much they vary (a blank canvas is
# all one colour). Cornerstone renders off screen and copies each frame onto the viewport's 2D canvas.
_CANVAS_STATS = """(index) => {
  const canvases = document.querySelectorAll('.cornerstone-viewport-element canvas.cornerstone-canvas');
  const canvas = canvases[index];
  if (!canvas || !canvas.width || !canvas.height) return null;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0, squares = 0, lit = 0, hash = 0;
  const n = Math.ceil(data.length / 12);
  for (let i = 0; i < data.length; i += 4 * 3) {  // every third pixel: enough, and cheap to poll
    const v = (data[i] + data[i + 1] + data[i + 2]) / 3;
    sum += v; squares += v * v;
    if (v > 8) lit++;
    hash = (hash * 31 + data[i] + 7 * data[i + 1] + 13 * data[i + 2]) | 0;
  }
  const mean = sum / n;
  return {mean: mean, std: Math.sqrt(Math.max(0, squares / n - mean * mean)), lit: lit / n, hash: hash};
}"""


def viewport_wrapper(page: Any, index: int = 0) -> Any:
    """The element holding viewport ``index``'s canvas and its overlay texts."""
    element = page.locator(".cornerstone-viewport-element").nth(index)
    return element.locator("xpath=ancestor::*[contains(@class, 'viewport-wrapper')][1]")


def overlay(viewport: Any) -> tuple[str, str]:
    """The viewport's window/level ("W: 400 L: 40") and slice ("I: 5 (1/5)") texts, as drawn."""
    text = " ".join(viewport.inner_text().split())
    wl = re.search(r"W:\s*-?\d+(?:\.\d+)?\s*L:\s*-?\d+(?:\.\d+)?", text)
    slice_ = re.search(r"I:\s*\d+\s*\(\d+/\d+\)", text)
    assert wl and slice_, text
    return re.sub(r"\s+", " ", wl.group(0)).replace(": ", ":").replace(":", ": "), slice_.group(0)


def canvas_stats(page: Any, index: int = 0) -> dict[str, float] | None:
    """Mean and spread of the brightness of viewport ``index``'s canvas, the share of its pixels that are
    not black, and a hash of them; None while it has no canvas."""
    stats: dict[str, float] | None = page.evaluate(_CANVAS_STATS, index)
    return stats


def wait_for_image(page: Any, index: int = 0, timeout: float = 60_000) -> dict[str, float]:
    """Wait until viewport ``index`` shows an image (its canvas is not one colour) and return its stats."""
    page.wait_for_function(
        f"() => {{ const s = ({_CANVAS_STATS})({index}); return s !== null && s.std > 2; }}",
        timeout=timeout,
        polling=200,  # reading the canvas back costs: not at every animation frame
    )
    stats = canvas_stats(page, index)
    assert stats is not None
    return stats
