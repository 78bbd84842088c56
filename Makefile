# Everything goes through uv (scripts/uv.sh installs it with pip when missing).
SHELL := /bin/bash
UV := scripts/uv.sh
ADDR ?= 127.0.0.1:8000

.DEFAULT_GOAL := help
.PHONY: help run test lint fmt bench sync services

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

run: ## install, migrate, seed demo data, ensure an admin user, serve on 127.0.0.1:8000 (ADDR=...)
	@ADDR=$(ADDR) scripts/run.sh

test: ## the pytest suite: embedded default, then PostgreSQL + Redis + S3 when they answer
	@scripts/test.sh $(PYTEST_ARGS)

lint: sync ## ruff check, ruff format --check, and the import layers (import-linter)
	@rc=0; \
	$(UV) run --frozen ruff check . || rc=1; \
	$(UV) run --frozen ruff format --check . || rc=1; \
	$(UV) run --frozen lint-imports --no-cache || rc=1; \
	exit $$rc

fmt: sync ## ruff format and the fixable ruff checks
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

bench: sync ## every benchmark in bench/ (bench/run.py when there is one)
	@set -e; \
	if [ -f bench/run.py ]; then $(UV) run --frozen python bench/run.py; exit 0; fi; \
	ran=0; \
	for f in bench/[!_]*.py; do \
	  [ -f "$$f" ] || continue; \
	  printf '\n== %s\n' "$$f"; $(UV) run --frozen python "$$f"; ran=1; \
	done; \
	[ $$ran = 1 ] || { echo "no benchmarks in bench/"; exit 1; }

sync: ## install the locked dependencies into .venv
	@$(UV) sync --frozen --quiet

services: ## start PostgreSQL and Redis on 127.0.0.1 if they are not running (root, Debian)
	@scripts/services.sh
