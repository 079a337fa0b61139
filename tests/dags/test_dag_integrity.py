"""Every DAG file imports cleanly without heavy libraries, and every DAG follows the house rules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from airflow.sdk import RetryAction

from include.runbook import render
from reviewflow.dag_defaults import FAIL_ON_BAD_INPUT
from tests.dags.conftest import DAGS_FOLDER

HEAVY_MODULES = ("torch", "pyspark", "transformers", "sagemaker")


def test_no_import_errors(dag_bag) -> None:
    assert dag_bag.import_errors == {}
    assert set(dag_bag.dags) == {"reviews_ingest", "reviews_train", "reviews_rollout"}


def test_every_dag_has_tags_owner_retries_and_paging(dag_bag) -> None:
    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, dag_id
        assert dag.on_failure_callback, dag_id
        for task in dag.tasks:
            assert task.owner == "reviewflow", (dag_id, task.task_id)
            assert task.retries >= 2, (dag_id, task.task_id)
            assert task.retry_policy is FAIL_ON_BAD_INPUT, (dag_id, task.task_id)
            assert task.on_failure_callback and task.on_retry_callback, (dag_id, task.task_id)


def test_every_task_has_backoff_and_a_timeout_and_every_dag_a_timeout(dag_bag) -> None:
    for dag_id, dag in dag_bag.dags.items():
        assert dag.dagrun_timeout, dag_id
        for task in dag.tasks:
            assert task.retry_exponential_backoff and task.max_retry_delay, (dag_id, task.task_id)
            assert task.execution_timeout, (dag_id, task.task_id)
            assert task.execution_timeout <= dag.dagrun_timeout, (dag_id, task.task_id)


def test_every_dag_and_task_has_its_runbook_and_docs_runbook_md_is_current(dag_bag) -> None:
    runbook = (DAGS_FOLDER.parent / "docs" / "runbook.md").read_text()
    assert runbook == render(), "docs/runbook.md is stale: python -m include.runbook > docs/runbook.md"
    for dag_id, dag in dag_bag.dags.items():
        assert "**Rerun safely.**" in dag.doc_md, dag_id
        assert f'<a id="{dag_id}-deadline"></a>' in runbook and f'<a id="{dag_id}-run-failed"></a>' in runbook
        for task in dag.tasks:
            assert "**When it fails, check.**" in task.doc_md and "**Rerun safely.**" in task.doc_md, (dag_id, task.task_id)
            assert f'<a id="{dag_id}-{task.task_id}"></a>' in runbook, (dag_id, task.task_id)


def test_input_verdicts_fail_at_once_and_transient_faults_keep_their_retries() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    from include.config import ConfigError
    from include.features.job import FeatureError
    from include.ingestion.counts import IngestCounts, RejectedShareError
    from include.ingestion.schema import SourceError
    from include.quality.deequ_engine import DeequUnavailableError
    from include.quality.job import QualityInputError
    from include.quality.suite import SuiteError

    verdicts = [
        SourceError("s3://b/reviews.tsv.gz: file not found"),
        RejectedShareError("no rows in the requested categories", IngestCounts(0)),
        QualityInputError("x"), SuiteError("x"), FeatureError("x"), ConfigError("x"), DeequUnavailableError("x"),
    ]
    for error in verdicts:
        assert FAIL_ON_BAD_INPUT.evaluate(error, 1, 3).action == RetryAction.FAIL, type(error).__name__
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "StartQueryExecution")
    for fault in (throttled, EndpointConnectionError(endpoint_url="https://athena"), ConnectionResetError(), OSError("disk")):
        assert FAIL_ON_BAD_INPUT.evaluate(fault, 1, 3).action == RetryAction.DEFAULT, type(fault).__name__


def test_dag_files_import_without_heavy_libraries() -> None:
    """Each DAG file, imported in a fresh interpreter after Airflow itself, loads no heavy library: the
    scheduler parses DAG files often, and heavy imports are what would make that slow."""
    for path in sorted(DAGS_FOLDER.glob("*.py")):
        probe = (
            "import json, sys, importlib.util; import airflow.sdk, airflow.providers.amazon;"
            f"spec = importlib.util.spec_from_file_location('dag_under_test', {str(path)!r});"
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module);"
            f"print(json.dumps({{'heavy': [m for m in {HEAVY_MODULES!r} if m in sys.modules]}}))"
        )
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["heavy"] == [], path.name


def test_include_never_imports_airflow() -> None:
    """include/ is plain Python (the plugins layer adapts it to Airflow): no module there imports Airflow."""
    importing = []
    for path in sorted((DAGS_FOLDER.parent / "include").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )
            importing += [f"{path.name}: {name}" for name in names if name.split(".")[0] == "airflow"]
    assert importing == []
