"""``python -m bench.cstore_cpu``: the C-STORE ingest's CPU per object, the figure to drive down.

Sends ``--count`` CT instances (the cached ``ct`` dataset) with storescu to storescp and to a fresh
``lightbox serve`` from this tree, ``--runs`` times in alternation, and prints per run the wall time of each,
their ratio, the server's CPU time (user + system, all threads; the event loop's thread apart) and its
threads' voluntary context switches per object, then the medians. The CPU figure holds steady when another
load shares the machine far better than the wall ratio does, and ``--compare SRC`` sharpens it further:
each run then also measures the Lightbox whose package is under SRC (say, the previous commit's ``src``,
from ``git archive``), so that both meet the same load, and the median of the per-run differences is
printed. ``--py-spy FILE`` adds one run, not counted, profiled by py-spy into FILE (collapsed stacks), and
prints where the CPU went.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import DEFAULT_DATA_DIR, dimse_store
from bench.archives import isolate_from_environment
from bench.dataset import warm_page_cache
from bench.phases import Phases, dataset


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cstore_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400, help="CT instances of 525 kB to send (400)")
    parser.add_argument("--associations", type=int, nargs="+", default=[1], help="storescu processes (1)")
    parser.add_argument("--max-pdu", type=int, help="storescu --max-send-pdu (default: its own, 16 kB)")
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration (3)")
    parser.add_argument("--compare", type=Path, metavar="SRC", help="also run the lightbox package in SRC")
    parser.add_argument("--py-spy", type=Path, metavar="FILE", help="profile one more run into FILE")
    parser.add_argument("--gil", action="store_true", help="with --py-spy: sample the GIL holder only")
    parser.add_argument("--json", type=Path, help="also write the runs and medians here")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="default: ./bench-data")
    return parser.parse_args(argv)


def measure(
    files: list[Path], associations: int, max_pdu: int | None, workdir: Path, compare: Path | None
) -> dict[str, Any]:
    """One run: storescp, then Lightbox, then the Lightbox under ``compare`` if given, on the same files."""
    reference = dimse_store.reference(files, associations, max_pdu, workdir / "storescp")
    sent = dimse_store.lightbox(files, associations, max_pdu, workdir / "lightbox")
    n = len(files)
    row = {
        "storescp_ms": reference / n * 1e3,
        "lightbox_ms": sent.seconds / n * 1e3,
        "cpu_ms": sent.cpu_seconds / n * 1e3,
        "loop_cpu_ms": sent.main_cpu_seconds / n * 1e3,
        "switches": sent.switches / n,
        "ratio": reference / sent.seconds,
    }
    if compare is not None:
        env = {"PYTHONPATH": str(compare.resolve())}
        other = dimse_store.lightbox(files, associations, max_pdu, workdir / "compared", env=env)
        row["compared_cpu_ms"] = other.cpu_seconds / n * 1e3
        row["compared_loop_cpu_ms"] = other.main_cpu_seconds / n * 1e3
        row["compared_switches"] = other.switches / n
        row["compared_ratio"] = reference / other.seconds
        row["cpu_saved_ms"] = row["compared_cpu_ms"] - row["cpu_ms"]
    return row


def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def line(label: str, r: dict[str, float]) -> str:
    text = (
        f"{label:<16} cpu {r['cpu_ms']:5.2f} ms/obj (loop {r['loop_cpu_ms']:4.2f}, {r['switches']:4.1f} sw.)"
        f"   wall lightbox {r['lightbox_ms']:5.2f} ms/obj"
        f"   storescp {r['storescp_ms']:5.2f} ms/obj   ratio {r['ratio']:.3f}"
    )
    if "compared_cpu_ms" in r:
        text += (
            f"   | compared: cpu {r['compared_cpu_ms']:5.2f} ms/obj (loop {r['compared_loop_cpu_ms']:4.2f},"
            f" {r['compared_switches']:4.1f} sw.),"
            f" ratio {r['compared_ratio']:.3f},"
            f" saved {r['cpu_saved_ms']:+.2f} ms/obj"
        )
    return text


def py_spy(output: Path, gil: bool) -> Callable[[int], contextlib.AbstractContextManager[None]]:
    """A context manager factory: py-spy records the process until the block ends."""

    @contextlib.contextmanager
    def record(pid: int) -> Iterator[None]:
        # py-spy is no dependency of the project (`pip install py-spy`): beside this interpreter, or on PATH
        beside = Path(sys.executable).with_name("py-spy")
        command = [
            str(beside) if beside.exists() else "py-spy",
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--format",
            "raw",
        ]
        command += ["--output", str(output), "--nonblocking", *(["--gil"] if gil else [])]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)

    return record


def hot_spots(collapsed: Path, top: int = 30) -> list[str]:
    """The functions with the most samples, on their own (self) and with what they call (inclusive)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for text in collapsed.read_text().splitlines():
        stack, _, count = text.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_function(f) for f in stack.split(";")[1:]]  # the first frame names the thread
        if frames:
            own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"{total} samples"]
    for title, counter in (("self", own), ("inclusive", inclusive)):
        out.append(f"-- {title}")
        out += [f"{n / total:6.1%}  {name}" for name, n in counter.most_common(top)]
    return out


def _function(frame: str) -> str:
    """``fn (path/to/module.py:12)`` without the line number and with a short path."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lightbox/", "lib/python3"):
        if marker in path:
            path = path[path.index(marker) :]
            break
    return f"{name} ({path})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    isolate_from_environment()
    info = dataset(args.data_dir, "ct", args.count, Phases())
    warm_page_cache(info.files)
    workdir = args.data_dir / "runs" / "cstore-cpu"
    results: dict[str, Any] = {}
    try:
        for associations in args.associations:
            label = f"{associations} assoc."
            runs = []
            for i in range(args.runs):
                runs.append(measure(info.files, associations, args.max_pdu, workdir, args.compare))
                print(line(f"{label} #{i + 1}", runs[-1]), flush=True)
            if runs:
                results[label] = {"runs": runs, "median": medians(runs)}
                print(line(f"{label} median", results[label]["median"]), flush=True)
        if args.py_spy:
            record = py_spy(args.py_spy, args.gil)
            associations = args.associations[0]
            dimse_store.lightbox(info.files, associations, args.max_pdu, workdir / "profiled", record)
            print("\n".join(hot_spots(args.py_spy)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
