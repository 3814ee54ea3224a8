# mmsportal — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
INSTALLED := $(VENV)/.installed
# Without RingCentral credentials, run (and test) against the built-in emulator.
export DEMO_MODE ?= auto

.PHONY: run test e2e lint format bench chaos chaos-ci load fuzz clean lock

$(INSTALLED): requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	@touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runportal --port $(PORT)

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

e2e: $(INSTALLED)
	$(BIN)/python -m pytest -m e2e tests/e2e $(PYTEST_ARGS)

# Style, then the architecture's contracts (pyproject.toml [tool.importlinter], docs/architecture.md).
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(INSTALLED)
	BENCH=1 $(BIN)/python -m pytest tests/bench -p no:cacheprovider -q $(PYTEST_ARGS)

# Faults, killed workers, Redis and PostgreSQL restarts against real workers and beat; needs
# PostgreSQL and Redis on 127.0.0.1 (tests/chaos/chaos.py). The full run writes docs/reliability.md.
chaos: $(INSTALLED)
	$(BIN)/python -m tests.chaos.chaos --messages 1000 --seconds 360 --settle 300 --report docs/reliability.md

chaos-ci: $(INSTALLED)
	CHAOS=1 $(BIN)/python -m pytest tests/chaos -p no:cacheprovider -q -s $(PYTEST_ARGS)

# The property tests (compose, uploads, webhooks, OAuth callback, invitation links) with 5,000
# examples each instead of the suite's 100, and the REST API against its schema (schemathesis)
# with 500 generated requests per operation instead of the suite's 6.
fuzz: $(INSTALLED)
	HYPOTHESIS_PROFILE=full $(BIN)/python -m pytest tests/test_fuzz_inputs.py tests/test_compose_fuzz.py -p no:cacheprovider -q $(PYTEST_ARGS)
	API_FUZZ_EXAMPLES=500 $(BIN)/python -m pytest tests/test_api_schema.py -p no:cacheprovider -q $(PYTEST_ARGS)

# 50 users for 60 s against gunicorn, workers and the emulator (tests/load); writes docs/reliability.md.
load: $(INSTALLED)
	$(BIN)/python -m tests.load.run --users 50 --run-time 60s --report docs/reliability.md

# Re-pin every dependency to its newest release within pyproject.toml's ranges (patch and minor
# releases, never a new major), with hashes; then run `make test`. Installs uv into the venv.
lock: $(INSTALLED)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --upgrade --generate-hashes --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
