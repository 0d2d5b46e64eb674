"""The login page in a real browser: a user logs in with the keyboard and lands where the link asked;
a wrong password is said on the page; the console stays free of errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from tests.support.browser import Console, browser, screenshot
from tests.support.server import RunningServer, running_server

__all__ = ["browser"]  # the fixture, for pytest

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("browser-login") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.accounts.add_user("rita", Role.RADIOLOGIST, PASSWORD)
    archive.close()
    with running_server(data) as running:
        yield running


def test_logging_in_with_the_keyboard(server: RunningServer, browser: Any) -> None:
    context = browser.new_context()
    page, console = context.new_page(), Console()
    console.watch(page)
    page.goto(server.base_url + "/login?next=/api/me")
    screenshot(page, "login")
    assert page.evaluate("document.activeElement.id") == "username"  # the form takes the keys at once
    page.keyboard.type("rita")
    page.keyboard.press("Tab")
    page.keyboard.type("wrong password, surely")
    page.keyboard.press("Enter")
    error = page.locator("#login-error")
    error.wait_for(state="visible")
    assert "Wrong user name or password" in error.inner_text()
    screenshot(page, "login-refused")

    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.press("#password", "Enter")
    assert page.url == server.base_url + "/api/me"
    assert '"user":"rita"' in page.content().replace(" ", "")
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["lightbox_session"]["httpOnly"] and cookies["lightbox_session"]["sameSite"] == "Lax"
    # the refused login's 401 is the only error on the console (the browser logs a failed fetch)
    assert len(console.errors) == 1 and "401" in console.errors[0], console.errors
    context.close()
