"""The local endpoint's files: its variants and weights, the running server's address, the admin token.

Everything lives in ``<data_root>/endpoint/<endpoint name>/``:

```
state.json      variants (name, model version, model folder, int8, weight) and weights_generation;
                replaced atomically on every change, so a restarted server serves the same variants
server.json     pid and URL of the running server (removed when it stops)
admin-token     generated bearer token of the admin API (mode 0600), unless REVIEWFLOW_ENDPOINT_TOKEN is set
feedback.db     served predictions and rewards (SQLite, WAL; see include.serving.feedback)
server.log      the server's log
control.lock    serialises starting and stopping
```
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from include.atomic import replace_file
from include.registry.base import DEFAULT_MODEL_NAME
from include.serving.variants import EndpointDescription, VariantStatus

DEFAULT_ENDPOINT_NAME = "reviewflow"
TOKEN_BYTES = 32


@dataclass(frozen=True)
class EndpointPaths:
    """The files of one local endpoint: ``<data_root>/endpoint/<endpoint_name>/``."""

    data_root: Path
    endpoint_name: str

    @classmethod
    def for_endpoint(cls, data_root: str | Path, endpoint_name: str = DEFAULT_ENDPOINT_NAME) -> EndpointPaths:
        """:raises ValueError: for an endpoint name that is not letters, digits, ``-`` and ``_``."""
        if not endpoint_name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"endpoint name {endpoint_name!r}: use letters, digits, '-' and '_'")
        return cls(Path(str(data_root).removeprefix("file://")).resolve(), endpoint_name)

    @property
    def root(self) -> Path:
        return self.data_root / "endpoint" / self.endpoint_name

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def server(self) -> Path:
        return self.root / "server.json"

    @property
    def token(self) -> Path:
        return self.root / "admin-token"

    @property
    def feedback(self) -> Path:
        return self.root / "feedback.db"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def lock(self) -> Path:
        return self.root / "control.lock"


@dataclass(frozen=True)
class LocalVariant:
    """A variant of the local endpoint: which registry version it serves from which model folder."""

    name: str
    model_version: str
    model_uri: str
    int8: bool
    weight: float


@dataclass(frozen=True)
class EndpointState:
    """What ``state.json`` holds."""

    endpoint_name: str
    model_name: str
    variants: tuple[LocalVariant, ...]
    weights_generation: int = 0

    def variant(self, name: str) -> LocalVariant | None:
        return next((variant for variant in self.variants if variant.name == name), None)

    @property
    def weights(self) -> dict[str, float]:
        return {variant.name: variant.weight for variant in self.variants}

    def with_weights(self, weights: dict[str, float]) -> EndpointState:
        """The next generation with ``weights`` (every variant named)."""
        variants = tuple(replace(variant, weight=weights[variant.name]) for variant in self.variants)
        return replace(self, variants=variants, weights_generation=self.weights_generation + 1)

    def with_variants(self, variants: tuple[LocalVariant, ...]) -> EndpointState:
        return replace(self, variants=variants, weights_generation=self.weights_generation + 1)

    def describe(self, status: str, address: str, invocations: dict[str, int] | None = None) -> EndpointDescription:
        return EndpointDescription(
            endpoint_name=self.endpoint_name,
            backend="local",
            status=status,
            address=address,
            weights_generation=self.weights_generation,
            variants=tuple(
                VariantStatus(v.name, v.model_version, v.int8, v.weight,
                              None if invocations is None else invocations.get(v.name, 0))
                for v in self.variants
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> EndpointState:
        return cls(
            endpoint_name=value["endpoint_name"],
            model_name=value.get("model_name", DEFAULT_MODEL_NAME),
            variants=tuple(LocalVariant(**variant) for variant in value["variants"]),
            weights_generation=int(value["weights_generation"]),
        )


def load_state(paths: EndpointPaths) -> EndpointState | None:
    """``state.json``, or ``None`` for an endpoint never deployed."""
    if not paths.state.is_file():
        return None
    return EndpointState.from_dict(json.loads(paths.state.read_text()))


def save_state(paths: EndpointPaths, state: EndpointState) -> None:
    replace_file(paths.state, json.dumps(state.to_dict(), indent=2).encode())


def admin_token(paths: EndpointPaths, configured: str | None) -> str:
    """The admin API's bearer token: ``configured`` (``REVIEWFLOW_ENDPOINT_TOKEN``), else the ``admin-token`` file.

    The file is created on first use with 32 random bytes (URL-safe), readable by its owner only.
    :raises PermissionError: if the file is readable or writable by group or others.
    """
    if configured:
        return configured
    paths.root.mkdir(parents=True, exist_ok=True)
    if not paths.token.exists():
        # Written aside, then hard-linked into place: a concurrent reader never sees a half-written file.
        draft = paths.root / f".admin-token.{secrets.token_hex(8)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(TOKEN_BYTES))
        try:
            os.link(draft, paths.token)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    mode = paths.token.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(
            f"{paths.token} is accessible by group or others (mode {oct(mode & 0o777)}): chmod 600 it"
        )
    token = paths.token.read_text().strip()
    if not token:
        raise PermissionError(f"{paths.token} is empty: delete it and a new token is generated")
    return token
