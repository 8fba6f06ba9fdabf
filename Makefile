# Two commands for a new user: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test bench dev lint format

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The main job on the embedded default (SQLite + local Delta tables under ./.ops).
demo: install
	$(BIN)/ops-pipeline demo

## The whole suite: SQLite and PostgreSQL (127.0.0.1:5432), real Dagster, real HTTP servers, real Delta files.
test: install
	$(BIN)/pytest -n 2 --dist loadfile -q

## Performance benchmarks (minutes; needs PostgreSQL); results in benchmarks/results/ and docs/BENCHMARKS.md.
bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.bench_ledger
	$(BIN)/python -m benchmarks.bench_balance_api
	$(BIN)/python -m benchmarks.bench_jobqueue
	$(BIN)/python -m benchmarks.bench_fundout
	$(BIN)/python -m benchmarks.bench_tickets
	$(BIN)/python -m benchmarks.bench_tails
	$(BIN)/python -m benchmarks.bench_obligations
	$(BIN)/python -m benchmarks.bench_console
	$(BIN)/python -m benchmarks.bench_cli_startup
	$(BIN)/python -m benchmarks.bench_recon
	$(BIN)/python -m benchmarks.bench_statements
	$(BIN)/python -m benchmarks.bench_reports
	$(BIN)/python -m benchmarks.bench_intake --db sqlite postgres
	$(BIN)/python -m benchmarks.bench_portal_recon
	$(BIN)/python -m benchmarks.bench_g2p
	$(BIN)/python -m benchmarks.bench_giftcards_finance

## Dagster UI (http://127.0.0.1:3000) + daemon + REST API (http://127.0.0.1:8000) on OPS_HOME.
dev: install
	$(BIN)/ops-pipeline dev

lint: install
	$(BIN)/ruff check .
