"""The run's phases (timed, in order) and the cached datasets each phase asks for."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import ct, population
from bench.dataset import DatasetInfo, ensure_dataset


class Phases:
    """Wall-clock time of each phase, in the order they ran."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def seconds(self, prefix: str) -> float:
        return sum(p["seconds"] for p in self.items if p["name"].startswith(prefix))

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[dict[str, Any]]:
        entry: dict[str, Any] = {"name": name, "seconds": 0.0, "note": ""}
        print(f"-- {name}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            yield entry
        finally:
            entry["seconds"] = round(time.perf_counter() - start, 2)
            self.items.append(entry)


def dataset(data_dir: Path, kind: str, count: int, phases: Phases) -> DatasetInfo:
    """The cached dataset ``kind`` ("ct", "ct-series", "ct-headers", "small") of ``count`` instances, made
    if missing."""
    workers = os.cpu_count() or 1
    if kind == "ct":
        name, version, params = f"ct-{count}", ct.GENERATOR_VERSION, ct.params(count)

        def generate(path: Path) -> None:
            ct.generate(path, count, workers)
    elif kind == "ct-series":
        name, version, params = f"ct-series-{count}", ct.GENERATOR_VERSION, ct.series_params(count)

        def generate(path: Path) -> None:
            ct.generate_series(path, count)
    elif kind == "ct-headers":
        name, version, params = f"ct-headers-{count}", ct.GENERATOR_VERSION, ct.header_series_params(count)

        def generate(path: Path) -> None:
            ct.generate_header_series(path, count)
    else:
        name, version, params = f"small-{count}", population.GENERATOR_VERSION, population.params(count)

        def generate(path: Path) -> None:
            population.generate(path, count, workers)

    with phases(f"dataset {name}") as entry:
        info = ensure_dataset(data_dir / "datasets" / name, kind, version, params, generate)
        entry["note"] = "cached" if info.cached else f"generated {len(info.files):,} files"
    return info
