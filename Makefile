# The README's two commands are `make demo` and `make test` (DESIGN 3.1). Each one creates
# .venv with the project and its extras when it is missing, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench install clean lock

# hatch_build.py compiles the parse accelerator at install time: a changed _cblocks.pyx or
# build hook means reinstalling.
# Every dependency (runtime extras, the dev group, the build system) comes from the
# hash-pinned lock (SECURITY R70); `make lock` regenerates it after pyproject.toml changes.
LOCK   := requirements/ci.lock

$(STAMP): pyproject.toml hatch_build.py src/greenbutton/parse/_cblocks.pyx $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# The whole third-party loop on loopback (DESIGN 3.2): simulator + web app, customer login and
# consent, code exchange, sync fetch, async batch + notification, refresh, storage, a chart.
demo: $(STAMP)
	$(BIN)/greenbutton demo

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Needs uv (pip install uv): resolves from PyPI for this machine's Python.
lock:
	uv pip compile pyproject.toml requirements/build.in --all-extras --group dev \
	  --generate-hashes --python-version 3.11.7 --index-url https://pypi.org/simple -o $(LOCK)

clean:
	rm -rf $(VENV) build dist demo-out .pytest_cache .mypy_cache .ruff_cache
