# CanhBao: `make run` starts everything with demo data; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint docs bench-lifecycle bench-intake bench-stats fault-report clean help

help:
	@echo "make run    start Temporal, the worker and the web/API on http://127.0.0.1:8000 with demo data"
	@echo "make test   install test dependencies and run the whole suite"
	@echo "make docs   rewrite the settings table of docs/configuration.md from core/settings.py"
	@echo "make fault-report   the fault suite at full size (100 lifecycles per fault): a table of lost, duplicated, SQL-vs-history differences and 5xx"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(VENV)/.installed-run node_modules/.installed
	$(BIN)/python -m core.devstack

test: $(VENV)/.installed-test node_modules/.installed
	@test -x /usr/bin/chromium || { echo "Chromium is needed for the browser tests: apt-get install -y chromium (or run .ci/run)"; exit 1; }
	$(BIN)/ruff check .
	$(BIN)/mypy schema core workflows activities api web worker.py app.py
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy schema core workflows activities api web worker.py app.py
	$(BIN)/lint-imports

docs: $(VENV)/.installed-run
	$(BIN)/python -m core.settings_doc

bench-lifecycle: $(VENV)/.installed-test
	CANHBAO_DEMO=1 $(BIN)/python -m bench.lifecycle

bench-intake: $(VENV)/.installed-test
	CANHBAO_DEMO=1 $(BIN)/python -m bench.intake

# STATS_ARGS="--million" for 1,000,000 incidents (default 200,000); needs PostgreSQL on
# 127.0.0.1:5432 (--server for another): it creates and drops canhbao_bench_stats.
bench-stats: $(VENV)/.installed-test
	$(BIN)/python -m bench.stats $(STATS_ARGS)

# FAULT_ARGS="-n 30 --faults worker-killed,db-unreachable" for a smaller run.
fault-report: $(VENV)/.installed-test
	$(BIN)/python -m bench.fault_report $(FAULT_ARGS)

clean:
	rm -rf $(VENV) node_modules test-artifacts .pytest_cache
