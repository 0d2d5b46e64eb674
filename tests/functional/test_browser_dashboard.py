"""The dashboard in a real browser: an administrator sees the archive's counts, the last hour's stores and
the recent activity, and logs out; a viewer sees the counts only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.uid import generate_uid

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from tests.support.browser import Console, browser, logged_in, screenshot
from tests.support.dicom import part10
from tests.support.server import RunningServer, running_server

__all__ = ["browser"]  # the fixture, for pytest

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("browser-dashboard") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.accounts.add_user("ada", Role.ADMIN, PASSWORD)
    archive.accounts.add_user("vera", Role.VIEWER, PASSWORD)
    study = generate_uid()
    for n in (1, 2, 3):
        archive.ingest.ingest([part10(StudyInstanceUID=study, InstanceNumber=n)], "t")
    archive.close()
    with running_server(data) as running:
        yield running


def _log_in(browser: Any, server: RunningServer, name: str) -> tuple[Any, Any, Console]:
    # a tablet's screen
    context, page, console = logged_in(browser, server.base_url + "/dashboard", name, PASSWORD, 1024, 768)
    page.wait_for_function("document.getElementById('instances').textContent !== '…'")
    return context, page, console


def test_an_administrator_sees_counts_stores_and_activity(server: RunningServer, browser: Any) -> None:
    context, page, console = _log_in(browser, server, "ada")
    statistics = page.request.get(server.base_url + "/api/statistics").json()
    for key in ("patients", "studies", "series", "instances"):
        assert page.inner_text(f"#{key}") == f"{statistics[key]:,}"
    tier = page.locator("#tiers tbody tr[data-tier=hot] td").all_inner_texts()
    assert tier[:2] == ["hot", f"{statistics['instances']:,}"]  # the one tier, holding everything
    page.wait_for_function("document.getElementById('ingest-hour').textContent !== '…'")
    assert int(page.inner_text("#ingest-hour")) >= 3  # the three stored just now
    page.locator("#activity").wait_for(state="visible")
    actions = page.locator("#activity tbody tr td:nth-child(2)").all_inner_texts()
    assert "login" in actions and "store" in actions
    screenshot(page, "dashboard-admin")
    assert console.errors == [], console.errors

    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    assert page.url == server.base_url + "/login"
    assert page.request.get(server.base_url + "/api/me").status == 401  # the session is over
    context.close()


def test_a_viewer_sees_the_counts_only(server: RunningServer, browser: Any) -> None:
    context, page, console = _log_in(browser, server, "vera")
    assert int(page.inner_text("#instances").replace(",", "")) == 3
    page.locator("#activity-note").wait_for(state="visible")
    assert "administrators" in page.inner_text("#activity-note")
    assert page.locator("#activity").is_hidden()
    screenshot(page, "dashboard-viewer")
    # the browser logs the refused audit request; nothing else went wrong
    assert [e for e in console.errors if "403" not in e] == [], console.errors
    context.close()
