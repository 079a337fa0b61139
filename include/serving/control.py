"""Run and drive the local endpoint from another process: start, stop, deploy variants, call its API.

* :func:`start_server` starts ``python -m include.serving.server`` detached in its own process group
  (it outlives the caller: ``make serve``, an Airflow task) unless one is already running, and waits for
  ``/ping``; :func:`stop_server` stops that process group.  Both hold ``control.lock``.
* :func:`deploy` makes the endpoint serve exactly the given variants and weights, starting it if needed;
  repeating it changes nothing (no new weights generation).
* :class:`EndpointClient` is a small synchronous client of the server's HTTP API.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.processes import is_running, start_detached, terminate_group
from include.serving.state import EndpointPaths, EndpointState, LocalVariant, load_state, save_state
from include.serving.variants import (
    INVOKED_VARIANT,
    TARGET_VARIANT,
    EndpointDescription,
    VariantSpec,
    WeightsError,
    updated_weights,
)

START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
SERVER_MODULE = "include.serving.server"


class EndpointError(RuntimeError):
    """A non-2xx answer of the endpoint: ``status``, and the ``field`` and ``message`` it named."""

    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(f"HTTP {status}: {field + ': ' if field else ''}{message}")
        self.status = status
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ServerInfo:
    """A running server, from ``server.json``."""

    pid: int
    url: str
    started_at: str


def read_server_info(paths: EndpointPaths) -> ServerInfo | None:
    if not paths.server.is_file():
        return None
    try:
        value = json.loads(paths.server.read_text())
        return ServerInfo(int(value["pid"]), str(value["url"]), str(value["started_at"]))
    except (ValueError, KeyError):
        return None  # half-written by a server that died while starting: treated as absent


def _is_server_process(pid: int, paths: EndpointPaths) -> bool:
    """Whether ``pid`` is alive and is this endpoint's server (not a reused pid)."""
    return is_running(pid, SERVER_MODULE, paths.endpoint_name, str(paths.data_root))


