# NOFX control plane. Every target sets itself up: a fresh machine needs only
# python3 (3.11 or 3.12; .python-version asks pyenv for 3.12) and make (vercel-build
# also needs node and npm, test-py311 a Python 3.11).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BASE_URL ?= http://127.0.0.1:$(or $(PORT),3000)

.PHONY: setup dev serve test test-py311 migrate seed token lint gates smoke bench vercel-build browser clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

dev: setup  ## set up, start the embedded PostgreSQL unless DATABASE_URL is set, migrate, seed, serve :$PORT (3000)
	$(PY) -m lib.cli dev

serve: setup
	$(PY) -m lib.cli serve

migrate: setup  ## apply the migrations to DATABASE_URL, or to the embedded database
	$(PY) -m lib.cli migrate

seed: setup
	$(PY) -m lib.cli seed

token: setup  ## make token ROLE=approver
	@$(PY) -m lib.cli token --role $(or $(ROLE),admin)

browser:  ## Debian's Chromium for the console tests (installs with apt-get when run as root)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "chromium missing: the browser tests will fail (apt-get install chromium)"

test: setup browser  ## set up and run every test (DATABASE_URL if set, else the embedded PostgreSQL)
	$(PY) -m pytest -n 2 $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc = 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi; exit $$rc

# The code supports Python 3.11 too (Vercel runs 3.12): the pure core's tests on 3.11.
PY311 ?= $(shell PYENV_VERSION=3.11.7 pyenv which python3 2>/dev/null || command -v python3.11)
test-py311:
	@test -n "$(PY311)" || { echo "no Python 3.11 on this machine (pyenv install 3.11, or set PY311=...)"; exit 1; }
	test -x .venv311/bin/python || $(PY311) -m venv .venv311
	.venv311/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	.venv311/bin/python -m pytest -q -p no:cacheprovider tests/unit

lint: setup  ## ruff, mypy and the migration linter
	$(VENV)/bin/ruff check lib api tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/squawk --config .squawk.toml supabase/migrations/*.sql

gates: lint  ## the bar a change must pass: lint, type check and the gate policies' tests
	$(PY) -m pytest -q tests/unit/test_gate_handlers.py tests/unit/test_policies.py

smoke: setup  ## the whole story against a running server: make smoke BASE_URL=https://...
	$(PY) -m lib.cli smoke --surface planner --base-url $(BASE_URL)

bench: setup  ## print the benchmark table (README carries the latest)
	$(PY) -m bench

vercel-build: setup  ## the real `vercel build`, then check every function and its size
	$(PY) -m bench.vercel_build

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .vercel
