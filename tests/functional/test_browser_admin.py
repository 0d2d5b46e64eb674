"""The administration pages in a real browser: an administrator adds a user and gives them a token (shown
once) and revokes it after confirming; registers a remote AE that answers and echoes it; filters the audit
log by action and pages through it. A viewer who opens the pages is told they are for administrators."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from tests.support.browser import Console, browser, logged_in, screenshot
from tests.support.server import RunningServer, free_port, running_server

__all__ = ["browser"]  # the fixture, for pytest

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("browser-admin") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.accounts.add_user("ada", Role.ADMIN, PASSWORD)
    archive.accounts.add_user("vera", Role.VIEWER, PASSWORD)
    archive.close()
    with running_server(data) as running:
        yield running


@pytest.fixture(scope="module")
def peer() -> Iterator[int]:
    """A DICOM peer, PEERSCP, that answers C-ECHO."""
    ae = AE(ae_title="PEERSCP")
    ae.add_supported_context(Verification)
    port = free_port()
    listener = ae.start_server(("127.0.0.1", port), block=False)
    try:
        yield port
    finally:
        listener.shutdown()


def _log_in(
    browser: Any, server: RunningServer, name: str, path: str, width: int = 1280
) -> tuple[Any, Any, Console]:
    return logged_in(browser, server.base_url + path, name, PASSWORD, width, 800 if width == 1280 else 768)


def test_users_and_tokens(server: RunningServer, browser: Any) -> None:
    context, page, console = _log_in(browser, server, "ada", "/admin/users")
    page.locator("#users tbody tr").first.wait_for()
    assert page.get_by_role("link", name="Users").get_attribute("aria-current") == "page"

    page.get_by_label("Name", exact=True).fill("nora")
    page.locator("#new-role").select_option("radiologist")
    page.locator("#new-password").fill("a password long enough")
    page.get_by_role("button", name="Add user").click()
    page.get_by_role("status").filter(has_text="User nora added.").wait_for()
    row = page.locator("#users tbody tr", has_text="nora")
    assert row.locator("td").nth(1).inner_text() == "radiologist"
    assert row.locator("td").nth(2).inner_text() == "active"
    login = httpx.post(
        server.base_url + "/api/login", json={"username": "nora", "password": "a password long enough"}
    )
    assert login.status_code == 200  # the user exists, with that password

    page.get_by_role("button", name="Manage nora").click()
    page.locator("#no-tokens").wait_for()
    assert page.evaluate("document.activeElement.id") == "user-title"
    page.get_by_label("Token name").fill("reading-room")
    page.get_by_label("Expires after (days)").fill("30")
    page.get_by_role("button", name="Create token").click()
    page.locator("#new-token").wait_for()
    token = page.input_value("#new-token-value")
    assert re.fullmatch(r"lbx_[A-Za-z0-9_-]{43}", token), token
    assert page.inner_text("#new-token-label") == "reading-room"
    page.locator("#tokens tbody tr", has_text="reading-room").wait_for()
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("status").filter(has_text=re.compile("Copied|Selected")).wait_for()
    me = httpx.get(server.base_url + "/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["user"] == "nora"
    screenshot(page, "admin-users-token")

    # Revoking asks first: cancelling keeps the token, confirming revokes it
    page.get_by_role("button", name="Revoke token reading-room").click()
    dialog = page.locator("dialog#confirm")
    dialog.wait_for(state="visible")
    assert "reading-room" in dialog.inner_text() and "nora" in dialog.inner_text()
    screenshot(page, "admin-users-confirm")
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert (
        httpx.get(server.base_url + "/api/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    page.get_by_role("button", name="Revoke token reading-room").click()
    dialog.get_by_role("button", name="Revoke").click()
    page.get_by_role("status").filter(has_text="Token reading-room of nora revoked.").wait_for()
    assert page.evaluate("document.activeElement.id") == "tokens-title"  # not lost with the removed button
    revoked = page.locator("#tokens tbody tr", has_text="reading-room")
    assert revoked.locator("td").nth(4).inner_text() != ""  # the revocation's time
    assert revoked.get_by_role("button").count() == 0
    assert (
        httpx.get(server.base_url + "/api/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )

    page.get_by_role("button", name="Disable").click()
    page.get_by_role("status").filter(has_text="nora disabled.").wait_for()
    assert page.locator("#users tbody tr", has_text="nora").locator("td").nth(2).inner_text() == "disabled"
    page.locator("#user-role").select_option("viewer")
    page.get_by_role("button", name="Change role").click()
    page.get_by_role("status").filter(has_text="nora is now viewer.").wait_for()

    # An administrator cannot disable themselves: the page says why
    page.get_by_role("button", name="Manage ada").click()
    page.get_by_role("button", name="Disable").click()
    page.get_by_role("alert").filter(has_text="your own account").wait_for()
    screenshot(page, "admin-users")
    assert [e for e in console.errors if "409" not in e] == [], console.errors
    context.close()


def test_remote_aes_and_echo(server: RunningServer, browser: Any, peer: int) -> None:
    context, page, console = _log_in(browser, server, "ada", "/admin/aes", width=1024)
    page.locator("#no-aes").wait_for()
    page.get_by_label("AE title").fill("PEERSCP")
    page.get_by_label("Host").fill("127.0.0.1")
    page.get_by_label("Port").fill(str(peer))
    page.get_by_label("Description").fill("a workstation that answers")
    page.get_by_label("store").uncheck()
    page.get_by_role("button", name="Register").click()
    page.get_by_role("status").filter(has_text="PEERSCP registered.").wait_for()
    row = page.locator("#aes tbody tr", has_text="PEERSCP")
    assert row.locator("td").nth(3).inner_text() == "echo, find, get, move"

    page.get_by_label("AE title").fill("NOBODY")
    page.get_by_label("Host").fill("127.0.0.1")
    page.get_by_label("Port").fill(str(free_port()))
    page.get_by_role("button", name="Register").click()
    page.get_by_role("status").filter(has_text="NOBODY registered.").wait_for()

    page.get_by_role("button", name="Echo PEERSCP").click()
    result = row.locator(".echo-result")
    assert result.get_attribute("aria-live") == "polite"
    page.wait_for_function(
        "document.querySelector('tr[data-ae=PEERSCP] .echo-result').textContent.startsWith('OK')"
    )
    assert re.fullmatch(r"OK, \d+ ms", result.inner_text()), result.inner_text()
    page.get_by_role("button", name="Echo NOBODY").click()
    failed = page.locator("#aes tbody tr", has_text="NOBODY").locator(".echo-result")
    page.wait_for_function(
        "document.querySelector('tr[data-ae=NOBODY] .echo-result').textContent.startsWith('Failed')"
    )
    assert "connection refused" in failed.inner_text()
    screenshot(page, "admin-aes")

    page.get_by_role("button", name="Remove NOBODY").click()
    page.locator("dialog#confirm").get_by_role("button", name="Remove").click()
    page.get_by_role("status").filter(has_text="NOBODY removed.").wait_for()
    assert page.locator("#aes tbody tr", has_text="NOBODY").count() == 0
    listed = httpx.get(server.base_url + "/api/aes", headers=server.headers).json()
    assert [ae["ae_title"] for ae in listed] == ["PEERSCP"]
    assert console.errors == [], console.errors
    context.close()


def test_audit_log_filters_and_pages(server: RunningServer, browser: Any) -> None:
    context, page, console = _log_in(browser, server, "ada", "/admin/audit")
    page.locator("#records tbody tr").first.wait_for()
    actions = set(page.locator("#records tbody tr td:nth-child(2)").all_inner_texts())
    assert {"login", "admin"} <= actions  # the logins and the changes of the tests before

    page.get_by_label("Action").select_option("admin")
    with page.expect_navigation():
        page.get_by_role("button", name="Filter").click()
    assert page.url == server.base_url + "/admin/audit?action=admin"  # bookmarkable: the filters are in it
    page.locator("#records tbody tr").first.wait_for()
    assert set(page.locator("#records tbody tr td:nth-child(2)").all_inner_texts()) == {"admin"}
    details = page.locator("#records tbody tr td:nth-child(8)").all_inner_texts()
    assert any(d.startswith("remote AE registered") for d in details)
    assert page.input_value("#f-action") == "admin"
    screenshot(page, "admin-audit")

    # Times are the browser's local ones, in the URL as the form has them
    page.goto(server.base_url + "/admin/audit?action=admin&since=2099-01-01T08%3A00")
    page.locator("#no-records").wait_for()
    assert page.input_value("#f-since") == "2099-01-01T08:00" and page.locator("#records").is_hidden()

    # A refused password shows as a highlighted failure
    httpx.post(server.base_url + "/api/login", json={"username": "ada", "password": "not the password"})
    page.goto(server.base_url + "/admin/audit?action=login&user=ada")
    failure = page.locator("#records tbody tr.failure").first
    failure.wait_for()
    assert failure.locator("td").nth(2).inner_text() == "failure"

    # 50 records a page: "Older" goes on from next_before, with the same filter, and "Newest" comes back
    with server.client(timeout=30) as client:
        for n in range(30):
            body = {"ae_title": f"PAGER{n}", "host": "h", "port": 104}
            assert client.post("/api/aes", json=body).status_code == 201
            assert client.delete(f"/api/aes/PAGER{n}").status_code == 200
    page.goto(server.base_url + "/admin/audit?action=admin")
    page.locator("#records tbody tr").first.wait_for()
    assert page.locator("#records tbody tr").count() == 50
    assert page.locator("#newest").is_hidden()
    newest = page.locator("#records tbody tr td:nth-child(8)").all_inner_texts()
    with page.expect_navigation():
        page.get_by_role("link", name="Older").click()
    assert re.fullmatch(re.escape(server.base_url) + r"/admin/audit\?action=admin&before=\d+", page.url)
    page.locator("#records tbody tr").first.wait_for()
    assert set(page.locator("#records tbody tr td:nth-child(2)").all_inner_texts()) == {"admin"}
    older = page.locator("#records tbody tr td:nth-child(8)").all_inner_texts()
    assert older and older != newest[: len(older)]
    assert page.get_by_role("link", name="Newest").is_visible()
    assert console.errors == [], console.errors
    context.close()


@pytest.mark.parametrize("path", ["/admin/users", "/admin/aes", "/admin/audit"])
def test_a_viewer_is_told_the_pages_are_for_administrators(
    server: RunningServer, browser: Any, path: str
) -> None:
    context, page, console = _log_in(browser, server, "vera", path, width=1024)
    assert "for administrators" in page.inner_text("#admin-only")
    assert page.get_by_role("link", name="Users").count() == 0  # not in a viewer's navigation
    if path == "/admin/users":
        screenshot(page, "admin-for-administrators")
    assert [e for e in console.errors if "403" not in e] == [], console.errors
    context.close()
