# The README's two commands are `make demo` and `make test` (DESIGN 3.1). Each one creates
# .venv with the project and its extras when it is missing, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench install clean

# hatch_build.py compiles the parse accelerator at install time: a changed _cblocks.pyx or
# build hook means reinstalling.
$(STAMP): pyproject.toml hatch_build.py src/greenbutton/parse/_cblocks.pyx
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e '.[all]' --group dev
	touch $(STAMP)

install: $(STAMP)

# Until the simulator and web app land (issues 3-5), the demo is the file toolkit:
# a year of PG&E-style 15-minute data, inspected, exported and plotted.
demo: $(STAMP)
	mkdir -p demo-out
	$(BIN)/python bench/generate.py --style pge --years 1 --compact -o demo-out/usage.xml
	$(BIN)/greenbutton inspect demo-out/usage.xml
	$(BIN)/greenbutton export demo-out/usage.xml -o demo-out/usage.csv
	$(BIN)/greenbutton plot demo-out/usage.xml --kind all --format html -o demo-out/usage.html
	@echo "demo: readings in demo-out/usage.csv, charts in demo-out/usage.html"

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build dist demo-out .pytest_cache .mypy_cache .ruff_cache
