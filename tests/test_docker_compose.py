"""docker-compose.yml can't be started here (no Docker engine): check it statically, as `docker
compose config` would, and against what the code reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker")
# Settings of `make airflow` only (its bind address and ports); the stack publishes its own.
MAKE_AIRFLOW_ONLY = {"REVIEWFLOW_AIRFLOW_HOST", "REVIEWFLOW_AIRFLOW_PORT", "REVIEWFLOW_MLFLOW_PORT"}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_the_airflow_3_stack_runs_celery_on_redis_and_postgres(services: dict[str, Any]) -> None:
    assert {"postgres", "redis", "airflow-init", *AIRFLOW, "minio", "minio-init", "mlflow"} <= set(services)
    assert services["airflow-init"]["command"] == ["db", "migrate"]
    assert services["airflow-worker"]["command"] == ["celery", "worker"]
    for name in AIRFLOW:
        service = services[name]
        env = service["environment"]
        assert service["build"] == "." and env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://:@redis:6379")
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:${POSTGRES_PASSWORD")
        assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name
        for dependency in ("postgres", "redis", "mlflow"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy", (name, dependency)
        for volume in service["volumes"]:
            source = volume.split(":")[0]
            assert not source.startswith("./") or (ROOT / source).is_dir(), volume


def test_every_long_running_service_has_a_health_check_and_a_pinned_image(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if service.get("restart") != "no":  # the one-shot init jobs end instead
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        image = service.get("image", "")
        assert re.fullmatch(r"[\w./-]+:[\w.-]*\d[\w.-]*", image) and not image.endswith(":latest"), (name, image)


def test_the_registry_is_the_mlflow_server_with_its_artefacts_in_minio(services: dict[str, Any]) -> None:
    mlflow = services["mlflow"]
    command = mlflow["entrypoint"] + mlflow["command"]
    assert command[:2] == ["mlflow", "server"] and "--serve-artifacts" in command
    assert command[command.index("--artifacts-destination") + 1].startswith("s3://mlflow/")
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert mlflow["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert "mb --ignore-existing store/mlflow" in services["minio-init"]["command"][0]
    for name in AIRFLOW:
        assert services[name]["environment"]["REVIEWFLOW_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_every_setting_the_code_reads_is_provided(services: dict[str, Any]) -> None:
    read = set(re.findall(r'"(REVIEWFLOW_[A-Z_]+)"', (ROOT / "include" / "config.py").read_text()))
    assert read, "include/config.py reads no REVIEWFLOW_* setting any more?"
    for name in AIRFLOW:
        assert read - MAKE_AIRFLOW_ONLY <= set(services[name]["environment"]), name


def test_every_variable_without_a_default_is_in_env_example() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    example = dict(
        line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if line and not line.startswith("#")
    )
    needed = set(re.findall(r"(?<!\$)\$\{(\w+)(?:[:?][^}]*)?\}", compose)) - set(re.findall(r"\$\{(\w+):-", compose))
    assert needed <= set(example), needed - set(example)
    assert all(example[name] for name in ("AIRFLOW_JWT_SECRET", "POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "REVIEWFLOW_ENDPOINT_TOKEN"))


def test_the_image_installs_the_lock_file_and_a_jre() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert "pip install --no-cache-dir -r /requirements.lock" in dockerfile and "openjdk-17-jre-headless" in dockerfile
    assert "apache-airflow==3.3.2" in (ROOT / "requirements.lock").read_text()
