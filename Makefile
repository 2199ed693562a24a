# Two commands a new user needs: `make run` and `make test`.
# Both create .venv and install what they need; running them again is cheap.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` and `make test-min`: one more than the
# cores, as the tests often wait on servers and subprocesses (on 2 cores, the
# same 627 tests took 131 s in one process, 91 s on 2 workers, 66 s on 3);
# PYTEST_WORKERS=0 runs every test in one process. pyproject.toml's addopts
# keep each test file on one worker (--dist loadfile); tests/conftest.py's
# docstring says what a fixture needs to be safe on parallel workers.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))

.PHONY: run test test-min lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/tuimail

lint: $(STAMP_TEST)
	$(BIN)/ruff check tuimail tests benchmarks
	$(BIN)/ruff format --check tuimail tests benchmarks

typecheck: $(STAMP_TEST)
	$(BIN)/mypy

# The test OAuth provider's npm packages (tests/oauth_provider, started by
# tests/oauth_support.py), installed from its lock file when node_modules is
# missing or older than the lock. Without npm the OAuth tests skip, saying so
# (under CI=true they fail).
OAUTH_PROVIDER := tests/oauth_provider
STAMP_NPM := $(OAUTH_PROVIDER)/node_modules/.package-lock.json

$(STAMP_NPM): $(OAUTH_PROVIDER)/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix $(OAUTH_PROVIDER) --no-audit --no-fund; \
	else \
		echo "npm not found: the OAuth tests will skip (Debian: apt-get install nodejs npm)"; \
	fi

test: lint typecheck $(STAMP_NPM)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The lowest versions pyproject.toml allows, in a venv of their own, running the
# SMTP tests and the private-name check: a `>=` bound is a version seen to work.
VENV_MIN := .venv-min
BIN_MIN := $(VENV_MIN)/bin
STAMP_MIN := $(VENV_MIN)/.installed-min
MIN_TESTS := tests/test_private_api.py tests/test_session.py tests/test_sandbox.py \
	tests/test_sandbox_attack.py tests/test_outbox.py tests/test_outbox_attack.py \
	tests/test_outbox_stored.py tests/test_probe.py tests/test_probe_attack.py \
	tests/test_cli_send.py tests/test_cli_send_attack.py tests/test_secrets_sweep.py \
	tests/test_secrets_echoed.py tests/test_outbox_settled.py tests/test_review_b_outbox.py \
	tests/test_review_b_sandbox.py tests/test_smtp_stepper.py tests/test_smtp_data.py
MIN_TESTS += tests/test_dkim_signing.py
MIN_TESTS += tests/test_inbox_authcheck.py
MIN_TESTS += tests/test_smime.py

$(STAMP_MIN): pyproject.toml .ci/lowest_constraints.py $(STAMP_TEST)
	rm -rf $(VENV_MIN)
	$(PYTHON) -m venv $(VENV_MIN)
	$(BIN_MIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python .ci/lowest_constraints.py test > $(VENV_MIN)/constraints.txt
	$(BIN_MIN)/python -m pip install --quiet -e '.[test]' -c $(VENV_MIN)/constraints.txt
	$(BIN_MIN)/python -m pip check
	touch $@

test-min: $(STAMP_MIN)
	$(BIN_MIN)/python -m pip list --format=freeze | grep -iE "$$(cut -d= -f1 $(VENV_MIN)/constraints.txt | paste -sd'|')"
	$(BIN_MIN)/python -m pytest -p no:cacheprovider -n $(PYTEST_WORKERS) $(MIN_TESTS) $(PYTEST_ARGS)

# Slow (about seven minutes): prints every benchmark and rewrites the figures
# in docs/performance.md between its bench markers. A smoke run that leaves the
# doc alone: .venv/bin/python benchmarks/run_all.py --quick
bench: $(STAMP_TEST)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(VENV_MIN) .pytest_cache .mypy_cache .ruff_cache *.egg-info
