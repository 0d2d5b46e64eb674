"""Run ``lightbox serve`` as a subprocess on free ports, for functional tests."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# The account functional tests act as: an admin with API tokens only, made before the server starts (so a
# server under test creates no first admin of its own)
TEST_USER = "tester"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, never one handed out before in this process: the kernel may offer the
    port it just gave again once its probe socket is closed (a server got one port for HTTP and DICOM)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    http_port: int
    dicom_port: int
    data_dir: Path
    log_path: Path
    token: str | None = field(default=None, repr=False)  # an admin's API token
    https: bool = False  # the HTTP port serves HTTPS (tls.certificate set)

    @property
    def base_url(self) -> str:
        return f"{'https' if self.https else 'http'}://127.0.0.1:{self.http_port}"

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header of the tests' admin: what a client sends with every request."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, **options: Any) -> httpx.Client:
        """An httpx client on the server, authenticated as the tests' admin."""
        headers = {**self.headers, **options.pop("headers", {})}
        return httpx.Client(base_url=options.pop("base_url", self.base_url), headers=headers, **options)

    def dicomweb(self) -> Any:
        """A dicomweb-client on /dicom-web, authenticated as the tests' admin."""
        from dicomweb_client.api import DICOMwebClient

        return DICOMwebClient(url=self.base_url + "/dicom-web", headers=self.headers)

    def get_json(self, path: str) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(self.base_url + path, headers=self.headers)
        # The health poll of a test server on a throwaway certificate: the TLS tests check certificates
        context = ssl._create_unverified_context() if self.https else None
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def lightbox_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lightbox.cli", *args]


@contextlib.contextmanager
def _environment(env: dict[str, str] | None) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def admin_token(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None, aes: Iterable[str] = ()
) -> str:
    """A new API token of the tests' admin in the archive that ``lightbox serve`` would open with these
    arguments and environment (its database may be PostgreSQL by a setting); ``aes``: calling AE titles
    to register first (at 127.0.0.1, allowed everything), as an administrator registers workstations."""
    from lightbox.app import build_archive
    from lightbox.config import load_settings
    from lightbox.domain.accounts import Role

    config = Path(extra[extra.index("--config") + 1]) if "--config" in extra else None
    with _environment(env):
        archive = build_archive(load_settings(config, data_dir=data_dir))
    try:
        if archive.index.get_user(TEST_USER) is None:
            archive.accounts.add_user(TEST_USER, Role.ADMIN, None)
        registered = {ae.ae_title for ae in archive.manage.list_remote_aes()}
        for ae_title in aes:
            if ae_title not in registered:
                archive.manage.add_remote_ae(ae_title, "127.0.0.1", 104, "a test's SCU")
        token, _ = archive.accounts.create_token(TEST_USER, f"test-{secrets.token_hex(4)}")
        return token
    finally:
        archive.close()


# Objects stay exactly as sent unless a test asks for lossless compression: most tests compare what they
# retrieve with what they stored, byte for byte
SERVER_DEFAULTS = {"LIGHTBOX_STORAGE_COMPRESSION": "none"}


def server_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    return {**SERVER_DEFAULTS, **os.environ, **(env or {})}


@contextlib.contextmanager
def running_server(
    data_dir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    account: bool = True,
    aes: Iterable[str] = (),
    https: bool = False,
) -> Iterator[RunningServer]:
    """``lightbox serve`` on free ports; ``account``: first give the archive the tests' admin and a token
    (``server.token``, ``server.headers``), as an installation has its accounts; ``aes``: the calling AE
    titles the test queries or retrieves with, registered first (unknown AEs may only echo and store)."""
    http_port, dicom_port = free_port(), free_port()
    log_path = data_dir.parent / f"server-{http_port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    token = admin_token(data_dir, *extra, env=env, aes=aes) if account or aes else None
    cmd = lightbox_command(
        "serve",
        "--data-dir",
        str(data_dir),
        "--http-port",
        str(http_port),
        "--dicom-port",
        str(dicom_port),
        *extra,
    )
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=server_environment(env))
    server = RunningServer(proc, http_port, dicom_port, data_dir, log_path, token, https)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"lightbox serve exited with {proc.returncode}:\n{server.log()}")
            with contextlib.suppress(OSError):
                status, _ = server.get_json("/api/health")
                if status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"lightbox serve did not become healthy:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
