"""Where a run may read from: a location named by a trigger param must lie inside an allowed root.

The roots are the setting ``REVIEWFLOW_ALLOWED_ROOTS`` (``Settings.allowed_roots``). Whoever can
trigger a DAG can name any path or S3 URI in its params; without this check a run would copy a
file from anywhere the worker can read (another bucket, a home folder, through a symlink or ``..``)
into the data root, where the trigger's author can read it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from include.errors import BadInputError


class OutsideAllowedRootsError(BadInputError):
    """A location given in a param lies outside the allowed storage roots."""


def resolve_within(uri: str, roots: Sequence[str], param: str) -> str:
    """The location to read ``uri`` from, when it lies inside one of ``roots``.

    A local path is resolved first (symlinks followed, ``..`` removed, relative to the working
    directory) and the resolved path is returned: read that, not ``uri``, so the link cannot be
    swapped between check and read. An ``s3://`` URI must start with a root followed by ``/`` and
    have no ``.`` or ``..`` segments (S3 keeps them literally; HTTP layers may collapse them).

    :param param: the param that named ``uri``, for the message.
    :raises OutsideAllowedRootsError: naming ``uri``, what it resolves to, the roots and the setting.
    """
    if uri.startswith("s3://"):
        segments = uri.removeprefix("s3://").split("/")
        if any(segment in (".", "..") for segment in segments):
            raise OutsideAllowedRootsError(f"{uri}: '.' and '..' are not allowed in an S3 URI (param {param})")
        if any(root.startswith("s3://") and uri.startswith(root.rstrip("/") + "/") for root in roots):
            return uri
        resolved = uri
    else:
        path = Path(uri.removeprefix("file://")).resolve()
        for root in roots:
            if not root.startswith("s3://") and path.is_relative_to(Path(root).resolve()):
                return str(path)
        resolved = str(path)
    via = f" (it resolves to {resolved})" if resolved != uri.removeprefix("file://") else ""
    raise OutsideAllowedRootsError(
        f"{uri}{via}: outside the allowed storage roots {', '.join(roots)} (param {param}); "
        "put it under one of them, or add its folder to the setting REVIEWFLOW_ALLOWED_ROOTS"
    )
