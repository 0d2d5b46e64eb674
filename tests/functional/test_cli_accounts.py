"""``lightbox user`` and ``lightbox token`` as real processes, and the admin account of a first start."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from lightbox.app import build_archive
from lightbox.config import load_settings
from tests.support.server import lightbox_command, running_server

PASSWORD = "correct horse battery staple"


def _cli(data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lightbox_command(*args, "--data-dir", str(data)),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _authenticate(data: Path, token: str) -> str | None:
    archive = build_archive(load_settings(data_dir=data))
    try:
        user = archive.accounts.authenticate_token(token)
        return user.name if user else None
    finally:
        archive.close()


def test_user_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _cli(data, "user", "list").stdout.strip() == "no users"
    added = _cli(
        data, "user", "add", "alice", "--role", "radiologist", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert added.returncode == 0 and "added user alice (radiologist)" in added.stdout
    assert _cli(data, "user", "add", "scanner", "--role", "uploader", "--no-password").returncode == 0

    again = _cli(data, "user", "add", "alice", "--role", "viewer", "--password-stdin", stdin=PASSWORD + "\n")
    assert again.returncode == 1 and "exists already" in again.stderr
    weak = _cli(data, "user", "add", "bob", "--role", "viewer", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1 and "12 characters" in weak.stderr
    role = _cli(data, "user", "add", "bob", "--role", "root", "--password-stdin", stdin=PASSWORD + "\n")
    assert role.returncode == 2 and "root" in role.stderr

    assert _cli(data, "user", "disable", "alice").returncode == 0
    listed = _cli(data, "user", "list").stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [["alice", "radiologist"], ["scanner", "uploader"]]
    assert listed[0].endswith("disabled") and not listed[1].endswith("disabled")
    missing = _cli(data, "user", "disable", "nobody")
    assert missing.returncode == 1 and "no user 'nobody'" in missing.stderr


def test_token_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _cli(data, "user", "add", "scanner", "--role", "uploader", "--no-password")
    created = _cli(data, "token", "create", "--user", "scanner", "--name", "ct-2", "--expires", "30")
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]  # the token alone on the last line
    assert re.fullmatch(r"lbx_[A-Za-z0-9_-]{43}", token)
    assert _authenticate(data, token) == "scanner"

    listed = _cli(data, "token", "list").stdout
    assert "scanner  ct-2" in listed and "expires" in listed and token not in listed
    assert _cli(data, "token", "revoke", "--user", "scanner", "--name", "ct-2").returncode == 0
    assert _authenticate(data, token) is None
    assert "revoked" in _cli(data, "token", "list", "--user", "scanner").stdout
    unknown = _cli(data, "token", "create", "--user", "nobody", "--name", "x")
    assert unknown.returncode == 1 and "no user 'nobody'" in unknown.stderr


def test_first_start_creates_an_admin_and_shows_its_password_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data, account=False) as server:
        pass
    shown = re.findall(r"password: (\S+)", server.log())
    assert len(shown) == 1
    archive = build_archive(load_settings(data_dir=data))
    try:
        admin = archive.accounts.check_password("admin", shown[0])
        assert admin is not None and admin.role.value == "admin"
    finally:
        archive.close()
    with running_server(data, account=False) as again:
        pass
    assert "password:" not in again.log()
