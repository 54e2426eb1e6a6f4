# jiuzhu: the two commands of the README.
#   make demo   set up a virtualenv (first run only) and explain an example household
#   make test   set up the same virtualenv and run every check CI runs
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/jiuzhu: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

demo: $(BIN)/jiuzhu
	$(BIN)/jiuzhu explain examples/liaoning_shenyang_family.json

test: $(BIN)/jiuzhu
	$(BIN)/ruff check .
	$(BIN)/jiuzhu rules check
	$(BIN)/jiuzhu test
	$(BIN)/python -m pytest

bench: $(BIN)/jiuzhu
	$(BIN)/python benchmarks/bench_evaluate.py
	$(BIN)/python benchmarks/bench_batch.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
