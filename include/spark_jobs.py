"""What a Spark job on SageMaker Processing or EMR Serverless needs, without Airflow: its code bundle, a name
stable across the retries of a task, and the pieces of a Processing request."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.config import REPO_ROOT

# The Spark of the SageMaker Spark processing container the jobs run on (and of the Deequ jar they need).
SPARK_CONTAINER_VERSION = "3.5"

def code_bundle(parts: tuple[str, ...], extra_modules: tuple[str, ...] = ()) -> bytes:
    """A byte-stable zip for ``--py-files``: ``include/__init__.py`` and ``include/errors.py``
    (every package's errors derive from it), the ``include.<part>`` packages (sources and data
    files) or modules named in ``parts``, and the pure-Python ``extra_modules`` (e.g. ``yaml``,
    ``pydeequ``) found in this environment, which the Spark container may lack."""
    files: list[tuple[str, Path]] = [
        (f"include/{name}", REPO_ROOT / "include" / name) for name in ("__init__.py", "errors.py")
    ]
    for part in parts:
        package_dir, module = REPO_ROOT / "include" / part, REPO_ROOT / "include" / f"{part}.py"
        if package_dir.is_dir():
            files += [(str(p.relative_to(REPO_ROOT)), p) for p in sorted(package_dir.rglob("*"))]
        elif module.is_file():
            files.append((str(module.relative_to(REPO_ROOT)), module))
        else:
            raise ModuleNotFoundError(f"cannot bundle include.{part}: no such package or module")
    for module in extra_modules:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"cannot bundle {module!r}: it is not an installed package")
        root = Path(next(iter(spec.submodule_search_locations)))
        files += [(str(Path(module) / p.relative_to(root)), p) for p in sorted(root.rglob("*.py"))]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in files:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".yaml", ".json"):
                archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), path.read_bytes())
    return buffer.getvalue()


@dataclass(frozen=True)
class StagedCode:
    """Where a job's code was uploaded (content-addressed, so re-staging is a no-op change)."""

    root: str
    entry_point: str
    py_files: str


def run_job_name(prefix: str, *parts: str) -> str:
    """A job name stable across retries of one task in one DAG run (≤ 60 characters)."""
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]
    return f"{prefix[:40]}-{digest}"


def processing_input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    """A ``ProcessingInputs`` entry: the ``s3://`` prefix ``uri`` downloaded to ``local_path`` in the container."""
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }
