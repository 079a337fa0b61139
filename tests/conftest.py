"""Shared fixtures: one local SparkSession and one served model registry per test session (each
takes seconds); AWS through one non-default connection, with call logs; reliability records (tests/reliability.py);
the check that the session leaves no process of its own running."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.reliability import RECORDS_ENV, ReliabilityRecord

# The AWS connection every test gives the operators it builds (the DAGs take the setting reviewflow_aws_conn_id):
# aws_connection() defines it, and no aws_default. Its access key signs every AWS call the code makes; the tests'
# own boto3 clients (setting up and checking moto's state) sign theirs with another.
AWS_CONN_ID = "reviewflow_test_aws"
CONNECTION_KEY = "AKIAREVIEWFLOWTESTCONN"
TEST_CLIENT_KEY = "AKIAREVIEWFLOWTESTCLIENT"
TESTS_DIR = Path(__file__).resolve().parent
SERVED_SEEDS = {"1": 1, "2": 2}  # served_registry: version → seed of its tiny model
SERVED_MAX_SEQ_LENGTH = 16  # short, so serving tests also exercise truncation

# py4j logs at INFO from __del__ while the interpreter shuts down, after pytest closed the
# log handlers ("--- Logging error ---"); its INFO lines carry nothing a test needs.
logging.getLogger("py4j").setLevel(logging.WARNING)


# Every process the session starts inherits this mark (tests pass os.environ on to what they start).
SESSION_MARK = "REVIEWFLOW_TEST_SESSION"
LEFTOVER_GRACE_SECONDS = 10


def pytest_sessionstart(session: pytest.Session) -> None:
    os.environ[SESSION_MARK] = f"{os.getpid()}-{time.time_ns()}"


def processes_left_running() -> dict[int, str]:
    """pid → command line of every live process carrying this session's mark, but pytest itself and the
    Spark gateway JVM pyspark starts as pytest's child (with the Python workers it forks), which ends with
    the interpreter."""
    mark = f"{SESSION_MARK}={os.environ[SESSION_MARK]}".encode()
    marked: dict[int, tuple[int, str]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if mark not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile, or not ours to read
        marked[int(proc.name)] = (parent, command)

    def under_spark_gateway(pid: int) -> bool:
        while pid in marked:
            parent, command = marked[pid]
            if parent == os.getpid() and "pyspark-shell" in command:
                return True
            pid = parent
        return False

    return {pid: command for pid, (_, command) in marked.items() if not under_spark_gateway(pid)}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session if a test left a process running (a server, a replay, a job); kill what is left."""
    deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
    while (left := processes_left_running()) and time.monotonic() < deadline:
        time.sleep(0.5)
    if not left:
        return
    for pid in left:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    listing = "\n".join(f"  {pid}: {command[:200]}" for pid, command in sorted(left.items()))
    print(f"\nThe tests left {len(left)} process(es) running (killed now):\n{listing}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def task_context(dag_id: str, task_id: str, run_id: str, try_number: int = 1, **extra: Any) -> dict[str, Any]:
    """The context a task's ``execute`` gets, as far as the operators read it: the DAG run, the task instance
    (as ``ti`` and ``task_instance``; XCom pushes go nowhere), the run id and the outlet events; ``extra``
    adds or replaces entries. Every operator test builds its contexts here."""
    from airflow.sdk.execution_time.context import OutletEventAccessors

    ti = SimpleNamespace(
        dag_id=dag_id, task_id=task_id, run_id=run_id, try_number=try_number, max_tries=2, map_index=-1,
        id="0195d0a0-0000-7000-8000-000000000000", xcom_push=lambda *args, **kwargs: None,
        log_url=f"http://localhost:8080/dags/{dag_id}/runs/{run_id}/tasks/{task_id}?try_number={try_number}",
    )
    return {
        "dag_run": SimpleNamespace(dag_id=dag_id, run_id=run_id, run_after=dt.datetime.now(dt.UTC)),
        "ti": ti, "task_instance": ti, "run_id": run_id, "outlet_events": OutletEventAccessors(), **extra,
    }


@pytest.fixture(scope="session", autouse=True)
def lineage_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The OpenLineage file transport of every task run in this session (as make run configures it):
    set before Airflow loads the provider's plugin, which registers its listener only when a transport
    is configured then. The events of all tests land in this one file; a test picks its runs' events."""
    path = tmp_path_factory.mktemp("lineage") / "events.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps({"type": "file", "log_file_path": str(path), "append": True}))
        patch.setenv("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "True")
        patch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "reviewflow")
        yield path


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from include.spark import local_spark_session

    session = local_spark_session("reviewflow-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def served_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose MLflow registry has versions 1 and 2 (tiny random classifiers); 1 is champion."""
    from include.registry.base import CHAMPION
    from include.registry.mlflow_registry import MlflowModelRegistry
    from include.training.sample_features import write_tiny_classifier

    root = tmp_path_factory.mktemp("served-registry")
    registry = MlflowModelRegistry.for_data_root(root)
    for version, seed in SERVED_SEEDS.items():
        folder = write_tiny_classifier(root / "models" / f"run-{version}" / "model", seed, SERVED_MAX_SEQ_LENGTH)
        assert registry.register_version(f"run-{version}", str(folder), {"test_macro_f1": 0.5}, {}).version == version
    registry.set_alias(CHAMPION, "1")
    return root


class AwsCalls(list[tuple[str, dict[str, Any]]]):
    """Every botocore API call (operation name, parameters), in order; and for each, who created the client that
    made it and with which access key it was signed."""

    def __init__(self) -> None:
        super().__init__()
        self.signed: list[tuple[str, str, str | None]] = []  # (operation, "code" | "test", access key)

    def not_through_the_connection(self) -> list[tuple[str, str | None]]:
        """The calls of clients the code under test created (not a test's own) without the connection's credentials."""
        return [(operation, key) for operation, origin, key in self.signed if origin == "code" and key != CONNECTION_KEY]


def _origin() -> str:
    """``test`` when the innermost frame of this repository on the stack is a test's, else ``code`` (plugins,
    include, dags, scripts, or the libraries they call)."""
    for frame in reversed(traceback.extract_stack()[:-2]):  # not this function's frame nor its caller's
        path = Path(frame.filename)
        if TESTS_DIR.parent in path.parents and ".venv" not in path.parts:
            return "test" if TESTS_DIR in path.parents else "code"
    return "code"


def record_aws_calls(monkeypatch: pytest.MonkeyPatch) -> AwsCalls:
    """Log every botocore API call made while ``monkeypatch`` is active: operation, parameters, the access key
    it was signed with, and whether a test or the code under test created the client."""
    import botocore.client
    import botocore.session

    calls = AwsCalls()
    create_client, make_api_call = botocore.session.Session.create_client, botocore.client.BaseClient._make_api_call

    def creating(session: Any, *args: Any, **kwargs: Any) -> Any:
        client = create_client(session, *args, **kwargs)
        client._created_by = _origin()
        return client

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        credentials = client._request_signer._credentials
        calls.append((operation, params))
        calls.signed.append((operation, getattr(client, "_created_by", "code"), getattr(credentials, "access_key", None)))
        return make_api_call(client, operation, params)

    monkeypatch.setattr(botocore.session.Session, "create_client", creating)
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return calls


@contextmanager
def aws_connection(monkeypatch: pytest.MonkeyPatch, region: str) -> Iterator[AwsCalls]:
    """moto, with the Airflow connection :data:`AWS_CONN_ID` (credentials and ``region``) as the code's only way to AWS.

    No ``aws_default`` is defined, and there are no credentials or region in the environment, in config files
    or from instance metadata: a hook built with any other connection (or none) fails with ``NoCredentialsError``.
    The setting ``reviewflow_aws_conn_id`` names the connection. The tests' own ``boto3.client(...)`` calls use
    boto3's default session, given other credentials. On leaving, every call the code under test made must have
    been signed with the connection's credentials.
    """
    import boto3
    from moto import mock_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AIRFLOW_CONN_AWS_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
        f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": json.dumps({
            "conn_type": "aws", "login": CONNECTION_KEY, "password": "connection-secret", "extra": {"region_name": region},
        }),
        "AIRFLOW_VAR_REVIEWFLOW_AWS_CONN_ID": AWS_CONN_ID,
    }.items():
        monkeypatch.setenv(name, value)
    calls = record_aws_calls(monkeypatch)
    with mock_aws(config={"core": {"mock_credentials": False}}):
        boto3.setup_default_session(aws_access_key_id=TEST_CLIENT_KEY, aws_secret_access_key="test", region_name=region)
        yield calls
    astray = calls.not_through_the_connection()
    assert not astray, f"AWS calls the code made without the connection {AWS_CONN_ID}: {astray}"


