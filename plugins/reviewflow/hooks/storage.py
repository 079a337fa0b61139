"""Storage behind one interface: a local folder (``local``) or S3 (``aws``).

URIs are plain strings (:mod:`include.uris`): ``/abs/path``, ``file:///abs/path`` or ``s3://bucket/key``.
Every write is atomic: local files go to a temporary name and are renamed into place; S3
``PutObject``/``CopyObject`` are atomic per object. ``reviewflow.backends.storage_for`` picks the one of a URI.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from include.uris import local_path, split_s3


class JsonFiles:
    """JSON documents on a storage's ``read_bytes``/``write_bytes``."""

    def read_bytes(self, uri: str, length: int | None = None) -> bytes:
        raise NotImplementedError

    def write_bytes(self, uri: str, data: bytes) -> None:
        raise NotImplementedError

    def read_json(self, uri: str) -> dict[str, Any]:
        return json.loads(self.read_bytes(uri))

    def write_json(self, uri: str, payload: dict[str, Any]) -> None:
        self.write_bytes(uri, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())


class LocalStorage(JsonFiles):
    """Storage on the local filesystem."""

    def exists(self, uri: str) -> bool:
        return local_path(uri).exists()

    def is_folder(self, uri: str) -> bool:
        return local_path(uri).is_dir()

    def size(self, uri: str) -> int:
        return local_path(uri).stat().st_size

    def read_bytes(self, uri: str, length: int | None = None) -> bytes:
        with local_path(uri).open("rb") as handle:
            return handle.read() if length is None else handle.read(length)

    def read_tail(self, uri: str, length: int) -> bytes:
        """The last ``length`` bytes (the whole file when it is shorter)."""
        with local_path(uri).open("rb") as handle:
            handle.seek(max(0, local_path(uri).stat().st_size - length))
            return handle.read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)

    def copy(self, source_uri: str, target_uri: str) -> None:
        """Copy one file; the target appears complete or not at all."""
        target = local_path(target_uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        shutil.copyfile(local_path(source_uri), tmp)
        os.replace(tmp, target)

    def upload(self, path: Path, uri: str) -> None:
        """Store the local file ``path`` at ``uri``, complete or not at all."""
        self.copy(str(path), uri)

    def checksum(self, uri: str) -> str:
        """``sha256:<hex>`` of the file's bytes."""
        digest = hashlib.sha256()
        with local_path(uri).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return f"sha256:{digest.hexdigest()}"

    def list_files(self, prefix_uri: str) -> list[str]:
        """The files under the folder ``prefix_uri``, relative to it, sorted; hidden staging names left out."""
        root = local_path(prefix_uri)
        if not root.is_dir():
            return []
        names = (p.relative_to(root) for p in root.rglob("*") if p.is_file())
        return sorted(n.as_posix() for n in names if not any(part.startswith(".") for part in n.parts))

    def delete(self, uri: str) -> None:
        """Remove one file (nothing when it is absent)."""
        local_path(uri).unlink(missing_ok=True)


class S3StorageHook(JsonFiles, S3Hook):
    """Storage on S3: the provider's ``S3Hook`` with the storage interface.

    :param aws_conn_id: the Airflow connection of every call (``None``: boto3's default credentials).
    Other keyword arguments (``region_name``, ``verify``, ``config``) are ``S3Hook``'s.
    """

    def __init__(self, *, aws_conn_id: str | None, **kwargs: Any) -> None:
        super().__init__(aws_conn_id=aws_conn_id, **kwargs)

    def exists(self, uri: str) -> bool:
        bucket, key = split_s3(uri)
        return self.check_for_key(key, bucket_name=bucket)

    def is_folder(self, uri: str) -> bool:
        """Whether objects exist under ``uri/`` (a "folder", e.g. the part files Spark writes)."""
        bucket, key = split_s3(uri)
        return bool(self.list_keys(bucket_name=bucket, prefix=key.rstrip("/") + "/", max_items=1))

    def size(self, uri: str) -> int:
        bucket, key = split_s3(uri)
        return int(self.head_object(key, bucket_name=bucket)["ContentLength"])

    def read_bytes(self, uri: str, length: int | None = None) -> bytes:
        bucket, key = split_s3(uri)
        extra = {"Range": f"bytes=0-{length - 1}"} if length else {}
        response = self.get_conn().get_object(Bucket=bucket, Key=key, **extra)
        return response["Body"].read()

    def read_tail(self, uri: str, length: int) -> bytes:
        """The last ``length`` bytes (the whole object when it is shorter): one ranged GET."""
        bucket, key = split_s3(uri)
        return self.get_conn().get_object(Bucket=bucket, Key=key, Range=f"bytes=-{length}")["Body"].read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3(uri)
        self.load_bytes(data, key=key, bucket_name=bucket, replace=True)

    def copy(self, source_uri: str, target_uri: str) -> None:
        source_bucket, source_key = split_s3(source_uri)
        target_bucket, target_key = split_s3(target_uri)
        self.copy_object(source_key, target_key, source_bucket, target_bucket)

    def upload(self, path: Path, uri: str) -> None:
        """Store the local file ``path`` at ``uri`` (multipart for large files; the object appears when complete)."""
        bucket, key = split_s3(uri)
        self.load_file(str(path), key=key, bucket_name=bucket, replace=True)

    def checksum(self, uri: str) -> str:
        """``etag:<ETag>`` of the object, as S3 computed it on upload (no second read of the data)."""
        bucket, key = split_s3(uri)
        return "etag:" + self.head_object(key, bucket_name=bucket)["ETag"].strip('"')

    def list_files(self, prefix_uri: str) -> list[str]:
        """The objects under the "folder" ``prefix_uri``, relative to it, sorted."""
        bucket, key = split_s3(prefix_uri)
        prefix = key.rstrip("/") + "/"
        return sorted(k.removeprefix(prefix) for k in self.list_keys(bucket_name=bucket, prefix=prefix) or [])

    def delete(self, uri: str) -> None:
        """Remove one object (nothing when it is absent)."""
        bucket, key = split_s3(uri)
        self.delete_objects(bucket=bucket, keys=[key])


Storage = LocalStorage | S3StorageHook
