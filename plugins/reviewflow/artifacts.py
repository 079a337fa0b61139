"""Training artefacts brought to the worker: a model (folder or SageMaker ``model.tar.gz``) and a Parquet split."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from include.uris import is_s3, local_path, split_s3
from reviewflow.backends import storage_for
from reviewflow.hooks.storage import S3StorageHook


def fetch_split(uri: str, target: Path, aws_conn_id: str | None, *, region_name: str | None = None) -> Path:
    """The folder of a split's ``*.parquet`` files: ``uri`` itself if local, else a copy under ``target``.

    :raises FileNotFoundError: if no Parquet file is under ``uri``.
    """
    if not is_s3(uri):
        return local_path(uri)
    storage = S3StorageHook(aws_conn_id=aws_conn_id, region_name=region_name)
    bucket, prefix = split_s3(uri.rstrip("/") + "/")
    keys = [key for key in storage.list_keys(bucket_name=bucket, prefix=prefix) or [] if key.endswith(".parquet")]
    if not keys:
        raise FileNotFoundError(f"no *.parquet objects under {uri}")
    for key in keys:
        path = target / key[len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(storage.read_bytes(f"s3://{bucket}/{key}"))
    return target


def fetch_model(uri: str, target: Path, aws_conn_id: str | None, *, region_name: str | None = None) -> Path:
    """A model folder: ``uri`` itself if it is a local folder, else ``model.tar.gz`` extracted into ``target``.

    Only regular files with relative paths are extracted.
    """
    if not uri.endswith(".tar.gz"):
        return local_path(uri)
    data = storage_for(uri, aws_conn_id, region_name=region_name).read_bytes(uri)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(target, members=[m for m in tar.getmembers() if m.isfile()], filter="data")
    return target
