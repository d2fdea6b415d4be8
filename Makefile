# Developer entry points.  The shell logic lives in .ci/ (see the scripts' headers).
#
#   make run    set up, start MongoDB (FerretDB on PostgreSQL) + Redis unless MONGODB_URL / REDIS_URL
#               are set, then run the API (http://127.0.0.1:8000/graphql) and one worker
#   make test   set up, lint, then pytest against throwaway services
#               (extra pytest arguments: make test PYTEST_ARGS='-k pipelines -x')

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
# Touched after a successful install; pyproject.toml being newer triggers a re-install.
VENV_STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

# Tools installed in the virtualenv (pytest, dvc, uvicorn, ...) come first on PATH,
# also for the processes the tests and workers spawn.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv tools tools-browser lint test run bench bench-smoke clean clean-data

help:
	@echo "make run         API on http://127.0.0.1:8000/graphql + one worker (Ctrl-C stops all)"
	@echo "make test        ruff + mypy + pytest against throwaway services (PYTEST_ARGS=...)"
	@echo "make lint        ruff + mypy only"
	@echo "make bench       every benchmark against the real stack; writes docs/benchmarks.md"
	@echo "make bench-smoke every benchmark once, tiny sizes (part of make test)"
	@echo "make venv        create/refresh $(VENV) (pip install -e '.[dev]')"
	@echo "make tools       build FerretDB into .data/bin; install PostgreSQL, redis-server, bubblewrap if missing; GraphiQL assets"
	@echo "make clean       remove $(VENV), caches and leftover test data (keeps .data/ data)"
	@echo "make clean-data  remove .data/ entirely (local databases, workspaces, FerretDB binary)"

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

tools:
	.ci/tools.sh

# make tools + Debian's chromium for the browser tests (tests/browser/).
tools-browser:
	.ci/tools.sh --browser

lint: venv
	$(VENV)/bin/ruff check app schema workers tests bench
	$(VENV)/bin/mypy

test: venv tools-browser lint
	.ci/with-services.sh --ephemeral -- $(VENV)/bin/python -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory bench-smoke

run: venv tools
	.ci/with-services.sh --persist -- .ci/run-app.sh

# Benchmarks (bench/): the real stack (API with production uvicorn settings, a worker, MongoDB, Redis) on
# synthetic workspaces, against same-run baselines. `bench` writes docs/benchmarks.md (several minutes);
# `bench-smoke` runs every benchmark once with tiny sizes (seconds) so the harness cannot rot: it fails when a
# benchmark errors, never on a missed target.
bench: venv tools
	.ci/with-services.sh --ephemeral -- $(VENV)/bin/python -m bench --out docs/benchmarks.md

bench-smoke: venv tools
	.ci/with-services.sh --ephemeral -- $(VENV)/bin/python -m bench --smoke

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info .data/test-*
	find app schema workers tests -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true

clean-data:
	rm -rf .data
