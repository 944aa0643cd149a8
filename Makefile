# basketcast: two commands do all set-up on a fresh machine.
#   make demo   environment (if missing) → synthetic shop → Airflow DAG end to end → example SQL
#   make test   environment (if missing) → services the tests use → lint → the test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP_FILTER := grep -v -e 'is ignored: it is neither' || true

export BASKETCAST_HOME ?= $(CURDIR)/.basketcast
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export FEAST_USAGE := False
export AIRFLOW__USAGE_DATA_COLLECTION__ENABLED := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False

.PHONY: env demo test lint services pipeline airflow clean

env: $(VENV)/.installed

# torch is pinned to 2.13.0: the CPU wheel that lies on disk here. On a machine without it, set
# TORCH_INDEX=https://download.pytorch.org/whl/cpu so pip never pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing basketcast into $(VENV) (pinned by constraints.txt)"
	@$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt \
		$(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) --extra-index-url https://pypi.org/simple) \
		torch==2.13.0 2>&1 | $(PIP_FILTER)
	@$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' 2>&1 | $(PIP_FILTER)
	@$(BIN)/python -c "import torch, dbt.version, feast, airflow, xgboost"
	@touch $@

demo: env
	$(BIN)/basketcast demo --fresh

pipeline: env
	$(BIN)/basketcast run

# Airflow UI with the basketcast DAGs (SQLite metadata; set BASKETCAST_AIRFLOW_DB to a
# postgresql+psycopg2:// URL for Postgres metadata). Prints the URL and login.
airflow: env
	$(BIN)/python -m ml_jobs.airflow_local --standalone

services:
	@bash .ci/services.sh

lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: env services lint
	$(BIN)/pytest

clean:
	rm -rf .basketcast dbt_project/target dbt_project/logs .pytest_cache
