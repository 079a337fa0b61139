"""Storage locations as plain strings: ``/abs/path``, ``file:///abs/path`` or ``s3://bucket/key``."""

from __future__ import annotations

from pathlib import Path


def join_uri(root: str, *parts: str) -> str:
    """Join ``parts`` onto ``root`` with ``/`` (works for paths and URIs)."""
    return "/".join([root.rstrip("/"), *(part.strip("/") for part in parts)])


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def local_path(uri: str) -> Path:
    """The filesystem path of a local URI; raises for ``s3://``."""
    if is_s3(uri):
        raise ValueError(f"{uri} is not a local path")
    return Path(uri.removeprefix("file://"))


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def to_s3a(uri: str) -> str:
    """``s3://`` → ``s3a://``: the Hadoop S3 connector scheme of the SageMaker Spark container."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri
