# jira-sync developer commands. `make help` lists them.
VENV   := .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BROKER ?= redis://127.0.0.1:6379/0

.DEFAULT_GOAL := help

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): setup.py setup.cfg
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the service with its dev tools

lint: $(STAMP) ## Ruff over the code base
	$(VENV)/bin/ruff check .

test: lint ## Lint, then the whole test suite (needs Postgres, Redis and RabbitMQ: see `make services`)
	$(VENV)/bin/pytest

test-faults: $(STAMP) ## The fault suite at full size: about 1,000 events and several kills per scenario
	FAULT_EVENTS=$${FAULT_EVENTS:-1000} FAULT_KILLS=$${FAULT_KILLS:-4} \
	  $(VENV)/bin/pytest -m faults tests/faults

demo: $(STAMP) ## The whole system on embedded defaults (no external service needed)
	$(VENV)/bin/jira-sync demo

run: $(STAMP) ## Web, worker and beat against the configured database and broker
	$(VENV)/bin/jira-sync db upgrade
	$(VENV)/bin/jira-sync worker & $(VENV)/bin/jira-sync beat & \
	  trap 'kill 0' INT TERM EXIT; $(VENV)/bin/jira-sync web

bench: $(STAMP) ## Benchmarks, printed as ratios against a baseline measured in the same run
	$(PYTHON) -m bench

flower: $(STAMP) ## Flower on 127.0.0.1:5555 against BROKER (default the local Redis)
	JIRA_SYNC_BROKER_URL=$(BROKER) $(VENV)/bin/celery -A worker.celery_app:app flower \
	  --address=127.0.0.1 --port=5555

services: ## Start the local Postgres, Redis and RabbitMQ when they are down
	bash .ci/services

.PHONY: help install lint test test-faults demo run bench flower services
