"""dcmtk's tools as real peers, for tests and the benchmark (TCP_NODELAY=1, or each exchange waits ~40 ms)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.server import free_port

ENV = {**os.environ, "TCP_NODELAY": "1"}


class DcmtkMissing(RuntimeError):
    pass


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DcmtkMissing(f"dcmtk's {name} is not installed (Debian package dcmtk)")
    return path


@contextlib.contextmanager
def listening(command: list[str], port: int) -> Iterator[int]:
    """Run a dcmtk server ``command`` until the block ends, once it accepts connections on ``port``."""
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def storescp(folder: Path, ae_title: str = "STORESCP", max_pdu: int = 131072) -> Iterator[int]:
    """A storescp writing into ``folder`` on a free loopback port; yields the port."""
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    command = [tool("storescp"), "-aet", ae_title, "--max-pdu", str(max_pdu), "-od", str(folder), str(port)]
    with listening(command, port):
        yield port


def require(name: str) -> str:
    """The tool's path for a test: in CI a missing dcmtk fails the test, elsewhere it skips it."""
    import pytest

    from tests.support.ci import IN_CI

    try:
        return tool(name)
    except DcmtkMissing as exc:
        if IN_CI:
            pytest.fail(f"{exc}: required in CI")
        pytest.skip(str(exc))


def retrieve_study(tool_name: str, port: int, study: str, *options: str) -> subprocess.CompletedProcess[str]:
    """Run getscu or movescu (``tool_name``) for one study of the LIGHTBOX archive at ``port``, Study Root."""
    command = [require(tool_name), "-S", "-aec", "LIGHTBOX", *options]
    command += ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", "127.0.0.1", str(port)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=ENV)
