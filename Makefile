# Two commands set everything up on a fresh machine with Python 3.11+:
#   make demo   - create .venv, install, run the offline demo campaign end to end
#   make test   - create .venv, install, lint and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test dev bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/outbound demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

dev: $(STAMP)
	$(BIN)/outbound dev

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf data/outbound.duckdb data/outbound.duckdb.wal data/offline_ledger data/landing data/cache
	find data/dagster_home -mindepth 1 -not -name dagster.yaml -exec rm -rf {} +
