"""Whether the tests run in CI, where a missing real peer (PostgreSQL, dcmtk) fails the run."""

import os

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
