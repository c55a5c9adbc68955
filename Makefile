# Developer entry points. `make run` starts everything on a fresh clone; `make help` lists targets.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install, so pip runs again only when a requirements file changes.
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
CHAOS_ARGS ?=

.PHONY: help run test lint fmt superuser migrate install $(VENV) bench chaos clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_.-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: migrate ## Run Temporal, the worker and the web app in this terminal (Ctrl-C stops all)
	$(BIN)/python scripts/run_stack.py

# Tests take their settings from coffeeshop.settings_test and the environment, never from .env.
test: install ## Run the tests (SQLite, or Postgres when DATABASE_URL is set); PYTEST_ARGS="-k x"
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## Check lint and formatting
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install ## Format, then fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

superuser: migrate ## Create a Django admin user
	$(BIN)/python manage.py createsuperuser

migrate: install .env ## Apply database migrations with the local .env settings
	@mkdir -p .data
	$(BIN)/python manage.py migrate --noinput

install: $(STAMP) ## Create .venv and install requirements-dev.txt (again only when they change)

$(VENV): $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11+ is required; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." >&2; \
		     echo "Name another one: make PYTHON=python3.12 install" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off \
		-r requirements-dev.txt
	@touch $@

.env:
	@key=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))'); umask 077; { \
		echo "# Made by \`make run\` for local development; edit freely, make never overwrites it."; \
		echo "# Real environment variables override these values. .env.example lists them all."; \
		echo "DEBUG=true"; \
		echo "SECRET_KEY=$$key"; \
		echo "VERIFICATION_DEMO_CODE=1234"; \
		echo "# Roomier than production, so repeating the walkthrough with one number works."; \
		echo "PHONE_VERIFICATIONS_PER_DAY=20"; \
		echo "THROTTLE_SIGNUP_RATE=60/hour"; \
	} > $@
	@echo "Created .env for local development (DEBUG=true, demo verification code 1234)."

# Timed targets live here, never in the tests. BENCH_ARGS=--smoke: a quick check that it works.
bench: install ## App vs the raw Temporal SDK: latency, throughput, memory; BENCH_ARGS=--smoke
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

# Root only: it stops and starts the local PostgreSQL cluster of --database-url (pg_ctlcluster).
chaos: install ## Crashes and outages under load, then six invariants checked; CHAOS_ARGS="--seed 7"
	$(BIN)/python scripts/chaos.py $(CHAOS_ARGS)

clean: ## Delete local state (.data: databases, Temporal history) and caches; keeps .venv and .env
	rm -rf .data .pytest_cache .ruff_cache staticfiles test-results
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