def render_setting(task: Any, field: str) -> Any:
    """Task ``field`` rendered as a running task renders it from the settings (``{{ var.value… }}``); the
    Variables come from ``AIRFLOW_VAR_*``."""
    from airflow.sdk.execution_time.context import VariableAccessor

    return task.render_template(getattr(task, field), {"var": {"value": VariableAccessor(deserialize_json=False)}})


def made(calls: AwsCalls, operation: str) -> list[dict[str, Any]]:
    """The parameters of each ``operation`` call in ``calls``."""
    return [params for name, params in calls if name == operation]


def form_requires(param: Mapping[str, Any]) -> bool:
    """Whether Airflow 3.3's trigger and approval forms mark a param (as the API serves it:
    ``{"value", "schema", ...}``) required, refusing to submit it empty.

    The same rule as the UI's FlexibleForm (``airflow/ui``, ``isRequired``): a schema ``type``
    that does not include ``"null"``. An emptied field is sent as null.
    """
    kind = param["schema"].get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


class StatsdListener:
    """A StatsD server on loopback: the datagrams Airflow's metrics backend sends to it."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.lines: list[str] = []

    def metrics(self, prefix: str = "airflow.reviewflow.") -> dict[str, list[str]]:
        """Every metric under ``prefix`` received so far: name → values with their type (``"28|c"``)."""
        import socket

        while True:
            try:
                self.lines += self.sock.recv(65536).decode().splitlines()
            except (BlockingIOError, socket.timeout):
                break
        received: dict[str, list[str]] = {}
        for line in self.lines:
            name, _, value = line.partition(":")
            if name.startswith(prefix):
                received.setdefault(name.removeprefix(prefix), []).append(value)
        return received


@pytest.fixture
def statsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatsdListener]:
    """Airflow's StatsD metrics backend, set up as the task runner does, sending to a UDP listener on 127.0.0.1."""
    import socket

    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics.stats_utils import get_stats_factory

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        for key, value in {"STATSD_ON": "True", "STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(sock.getsockname()[1]),
                           "STATSD_PREFIX": "airflow"}.items():
            monkeypatch.setenv(f"AIRFLOW__METRICS__{key}", value)
        stats.initialize(factory=get_stats_factory(), export_legacy_names=True)
        try:
            yield StatsdListener(sock)
        finally:
            stats.initialize(factory=NoStatsLogger, export_legacy_names=True)


