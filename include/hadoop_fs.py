"""File operations through Spark's Hadoop FileSystem, so Spark jobs need no boto3 on EMR.

Works for every scheme the session can read: plain paths, ``file://``, ``s3://`` (EMRFS) and
``s3a://``. Shared by the feature and quality jobs (each job's code bundle ships this module).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _path_and_fs(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    path = spark._jvm.org.apache.hadoop.fs.Path(uri)  # py4j gateway: the public way in
    return path, path.getFileSystem(spark._jsc.hadoopConfiguration())


def exists(spark: SparkSession, uri: str) -> bool:
    path, fs = _path_and_fs(spark, uri)
    return bool(fs.exists(path))


def delete(spark: SparkSession, uri: str) -> None:
    """Delete ``uri`` recursively (no error if it does not exist)."""
    path, fs = _path_and_fs(spark, uri)
    fs.delete(path, True)


def rename(spark: SparkSession, source: str, target: str) -> None:
    """Move ``source`` to ``target`` (atomic on a local or HDFS filesystem, copy-then-delete on S3)."""
    source_path, fs = _path_and_fs(spark, source)
    target_path = spark._jvm.org.apache.hadoop.fs.Path(target)
    fs.mkdirs(target_path.getParent())
    if not fs.rename(source_path, target_path):
        raise OSError(f"could not rename {source} to {target}")


def read_bytes(spark: SparkSession, uri: str) -> bytes:
    """The whole content of the file ``uri``."""
    path, fs = _path_and_fs(spark, uri)
    stream = fs.open(path)
    try:
        return bytes(spark._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def write_bytes(spark: SparkSession, uri: str, data: bytes) -> None:
    """Create or replace the file ``uri`` whole: a local file via a temporary name and a rename, an object by one PUT."""
    path, fs = _path_and_fs(spark, uri)
    if fs.getScheme() == "file":
        target = Path(path.toUri().getPath())
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        staging.write_bytes(data)
        os.replace(staging, target)
        return
    fs.setWriteChecksum(False)  # no .crc sidecar beside small JSON files read by plain Python
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()


def write_json(spark: SparkSession, uri: str, payload: Any) -> None:
    """Write ``payload`` as indented, key-sorted JSON to ``uri`` (see :func:`write_bytes`)."""
    write_bytes(spark, uri, json.dumps(payload, indent=2, sort_keys=True).encode("utf-8"))


def list_names(spark: SparkSession, uri: str) -> list[str]:
    """Names of the entries directly inside the folder ``uri``."""
    path, fs = _path_and_fs(spark, uri)
    return sorted(status.getPath().getName() for status in fs.listStatus(path))


def commit_dir(spark: SparkSession, staging: str, final: str, marker: str = "manifest.json") -> None:
    """Replace the folder ``final`` by the fully written folder ``staging``, moving ``marker`` last.

    The previous ``final`` is moved aside first and deleted only after the swap, as in
    :func:`include.atomic.replace_directory`. On S3 a rename is a copy, so readers must treat a folder
    without ``marker`` as unfinished; moving the marker last makes that rule sufficient everywhere.
    """
    names = list_names(spark, staging)
    if marker not in names:
        raise FileNotFoundError(f"{staging}/{marker} is missing: refusing to commit an unfinished folder")
    parent, _, name = final.rstrip("/").rpartition("/")
    retired = f"{parent}/_retired-{name}-{uuid.uuid4().hex[:8]}"
    had_final = exists(spark, final)
    if had_final:
        rename(spark, final, retired)
    for entry in [n for n in names if n != marker] + [marker]:
        rename(spark, f"{staging}/{entry}", f"{final}/{entry}")
    delete(spark, staging)
    if had_final:
        delete(spark, retired)
