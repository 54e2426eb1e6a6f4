# jiuzhu: the two commands of the README.
#   make demo   set up a virtualenv (first run only), explain an example household, then run the
#               HTTP service briefly and evaluate the same household through it
#   make test   set up the same virtualenv and run every check CI runs
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench bench-http bench-monitor cluster-demo clean

$(BIN)/jiuzhu: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# bytecode for our own modules, written even where PYTHONDONTWRITEBYTECODE is set: without it every
	@# command compiles ~140 modules before it starts (0.15-0.2 s of each `jiuzhu batch`)
	$(BIN)/python -m compileall -q engine api >/dev/null
	@touch $@

demo: $(BIN)/jiuzhu
	$(BIN)/jiuzhu explain examples/liaoning_shenyang_family.json
	$(BIN)/python -m api.demo

test: $(BIN)/jiuzhu
	$(BIN)/ruff check .
	$(BIN)/jiuzhu rules check
	$(BIN)/jiuzhu test
	$(BIN)/python -m pytest

bench: $(BIN)/jiuzhu
	$(BIN)/python benchmarks/bench_evaluate.py
	$(BIN)/python benchmarks/bench_batch.py

# Load test of POST /v1/evaluate with wrk (Debian package 'wrk'), persistence on.
bench-http: $(BIN)/jiuzhu
	$(BIN)/python benchmarks/bench_http.py

# Dynamic monitoring: 1,000,000 synthetic events through rules and re-evaluation, replayed on every core.
bench-monitor: $(BIN)/jiuzhu
	$(BIN)/python benchmarks/bench_monitor.py

# A provincial deployment on loopback, in a temporary directory: PostgreSQL, Redis, 2 replicas, 2 monitor
# consumers, a Dask scheduler with 2 workers; evaluations, 200,000 events over 20,000 households and a
# 1,000,000-household simulation; one replica, consumer and worker SIGKILLed and restarted mid-way;
# ends with "lost 0, duplicated 0" from the database. Smaller: make cluster-demo DEMO="--events 20000 --households 2000"
cluster-demo: $(BIN)/jiuzhu
	$(BIN)/python benchmarks/cluster_demo.py $(DEMO)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
