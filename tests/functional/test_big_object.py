"""A 1 GiB multi-frame object ingests as a stream: resident memory grows by less than 200 MB."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_one_gigabyte_object_streams_with_bounded_memory(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.big_object", str(tmp_path / "data")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    fields = dict(part.split("=") for part in out.split())
    assert int(fields["size"]) > 1 << 30
    assert float(fields["growth_mb"]) < 200, out
