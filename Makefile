# incman — common tasks. `make test` installs into .venv (with the test extras) and runs every
# test; pip runs again only when setup.cfg or pyproject.toml changed (the install is editable).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip
SOURCES := incman workers tests beat_schedule.py

.PHONY: install dev run api worker beat flower test test-unit test-integration test-rt lint fmt typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Stamps: `make run` does not re-run pip when nothing it installs from has changed.
$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: setup.cfg pyproject.toml | $(BIN)/python
	$(PIP) install -q -e '.[test,dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

dev: $(VENV)/.installed-dev

run: install
	$(BIN)/incman run

api: install
	$(BIN)/incman api

worker: install
	$(BIN)/celery -A workers.app worker -Q $${QUEUES:-ingest,poll,maintenance,itsm.debug} -l INFO

beat: install
	$(BIN)/celery -A workers.app beat -l INFO

flower: install
	$(BIN)/incman flower

# The suite in TEST_PROCESSES pytest processes side by side (pytest-xdist), each test module
# wholly in one of them; each process is a test session with its own database and Redis db.
TEST_PROCESSES ?= 2
test: dev
	$(BIN)/pytest -q -n $(TEST_PROCESSES) --dist loadfile

test-unit: dev
	$(BIN)/pytest -q tests/unit

test-integration: dev
	$(BIN)/pytest -q tests/integration

# Installs Request Tracker 5 (Debian packages, needs root or sudo) and runs the real-RT tests
# and the RT row of the integration contract table; there a missing RT fails instead of skipping.
test-rt: dev
	./deploy/install-rt.sh
	INCMAN_REQUIRE_RT=1 INCMAN_CONTRACT_ROWS=rt $(BIN)/pytest -q tests/integration/test_rt.py \
		tests/integration/test_contract.py

# Installs Redmine 5 (Debian packages, needs root or sudo) and runs the real-Redmine tests and
# the Redmine row of the integration contract table; there a missing Redmine fails too.
.PHONY: test-redmine
test-redmine: dev
	./deploy/install-redmine.sh
	INCMAN_REQUIRE_REDMINE=1 INCMAN_CONTRACT_ROWS=redmine $(BIN)/pytest -q \
		tests/integration/test_redmine.py tests/integration/test_contract.py

# ruff (lint and format), mypy, the import contracts (.importlinter) and the size limits.
lint: dev
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy incman workers
	$(BIN)/lint-imports
	$(BIN)/pytest -q -p no:cacheprovider tests/unit/test_sizes.py tests/unit/test_layout.py

fmt: dev
	$(BIN)/ruff format $(SOURCES)

typecheck: dev
	$(BIN)/mypy incman workers

bench: dev
	$(BIN)/python -m incman.testing.bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
