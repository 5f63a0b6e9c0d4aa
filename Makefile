# kafkaops: set up, test, lint, benchmark. Everything a fresh machine needs is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install deps test test-fast lint format completions docs bench run clean kafka-cache kafka-broker kcat pictures service

help:
	@echo "make run          set up, then run kafkaops against an embedded Kafka and a SQLite file"
	@echo "make test         run the test suite (starts PostgreSQL and Kafka itself)"
	@echo "make test-fast    the suite without the real broker, the service, packaging and slow tests (< 1 min)"
	@echo "make lint         ruff (lint + format check) and mypy"
	@echo "make bench        the benchmarks in benchmarks/"
	@echo "make completions  regenerate completions/ for bash, zsh and fish"
	@echo "make docs         regenerate docs/reference.md from every command's --help"
	@echo "make pictures     regenerate the SVGs in docs/ from real runs of the demo"
	@echo "make kafka-cache  fetch the Apache Kafka broker jars once (make test does it)"
	@echo "make kafka-broker a local Apache Kafka broker in the foreground (PORT=9092 to pick its port)"
	@echo "make service      build the reference Spring Boot service (examples/casino-events) the tests run"

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

test: install deps kafka-cache service
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast lane: everything but the real Kafka broker, the reference service, the packaging build
# and the tests that wait out real timeouts; two workers, each with its own throwaway PostgreSQL.
FAST_MARKERS := not kafka and not service and not packaging and not slow

test-fast: install deps
	$(BIN)/python -m pytest -n 2 -m "$(FAST_MARKERS)" -q -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check kafkaops tests benchmarks scripts
	$(BIN)/ruff format --check kafkaops tests benchmarks scripts
	$(BIN)/mypy
	@# every test module imports (mypy checks the package; this catches a test naming a moved name)
	$(BIN)/python -m pytest --collect-only -q -p no:cacheprovider > /dev/null

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

# docs/reference.md from every command's --help (tests/test_docs.py fails when it is stale).
docs: install
	$(BIN)/python scripts/make_reference.py
	$(BIN)/python scripts/make_acls.py

# Kafka jars from Maven Central into ~/.cache/kafkaops (once), for the real broker of the tests.
kafka-cache: install
	@if command -v java >/dev/null && command -v mvn >/dev/null; then \
		scripts/kafka-broker fetch; \
	else \
		echo "Java or Maven is missing: the real Kafka broker tests will be skipped"; \
	fi

# A local Apache Kafka broker in the foreground; prints bootstrap.servers=127.0.0.1:PORT.
kafka-broker: install
	scripts/kafka-broker run $(if $(PORT),--port $(PORT))

# The reference service kafkaops is tested against: examples/casino-events/target/casino-events.jar.
service:
	@if command -v java >/dev/null && command -v mvn >/dev/null; then \
		cd examples/casino-events && mvn -q -B package -DskipTests; \
	else \
		echo "Java or Maven is missing: the service tests will be skipped"; \
	fi

run: install
	$(BIN)/kafkaops demo

# kcat for benchmarks/dlq_replay.py's comparison pipe, from Debian's package (kcat, once kafkacat).
kcat:
	@if ! command -v kcat >/dev/null && ! command -v kafkacat >/dev/null; then \
		echo "installing kcat (Debian package)"; \
		apt-get update -qq && (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null \
			|| DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kafkacat >/dev/null); \
	fi

bench: install deps kafka-cache kcat
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/failed_group_by.py
	$(BIN)/python benchmarks/retry_pass.py
	$(BIN)/python benchmarks/status.py
	$(BIN)/python benchmarks/status_rows.py
	$(BIN)/python benchmarks/dlq_replay.py

pictures: install
	$(BIN)/pip install -q -e ".[docs]"
	$(BIN)/python scripts/make_pictures.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
