"""make pyspark-env: the EMR Serverless Python environment is built, packed with venv-pack and
uploaded where the feature job's ``spark.archives`` points (a local data root, and S3 on moto)."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest

from include.spark_jobs import code_bundle
from scripts.pack_pyspark_env import REQUIREMENTS, build_env, pack_env, upload_env
from tests.conftest import AWS_CONN_ID, aws_connection

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
    uri = upload_env(archive, str(tmp_path / "data"), aws_conn_id=None)  # a local data root: no AWS call
    assert uri == str(tmp_path / "data" / "code" / "pyspark_env.tar.gz")
    assert Path(uri).read_bytes() == archive.read_bytes()


def test_upload_to_s3(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with aws_connection(monkeypatch, "us-east-1"):
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        uri = upload_env(archive, f"s3://{BUCKET}/reviewflow", AWS_CONN_ID)
        assert uri == f"s3://{BUCKET}/reviewflow/code/pyspark_env.tar.gz"
        body = s3.get_object(Bucket=BUCKET, Key="reviewflow/code/pyspark_env.tar.gz")["Body"].read()
    assert body == archive.read_bytes()


def requirements() -> dict[str, str]:
    lines = REQUIREMENTS.read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def test_the_requirements_are_the_locked_versions() -> None:
    lock = dict(line.split("==") for line in (REQUIREMENTS.parents[2] / "requirements.lock").read_text().split() if "==" in line)
    assert {name: lock[name] for name in requirements()} == requirements()


def test_the_feature_job_runs_on_exactly_the_packed_packages(tmp_path: Path) -> None:
    """The job's modules import and tokenize with only these packages (and its code bundle), as in the env."""
    site = tmp_path / "site-packages"
    site.mkdir()
    for name in requirements():
        dist = importlib.metadata.distribution(name)
        for top in {Path(str(f)).parts[0] for f in dist.files or []} - {"..", "__pycache__"}:
            if not top.endswith((".dist-info", ".data")) and not (site / top).exists():
                (site / top).symlink_to(Path(str(dist.locate_file(top))))
    (tmp_path / "bundle.zip").write_bytes(code_bundle(("features", "hadoop_fs")))
    probe = (
        "import sys; sys.path[:0] = ['bundle.zip', 'site-packages']; import include.features.job; "
        "from include.features.tokenizer import tokenize_arrays, tokenizer_info; "
        "print(tokenizer_info()['vocab_size'], tokenize_arrays(['not bad at all'], 8).input_ids.to_pylist())"
    )
    result = subprocess.run([sys.executable, "-S", "-c", probe], cwd=tmp_path, env={}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    vocab_size, ids = result.stdout.split(" ", 1)
    assert int(vocab_size) == 30522 and json.loads(ids)[0][0] == 101  # [CLS]