CALL_PASSED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether a test's body passed, for the ``reliability`` fixture's teardown."""
    report = yield
    if report.when == "call":
        item.stash[CALL_PASSED] = report.passed
    return report


@pytest.fixture
def reliability(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReliabilityRecord]:
    """The test's :class:`ReliabilityRecord`, written after the test (with whether it held, and the
    folders of this machine hidden) when ``RELIABILITY_RECORDS`` names a folder (``make reliability``)."""
    record = ReliabilityRecord(test=request.node.nodeid)
    yield record
    folder = os.environ.get(RECORDS_ENV)
    if folder:
        record.shown_by(tmp_path, tmp_path_factory.getbasetemp()).write(
            Path(folder), held=request.node.stash.get(CALL_PASSED, False)
        )


def migrated_database(home: Path, env: dict[str, str]) -> None:
    """A migrated, empty metadata DB in ``home``: a copy of the one ``make install`` keeps unused (fast; the
    working DB holds other tests' runs), else ``airflow db migrate``."""
    installed = Path(os.environ.get("AIRFLOW_HOME", Path(__file__).resolve().parents[1] / ".airflow")) / "airflow-migrated.db"
    if installed.is_file():
        shutil.copy(installed, home / "airflow.db")
    else:
        subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)


def parquet_digest(folder: Path, without: tuple[str, ...] = ()) -> tuple[int, str]:
    """Rows and a SHA-256 of the sorted rows of every Parquet file under ``folder``, Hive partition columns
    included and the columns ``without`` left out: the data, not the file bytes (writers may put timestamps
    or another row order in those)."""
    import hashlib

    import duckdb

    columns = f"* EXCLUDE ({', '.join(without)})" if without else "*"
    relation = duckdb.sql(
        f"SELECT CAST(t AS VARCHAR) FROM (SELECT {columns} FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = true)) t"
    )
    rows = sorted(row for (row,) in relation.fetchall())
    return len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()


def files_under(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones included) by relative path → SHA-256 of its bytes."""
    import hashlib

    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*")) if path.is_file()
    }


def kill_when(process: Any, ready: Callable[[], bool], timeout: float = 300) -> int:
    """``kill -9`` the process group of ``process`` (started with ``start_new_session=True``) as soon as
    ``ready()`` holds, polled every 10 ms; its return code (``-9`` when it was killed, its own when it ended
    first). :raises AssertionError: (after killing it) when ``ready()`` did not hold within ``timeout`` s."""
    import signal
    import time

    deadline = time.monotonic() + timeout
    try:
        while not ready() and process.poll() is None:
            assert time.monotonic() < deadline, f"not ready after {timeout} s: {process.args}"
            time.sleep(0.01)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return process.wait(timeout=60)


def spark_submit_env(extra_conf: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a Spark job script gets from spark-submit here: the local session's settings
    (include/spark.py) plus ``extra_conf``, and this interpreter for the Python workers."""
    import sys

    from include.spark import LOCAL_CONF, LOCAL_MASTER

    conf = {**LOCAL_CONF, **(extra_conf or {})}
    submit = " ".join([f"--master {LOCAL_MASTER}", *(f"--conf {key}={value}" for key, value in conf.items()), "pyspark-shell"])
    return {**os.environ, "PYSPARK_SUBMIT_ARGS": submit, "PYSPARK_PYTHON": sys.executable}
