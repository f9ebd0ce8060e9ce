# Two commands do everything on a fresh machine with python3, pip and make:
#   make demo   the main job on the embedded DuckDB default
#   make test   the whole test suite (what CI runs through .ci/run)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint setup labels clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

setup: $(STAMP)

# The French labels of the dictionary are installed at set-up (never committed).
labels: setup
	$(BIN)/snds labels

demo: labels
	$(BIN)/snds demo

lint: setup
	$(BIN)/ruff check scripts tests/python benchmarks
	$(BIN)/ruff format --check scripts tests/python benchmarks
	$(BIN)/sqlfluff lint macros

# Two pytest-xdist workers: each test module runs whole on one (--dist loadfile; a module that reads another's costly
# session fixture runs with it: SHARED_WORKER in tests/python/conftest.py), the longest modules first in the
# order tests/python/conftest.py gives (--no-loadscope-reorder keeps it); the 15 slowest tests are listed at the end,
# to watch the 15-minute budget. Plain `$(BIN)/pytest` runs in one process. Before it, the labels and the lint run
# side by side, one core each.
test: setup
	$(MAKE) --no-print-directory --jobs=2 --output-sync=target labels lint
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

clean:
	rm -rf target logs data/*.duckdb data/*.wal