def _ping(url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/ping", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def running_server(paths: EndpointPaths) -> ServerInfo | None:
    """The endpoint's server if it is running and answers ``/ping``."""
    info = read_server_info(paths)
    if info is None or not _is_server_process(info.pid, paths) or not _ping(info.url):
        return None
    return info


@contextmanager
def _control_lock(paths: EndpointPaths) -> Iterator[None]:
    paths.root.mkdir(parents=True, exist_ok=True)
    with paths.lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _log_tail(path: Path, lines: int = 30) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_server(
    paths: EndpointPaths, port: int, server_args: Sequence[str] = (), timeout: float = START_TIMEOUT_S
) -> ServerInfo:
    """Start the endpoint's server detached, unless it runs; wait until it answers ``/ping``.

    It serves ``state.json`` on ``port`` (``REVIEWFLOW_ENDPOINT_PORT`` for the callers; 0 for any), or on a
    free one if that is taken (``server.json`` has the URL).
    :param server_args: extra ``include.serving.server`` arguments (batching, limits, threads).
    :raises FileNotFoundError: without ``state.json`` (deploy variants first).
    :raises RuntimeError: if the server exits while starting (with the end of its log).
    """
    with _control_lock(paths):
        found = running_server(paths)
        if found is not None:
            return found
        if not paths.state.is_file():
            raise FileNotFoundError(f"{paths.state} does not exist: deploy variants before starting the endpoint")
        paths.server.unlink(missing_ok=True)
        arguments = [
            "--data-root", str(paths.data_root), "--endpoint-name", paths.endpoint_name, "--port", str(port),
            "--port-fallback", *server_args,
        ]
        process = start_detached(SERVER_MODULE, arguments, paths.log,
                                 {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the endpoint server exited with code {process.returncode} while starting; "
                                   f"{paths.log} ends with:\n{_log_tail(paths.log)}")
            info = read_server_info(paths)
            if info is not None and info.pid == process.pid and _ping(info.url):
                return info
            time.sleep(0.2)
        terminate_group(process.pid, STOP_TIMEOUT_S)
        raise TimeoutError(f"the endpoint server did not answer /ping within {timeout:.0f} s; see {paths.log}")


def stop_server(paths: EndpointPaths, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the endpoint's server (its whole process group); ``False`` if none was running."""
    with _control_lock(paths):
        info = read_server_info(paths)
        if info is None:
            return False
        stopped = _is_server_process(info.pid, paths)
        if stopped:
            terminate_group(info.pid, timeout)
        paths.server.unlink(missing_ok=True)
        return stopped


# ---------------------------------------------------------------- HTTP client


class EndpointClient:
    """Synchronous client of the endpoint's HTTP API.

    :param url: the server's base URL (``server.json``).
    :param token: the admin bearer token (only the admin methods need it).
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        import httpx

        self.url = url
        self._token = token
        self._http = httpx.Client(base_url=url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EndpointClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, admin: bool = False, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if admin:
            headers["Authorization"] = f"Bearer {self._token}"
        response = self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"field": None, "message": response.text[:500]}
            raise EndpointError(response.status_code, error.get("field"), error.get("message", ""))
        return response

    def invoke(
        self, reviews: Mapping[str, Any] | Sequence[Mapping[str, Any]], target_variant: str | None = None
    ) -> tuple[str, list[dict[str, Any]]]:
        """Score one review (a mapping) or a batch (a sequence); return the invoked variant and the items."""
        payload = dict(reviews) if isinstance(reviews, Mapping) else {"instances": list(reviews)}
        headers = {TARGET_VARIANT: target_variant} if target_variant else {}
        response = self._call("POST", "/invocations", json=payload, headers=headers)
        return response.headers[INVOKED_VARIANT], response.json()["predictions"]

    def feedback(self, inference_id: str, reward: int) -> str:
        """Record a reward; ``recorded`` or ``duplicate``. :raises EndpointError: 404 unknown id, 409 conflict."""
        return self._call("POST", "/feedback", json={"inference_id": inference_id, "reward": reward}).json()["status"]

    def describe(self) -> EndpointDescription:
        return EndpointDescription.from_dict(self._call("GET", "/admin/endpoint", admin=True).json())

    def set_weights(self, weights: Mapping[str, float]) -> EndpointDescription:
        answer = self._call("POST", "/admin/weights", admin=True, json={"weights": dict(weights)})
        return EndpointDescription.from_dict(answer.json())

    def add_variant(self, spec: VariantSpec) -> EndpointDescription:
        body = {"model_version": spec.model_version, "weight": spec.weight, "int8": spec.int8}
        return EndpointDescription.from_dict(self._call("POST", "/admin/variants", admin=True, json=body).json())

    def remove_variant(self, name: str) -> EndpointDescription:
        return EndpointDescription.from_dict(self._call("DELETE", f"/admin/variants/{name}", admin=True).json())


# ---------------------------------------------------------------- deploying


def registry_model_uri(data_root: Path) -> Callable[[str, str], str]:
    """``resolve(model_name, version)`` → the version's model folder URI in the local MLflow registry.

    :raises KeyError: (from ``resolve``) when the registry or the version does not exist.
    """

    def resolve(model_name: str, version: str) -> str:
        from mlflow.exceptions import MlflowException

        from include.registry.mlflow_registry import MlflowModelRegistry

        registry = MlflowModelRegistry.for_data_root(data_root, model_name)
        if not registry.exists():
            raise KeyError(f"no model registry at {registry.root}")
        try:
            return registry.get_version(version).model_uri
        except MlflowException as error:
            raise KeyError(f"{model_name} has no version {version} ({error.message})") from None

    return resolve


def check_specs(specs: Sequence[VariantSpec]) -> None:
    """:raises WeightsError: for no variants, a variant named twice, or weights that are all zero."""
    names = [spec.name for spec in specs]
    if not specs or len(set(names)) != len(names):
        raise WeightsError(f"variants: need at least one and each variant once, got {names}")
    if not any(spec.weight for spec in specs):
        raise WeightsError(f"variants: at least one variant needs a weight above 0, got {[s.to_dict() for s in specs]}")


def deploy(
    paths: EndpointPaths, specs: Sequence[VariantSpec], token: str, model_name: str,
    port: int, server_args: Sequence[str] = (),
) -> EndpointDescription:
    """Make the endpoint serve exactly ``specs``, starting it if it is not running.

    A fresh endpoint starts with ``specs`` (generation 1).  A running or stopped one is started with its
    saved variants, then reconciled through the admin API: missing variants added at weight 0, every
    weight set in one change (only if any differs), variants not in ``specs`` removed.  So a retry after
    any step finishes the job, and a repeat changes nothing.
    :raises KeyError: for a version the registry does not have.
    """
    check_specs(specs)
    if load_state(paths) is None:
        resolve = registry_model_uri(paths.data_root)
        variants = tuple(
            LocalVariant(spec.name, spec.model_version, resolve(model_name, spec.model_version), spec.int8, spec.weight)
            for spec in specs
        )
        with _control_lock(paths):
            if load_state(paths) is None:
                save_state(paths, EndpointState(paths.endpoint_name, model_name, variants, weights_generation=1))
    info = start_server(paths, port, server_args)
    with EndpointClient(info.url, token) as client:
        current = client.describe()
        for spec in specs:
            if spec.name not in current.weights:
                client.add_variant(VariantSpec(spec.model_version, 0.0, spec.int8))
        desired = {spec.name: spec.weight for spec in specs}
        current = client.describe()
        leaving = {name: 0.0 for name in current.weights if name not in desired}
        target = updated_weights(current.weights, desired | leaving)
        if target != current.weights:
            current = client.set_weights(target)
        for name in [name for name in current.weights if name not in desired]:
            current = client.remove_variant(name)
        return current
