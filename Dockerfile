# Airflow 3.3.2 image with reviewflow's pinned dependencies and a JRE for Spark.
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
USER airflow

COPY requirements.lock /requirements.lock
# The lock's torch==2.13.0 must resolve to the CPU build: point PIP_EXTRA_INDEX_URL at a
# CPU wheel index when building, or the resolver fetches the CUDA build (several GB).
ARG PIP_EXTRA_INDEX_URL=""
RUN pip install --no-cache-dir -r /requirements.lock

ENV PYTHONPATH=/opt/airflow:/opt/airflow/plugins \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
