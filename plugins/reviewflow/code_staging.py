"""Code staging: upload a Spark job's entry point and code bundle where SageMaker Processing or EMR
Serverless read them, under a content hash (staging the same code again changes nothing)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from include.spark_jobs import StagedCode
from include.uris import join_uri
from reviewflow.backends import storage_for


def stage_code(
    code_root: str, entry_point: Path, bundle: bytes, aws_conn_id: str | None, *, region_name: str | None = None
) -> StagedCode:
    """Upload ``entry_point`` and ``bundle`` under ``<code_root>/<content hash>/``."""
    digest = hashlib.sha256(bundle + entry_point.read_bytes()).hexdigest()[:16]
    root = join_uri(code_root, digest)
    storage = storage_for(root, aws_conn_id, region_name=region_name)
    staged = StagedCode(root, join_uri(root, entry_point.name), join_uri(root, "bundle.zip"))
    storage.write_bytes(staged.py_files, bundle)
    storage.write_bytes(staged.entry_point, entry_point.read_bytes())
    return staged
