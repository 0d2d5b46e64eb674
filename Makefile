# Lightbox: the two set-up commands are `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VIEWER := build/viewer
VIEWER_STAMP := $(VIEWER)/.installed

.PHONY: serve test bench lint typecheck lock clean viewer

# Create the virtual environment and install the locked dependencies when the lock changes.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# The diagnostic viewer (OHIF, prebuilt, from its npm package; needs npm), never in git. The script does
# nothing when the pinned version is in place already. The venv's Python: it has brotli for the .br copies.
$(VIEWER_STAMP): scripts/install_viewer.py $(STAMP)
	$(BIN)/python scripts/install_viewer.py $(VIEWER)

viewer: $(VIEWER_STAMP)

# Without npm the archive still serves, without the viewer (the script warns); the tests need the viewer.
serve: $(STAMP)
	@$(BIN)/python scripts/install_viewer.py --optional $(VIEWER)
	$(BIN)/lightbox serve

test: $(STAMP) $(VIEWER_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy

# Regenerate requirements.lock from pyproject.toml (hashes pinned for every platform wheel).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) $(VIEWER) .pytest_cache .ruff_cache .mypy_cache
