"""A real browser for the web app's tests: Debian's chromium driven by Playwright (no browser download).

In CI a missing chromium fails the run (``.ci/run`` installs it); elsewhere the browser tests are skipped
with the command that installs it. Each test's page records the console's errors and the page's
uncaught exceptions, and screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.ci import IN_CI

CHROMIUM = Path(os.environ.get("LIGHTBOX_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Console:
    """What a page said on its console and what it threw."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))


def log_in(page: Any, url: str, username: str, password: str) -> None:
    """Open ``url`` (a page that needs a login), fill in the login form and come back to it."""
    page.goto(url)
    assert "/login?next=" in page.url, page.url
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation(timeout=60_000):
        page.press("#password", "Enter")


def logged_in(
    browser: Any, url: str, username: str, password: str, width: int = 1280, height: int = 800
) -> tuple[Any, Any, Console]:
    """A new browser context of a ``width`` x ``height`` screen, at ``url`` through the login page: the
    context, its page and what the page says on its console."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page, console = context.new_page(), Console()
    console.watch(page)
    log_in(page, url, username, password)
    assert page.url == url, page.url
    return context, page, console


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is open, and
# tests elsewhere start their own (asyncio.run); so each browser test module opens and closes its own.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"no browser at {CHROMIUM}: apt-get install chromium"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()
