# One target per thing CI does. `make help` lists them.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: help install browser label-studio demo test unit scenarios integration lint typecheck bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv and install logdrift with its dev tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

browser: ## headless Chromium for the report's screenshot test (Debian's chromium package)
	@command -v chromium >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

label-studio: install ## Label Studio from PyPI in its own cached venv, for the labelling tests
	$(BIN)/python tools/label_studio.py install

demo: install ## make training data, build a baseline, send drifting traffic, show what is caught
	$(BIN)/logdrift demo

test: install lint typecheck browser container-check label-studio ## everything CI runs: lint, types, unit, scenario and integration tests (the last two side by side)
	BIN=$(BIN) bash tools/test-suites.sh

unit: install ## the fast unit tests (seconds)
	$(BIN)/pytest tests/unit

scenarios: install ## seeded drift scenarios scored for detection delay and false alarms
	$(BIN)/pytest tests/scenarios

integration: install browser container-check label-studio ## real fluent-logger client against the real runner
	$(BIN)/pytest tests/integration

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy (strict on detectors/ and connectors/)
	$(BIN)/mypy detectors connectors config streams

bench: install ## benchmarks: print numbers side by side (see BENCHMARKS.md)
	$(BIN)/python bench/engine.py

compose-plugin: ## build the docker compose plugin from its Go module (cached; no engine needed)
	bash tools/compose-plugin.sh

container-check: ## Dockerfile lint (BuildKit's checks, offline) and `docker compose config`
	bash tools/container-checks.sh

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
