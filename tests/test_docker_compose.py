"""docker-compose.yml can't be started here (no Docker engine): check it statically."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_defines_the_airflow3_stack_on_postgres() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"} <= set(services)
    commands = {name: service.get("command") for name, service in services.items()}
    assert commands["airflow-apiserver"] == ["api-server"] and commands["airflow-dag-processor"] == ["dag-processor"]
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        env = services[name]["environment"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert env["REVIEWFLOW_BACKEND"].startswith("${REVIEWFLOW_BACKEND")
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            assert not source.startswith("./") or (ROOT / source).is_dir(), volume


def test_image_installs_the_lock_file_and_a_jre() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert "requirements.lock" in dockerfile and "openjdk-17-jre-headless" in dockerfile
    assert "apache-airflow==3.3.2" in (ROOT / "requirements.lock").read_text()
