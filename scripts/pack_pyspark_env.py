"""Build, pack and upload the Python environment of the EMR Serverless feature job (``make pyspark-env``).

As the EMR Serverless docs describe for Python libraries: a virtualenv with the job's
dependencies (``include/features/requirements-emr.txt``; EMR brings pyspark) is packed with
venv-pack into ``pyspark_env.tar.gz`` and uploaded to ``<data root>/code/pyspark_env.tar.gz``,
where :class:`reviewflow.operators.features.BuildFeaturesOperator` passes it to the job as
``spark.archives=<uri>#environment`` with ``PYSPARK_PYTHON=./environment/bin/python``.

venv-pack does not ship the interpreter: ``bin/python`` in the archive links to
``<python prefix>/bin/python3.X`` on the cluster. So build with the Python version the EMR
release runs, on Linux of the application's architecture (e.g. inside ``amazonlinux:2023``), and
pass ``--python-prefix`` when that interpreter lives elsewhere on the cluster than here.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from include.config import REPO_ROOT, load_settings
from reviewflow.backends import storage_for
from reviewflow.operators.features import python_env_archive_uri
from reviewflow.settings import aws_conn_id

REQUIREMENTS = REPO_ROOT / "include" / "features" / "requirements-emr.txt"


def build_env(venv_dir: Path, python: str, requirements: Path | None) -> None:
    """Create a virtualenv at ``venv_dir`` with ``python`` and install ``requirements`` into it (pip only then),
    exactly those packages: the file lists every one the job needs."""
    without_pip = ["--without-pip"] if requirements is None else []
    subprocess.run([python, "-m", "venv", "--clear", *without_pip, str(venv_dir)], check=True)
    if requirements is not None:
        pip = [str(venv_dir / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
        subprocess.run([*pip, "--no-deps", "--requirement", str(requirements)], check=True)  # a closed, pinned set


def pack_env(venv_dir: Path, archive: Path, python_prefix: str | None = None) -> Path:
    """Pack ``venv_dir`` into ``archive`` (``.tar.gz``) with venv-pack; returns ``archive``."""
    import venv_pack

    archive.parent.mkdir(parents=True, exist_ok=True)
    venv_pack.pack(prefix=str(venv_dir), output=str(archive), python_prefix=python_prefix, force=True)
    return archive


def upload_env(archive: Path, data_root: str, aws_conn_id: str | None) -> str:
    """Put ``archive`` where the feature job looks for it; returns that URI (one PUT on S3, a rename locally)."""
    target = python_env_archive_uri(data_root)
    storage_for(target, aws_conn_id).upload(archive, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter the env is built with (default: this one)")
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS)
    parser.add_argument("--python-prefix", help="prefix of the interpreter on the cluster, if not the build one's")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / ".build" / "pyspark_env.tar.gz")
    parser.add_argument("--aws-conn-id", help="Airflow connection for an s3:// data root (default: the setting "
                        "reviewflow_aws_conn_id)")
    parser.add_argument("--no-upload", action="store_true", help="only build the archive")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pyspark-env-") as scratch:
        venv_dir = Path(scratch) / "venv"
        print(f"Building the feature job's environment with {args.python} from {args.requirements}…")
        build_env(venv_dir, args.python, args.requirements)
        archive = pack_env(venv_dir, args.output, args.python_prefix)
    print(f"Packed {archive} ({archive.stat().st_size / 1e6:.0f} MB)")
    if not args.no_upload:
        print(f"Uploaded to {upload_env(archive, load_settings().data_root, args.aws_conn_id or aws_conn_id())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
