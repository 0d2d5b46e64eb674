"""Blob keys: made by the archive, never from wire values, and ordered by ingest time.

A key is ``YYYY/MM/DD/HH/<ingest time in µs>-<random>.dcm``. The time partition lets start-up recovery list
only the partitions written since the index's last commit; the embedded time tells which of two objects with
the same SOP Instance UID is the newer one. Every key is checked against one pattern before it reaches a path.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

_KEY = re.compile(r"\d{4}/\d{2}/\d{2}/\d{2}/\d{20}-[0-9a-f]{16}\.dcm")


def new_key(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    micros = int(now.timestamp() * 1_000_000)
    return f"{now:%Y/%m/%d/%H}/{micros:020d}-{secrets.token_hex(8)}.dcm"


def is_valid_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def key_time_us(key: str) -> int:
    """Ingest time in microseconds since the epoch encoded in ``key``."""
    return int(key.rsplit("/", 1)[1][:20])


def partition_prefix(when: datetime) -> str:
    """The key prefix of the hour partition holding ``when``."""
    return f"{when.astimezone(UTC):%Y/%m/%d/%H}/"


def sibling_key(key: str) -> str:
    """A new key with ``key``'s partition and time (a copy of the object elsewhere stays as old as it)."""
    head, _, name = key.rpartition("/")
    return f"{head}/{name[:20]}-{secrets.token_hex(8)}.dcm"
