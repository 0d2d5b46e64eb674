"""``make bench``: import rate, query latency and the DICOM port of Lightbox on generated, deterministic data.

Run with ``python -m bench`` from the repository root; docs/benchmarks.md says what each figure means.
"""

from pathlib import Path

# Datasets are cached here between runs; archives built by a run live here while it runs (gitignored).
DEFAULT_DATA_DIR = Path("bench-data")
