# voice-campaigns: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench serve serve-cluster soak clean venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python -m flows.demo $(DEMO_ARGS)

# Two pytest-xdist workers, each taking whole test files in collection order (module fixtures built
# once; the slow served and cluster files start early, the many short ones even out the end). The
# served tests mostly wait on Prefect, so the other worker's CPU work fits beside them.
# `make test PYTEST_XDIST=` runs everything in one process.
PYTEST_XDIST ?= -n 2 --dist loadfile --no-loadscope-reorder

test: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python -m pytest -q $(PYTEST_XDIST) $(PYTEST_ARGS)

bench: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python -m bench

# The long reliability versions: the 10-minute contention soak, then the reliability tests in full
# (150 crash-kill runs, longer fuzzing). Figures are printed; docs/operations.md keeps the last ones.
soak: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python -m bench.soak --seconds $${SOAK_SECONDS:-600}
	RELIABILITY_FULL=1 PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python -m pytest -q tests/reliability

# The demo's store and its companions, test and bench outputs; never data/campaigns.duckdb (the system of record)
clean:
	rm -rf data/demo.duckdb data/demo.duckdb.wal data/demo.analytics.duckdb data/demo.analytics.duckdb.wal \
		data/demo.simulator.sqlite test-artifacts bench/out

serve: $(STAMP)
	$(BIN)/python -m flows.serve $(SERVE_ARGS)

# Scale-out on one machine: PostgreSQL (data/pg) as the shared store, Prefect server, three workers,
# dashboard (docs/scale-out.md). Needs the Debian postgresql package and the [cluster] extra.
serve-cluster: $(STAMP)
	$(BIN)/python -m flows.serve_cluster
