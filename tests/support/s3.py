"""A real S3 endpoint for the tests: moto's server mode run as its own process on a free loopback port.

The store under test talks HTTP to it as it would to AWS or MinIO; each test gets a bucket of its own.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx

from tests.support.server import free_port

# moto accepts any credentials; these only have to be present
ACCESS_KEY = "lightbox-test"
SECRET_KEY = "lightbox-test-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def client(self) -> object:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        name = f"lightbox-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name

    def env(self, bucket: str, prefix: str = "archive") -> dict[str, str]:
        """Settings for ``lightbox`` commands storing into ``bucket``."""
        return {
            "LIGHTBOX_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "LIGHTBOX_STORAGE_S3_ENDPOINT": self.endpoint,
            "LIGHTBOX_STORAGE_S3_REGION": REGION,
            "LIGHTBOX_STORAGE_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "LIGHTBOX_STORAGE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }


@contextlib.contextmanager
def s3_server(log_dir: Path) -> Iterator[S3Server]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(log_dir / f"moto-{port}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(endpoint + "/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server did not start; see {log_dir}") from None
                time.sleep(0.1)
        yield S3Server(endpoint)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
