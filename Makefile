# The README's two commands: `make run` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PMO_TEST_POSTGRES_URL ?= postgresql://pmo:pmo@127.0.0.1:5432/pmo
export PMO_TEST_KAFKA_BOOTSTRAP ?= 127.0.0.1:9092
# Playwright drives Debian's chromium (scripts/chromium-local.sh); it never fetches a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: run test lint unit bench services stop-services clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	@echo "pmo-ledger: the dashboard will be at http://127.0.0.1:8000/ (sign in with a key of PMO_API_KEYS)"
	@echo "  no data yet? load the demo portfolio first: $(BIN)/pmo demo"
	@echo "  (or while it serves: PMO_DEMO_API_KEY=<key> $(BIN)/pmo demo --api http://127.0.0.1:8000)"
	$(BIN)/pmo serve

# The broker of make test and make bench holds scratch topics only: a data directory
# that has failed (see scripts/kafka-local.sh) is deleted rather than stop the run.
services:
	scripts/postgres-local.sh start
	PMO_KAFKA_RESET_FAILED_DATA=1 scripts/kafka-local.sh start

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	scripts/check-compose.sh

test: $(STAMP) services lint
	scripts/chromium-local.sh
	$(BIN)/pytest -q -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

bench: $(STAMP) services
	$(BIN)/python -m bench

stop-services:
	-scripts/kafka-local.sh stop
	-scripts/postgres-local.sh stop

clean:
	rm -rf $(VENV) pmo-data .pytest_cache .mypy_cache .ruff_cache
