# kafkaops: set up, test, lint, benchmark. Everything a fresh machine needs is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install deps test lint format completions bench run clean kafka-cache

help:
	@echo "make run          set up, then run kafkaops against an embedded Kafka and a SQLite file"
	@echo "make test         run the test suite (starts PostgreSQL and Kafka itself)"
	@echo "make lint         ruff (lint + format check) and mypy"
	@echo "make bench        the benchmarks in benchmarks/"
	@echo "make completions  regenerate completions/ for bash, zsh and fish"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# PostgreSQL from Debian's packages (the tests start their own throwaway cluster).
deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "$$KAFKAOPS_TEST_DATABASE_URL" ]; then \
		echo "installing PostgreSQL (Debian package)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi

test: install deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check kafkaops tests benchmarks scripts
	$(BIN)/ruff format --check kafkaops tests benchmarks scripts
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix kafkaops tests benchmarks scripts
	$(BIN)/ruff format kafkaops tests benchmarks scripts

completions: install
	@for shell in bash zsh fish; do \
		$(BIN)/python -c "from typer.completion import get_completion_script as script; \
			print(script(prog_name='kafkaops', complete_var='_KAFKAOPS_COMPLETE', shell='$$shell'))" \
			> completions/kafkaops.$$shell; \
	done
	@echo "completions/ regenerated"

bench: install deps
	$(BIN)/python benchmarks/startup.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
