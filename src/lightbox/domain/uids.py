"""UID syntax (PS3.5 9.1): dot-separated numeric components, no leading zeros, at most 64 characters."""

from __future__ import annotations

import re

MAX_UID_LENGTH = 64
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


def is_valid_uid(value: object) -> bool:
    """True when ``value`` is a syntactically valid UID (and therefore safe in a path or a URL)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_UID_LENGTH and _UID.fullmatch(value) is not None
