# The two commands of the README: `make demo` and `make test` (CI runs .ci/run, which runs `make test`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.steward-installed

.PHONY: setup demo test lint parse-check clean-state

setup: $(STAMP)

# Rebuilt whenever the pins change; requirements.txt is a full freeze of the tested tree.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25" wheel
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)

## Generate the demo data and run both demo engagements over 16 simulated nights (embedded mode).
demo: setup
	$(BIN)/steward demo --nights 16

## The whole test suite, end-to-end runs included.
test: setup
	$(BIN)/ruff check include dags plugins tests
	$(BIN)/python -m pytest -q -p no:cacheprovider

parse-check: setup
	$(BIN)/python ../shared/tools/parse_check.py dags 2

## Wipe the embedded state (.steward/): landed batches, reports, audit records, MLflow and Airflow DBs.
clean-state:
	rm -rf .steward
