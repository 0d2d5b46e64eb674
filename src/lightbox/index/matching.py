"""SQL side of the matching engine (filled in by the query work)."""

from __future__ import annotations

from typing import Any


def build_search(spec: Any, after_id: int | None, limit: int) -> Any:
    raise NotImplementedError
