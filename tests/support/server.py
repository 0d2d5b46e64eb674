"""Run ``lightbox serve`` as a subprocess on free ports, for functional tests."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    http_port: int
    dicom_port: int
    data_dir: Path
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get_json(self, path: str) -> tuple[int, dict[str, object]]:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def lightbox_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lightbox.cli", *args]


@contextlib.contextmanager
def running_server(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[RunningServer]:
    http_port, dicom_port = free_port(), free_port()
    log_path = data_dir.parent / f"server-{http_port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
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
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    server = RunningServer(proc, http_port, dicom_port, data_dir, log_path)
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
