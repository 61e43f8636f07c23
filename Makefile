# The README's two commands are `make demo` and `make test` (DESIGN 3.1). Each one creates
# .venv with the project and its extras when it is missing, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench install clean lock dist docs

# hatch_build.py compiles the parse accelerator at install time: a changed _cblocks.pyx or
# build hook means reinstalling.
# Every dependency (runtime extras, the dev group, the build system) comes from the
# hash-pinned lock (SECURITY R70); `make lock` regenerates it after pyproject.toml changes.
# runtime.lock is the same without the dev group: what `make demo` needs (issue 12.2).
LOCK   := requirements/ci.lock
RUNTIME_LOCK := requirements/runtime.lock
RUNTIME_STAMP := $(VENV)/.runtime
SOURCES := pyproject.toml hatch_build.py src/greenbutton/parse/_cblocks.pyx

$(STAMP): $(SOURCES) $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --no-compile --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP) $(RUNTIME_STAMP)

# The demo's own install: the runtime extras and the build system, no test or lint tools.
# --no-compile: byte-compiling every installed module (pandas, matplotlib ...) took half of
# a first `make demo`; Python compiles what it imports, when it imports it.
$(RUNTIME_STAMP): $(SOURCES) $(RUNTIME_LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --no-compile --require-hashes -r $(RUNTIME_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(RUNTIME_STAMP)

install: $(STAMP)

# The whole third-party loop on loopback (DESIGN 3.2): simulator + web app, customer login and
# consent, code exchange, sync fetch, async batch + notification, refresh, storage, a chart.
demo: $(RUNTIME_STAMP)
	$(BIN)/greenbutton demo

# The sdist and a wheel tagged for this interpreter and platform, with the compiled parser
# (GREENBUTTON_NO_EXTENSION=1 make dist: a pure-Python py3-none-any wheel).
dist: $(RUNTIME_STAMP)
	rm -rf dist
	$(BIN)/python -m hatchling build -t sdist -t wheel

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# The documentation site into site/ (mkdocs, strict: a warning is an error).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Needs uv (pip install uv): resolves from PyPI for this machine's Python.
lock:
	uv pip compile pyproject.toml requirements/build.in --all-extras --group dev --group docs \
	  --generate-hashes --python-version 3.11.7 --index-url https://pypi.org/simple -o $(LOCK)
	uv pip compile pyproject.toml requirements/build.in --all-extras \
	  --generate-hashes --python-version 3.11.7 --index-url https://pypi.org/simple -o $(RUNTIME_LOCK)

clean:
	rm -rf $(VENV) build dist site demo-out .pytest_cache .mypy_cache .ruff_cache
