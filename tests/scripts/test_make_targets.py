"""The Makefile's run/ingest/airflow/serve/stop targets, checked by running make.

``airflow`` is a stand-in first on PATH that records its command line (a real ``airflow dags
test`` of the chain is what tests/dags runs, in-process); ``make -n`` shows what would run.
``make serve`` and ``make stop`` run for real, on a copy of the served registry.
"""

from __future__ import annotations

import json
import shlex
import socket
from pathlib import Path

import pytest

from include.processes import is_running
from include.registry.base import CHALLENGER, CHAMPION
from include.registry.mlflow_registry import MlflowModelRegistry
from include.serving.control import SERVER_MODULE, EndpointClient, read_server_info, running_server, stop_server
from include.serving.state import EndpointPaths
from scripts.allow_source import roots_with_source
from tests.dags.conftest import dag_bag, data_root  # noqa: F401 (fixtures)
from tests.include.serving.conftest import data_root_with_registry
from tests.scripts.helpers import make

def airflow_calls(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "airflow.jsonl").read_text().splitlines()]


def test_make_airflow_builds_the_sample_the_ingest_dag_defaults_to(dag_bag, data_root: Path, tmp_path: Path) -> None:
    default_source = dag_bag.dags["reviews_ingest"].params["source_uri"]
    assert default_source == str(data_root / "samples" / "amazon_reviews_sample.tsv.gz")

    planned = make(tmp_path, "-n", "airflow")  # data_root is tmp_path / "data" for make as for the DAG

    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    sample = next(i for i, line in enumerate(lines) if line.startswith("python -m include.sample_data "))
    assert shlex.split(lines[sample])[3] == default_source
    assert sample < next(i for i, line in enumerate(lines) if "scripts/airflow-standalone.sh" in line)



def test_make_help_shows_how_to_pass_params(tmp_path: Path) -> None:
    shown = make(tmp_path, "help")
    assert shown.returncode == 0, shown.stderr
    targets = {line.split()[1]: line for line in shown.stdout.splitlines() if line.startswith("  make ")}
    assert "CONF='{…}'" in targets["run"] and "CONF='{…}'" in targets["ingest"]
    assert """CONF='{"min_rows": 500, "epochs": 1}' (run, ingest: DAG params as JSON""" in shown.stdout

def registry_with_aliases(served_registry: Path, data_root: Path, aliases: dict[str, str]) -> None:
    """A copy of the served registry (versions 1 and 2) under ``data_root`` with exactly ``aliases`` set: the
    registry a stand-in ``airflow`` run would leave (it trains and approves nothing)."""
    registry = MlflowModelRegistry.for_data_root(data_root_with_registry(served_registry, data_root))
    for alias in (CHAMPION, CHALLENGER):
        registry.remove_alias(alias)
    for alias, version in aliases.items():
        registry.set_alias(alias, version)


def test_make_run_trains_a_first_champion_then_the_challenger_and_rolls_it_out(tmp_path: Path, served_registry: Path) -> None:
    source = tmp_path / "reviews.tsv.gz"
    conf = json.dumps({"min_rows": 500, "max_rejected_share": 0.1, "seed": 3, "categories": ["Books"], "round_size": 50})
    registry_with_aliases(served_registry, tmp_path / "data", {CHALLENGER: "2"})  # no champion; an approved challenger

    result = make(tmp_path, "run", f"SOURCE={source}", f"CONF={conf}", fake_airflow=True)

    assert result.returncode == 0, result.stdout + result.stderr
    calls = airflow_calls(tmp_path)
    assert [call[:3] for call in calls] == [
        ["dags", "test", dag_id] for dag_id in ("reviews_ingest", "reviews_train", "reviews_train", "reviews_rollout")
    ]
    ingest, first, challenger, rollout = (json.loads(call[call.index("--conf") + 1]) for call in calls)
    assert ingest == {"min_rows": 500, "max_rejected_share": 0.1, "categories": ["Books"], "source_uri": str(source)}
    assert first == {"seed": 3, "categories": ["Books"], "epochs": 1, "learning_rate": 5e-5}  # FIRST_MODEL_CONF over CONF
    assert challenger == {"seed": 3, "categories": ["Books"]}
    assert rollout == {"seed": 3, "round_size": 50}


@pytest.mark.parametrize(("challenger", "dags"), [
    ("2", ["reviews_ingest", "reviews_train", "reviews_rollout"]),
    (None, ["reviews_ingest", "reviews_train"]),  # e.g. the challenger is the model of an earlier run, reused
])
def test_make_run_with_a_champion_trains_the_challenger_and_rolls_out_only_an_approved_one(
    tmp_path: Path, served_registry: Path, challenger: str | None, dags: list[str]
) -> None:
    registry_with_aliases(served_registry, tmp_path / "data", {CHAMPION: "1"} | ({CHALLENGER: challenger} if challenger else {}))

    result = make(tmp_path, "run", f"SOURCE={tmp_path / 'reviews.tsv'}", fake_airflow=True)

    assert result.returncode == 0, result.stdout + result.stderr
    assert [call[2] for call in airflow_calls(tmp_path)] == dags
    assert ("No approved challenger to roll out" in result.stdout) is (challenger is None)


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ('{"min_row": 500}', "CONF key(s) ['min_row'] are no param of reviews_ingest or reviews_train or reviews_rollout"),
        ('{"source_uri": "x.tsv"}', "give the source file with SOURCE=…"),
        ("min_rows=500", "CONF is not JSON"),
        ('{"categories": ["x\'; DROP TABLE t; --"]}', "Invalid input for param categories: "),
        ('{"max_rejected_share": 2}', "Invalid input for param max_rejected_share: "),
    ],
)
def test_make_ingest_refuses_a_conf_it_cannot_hand_over(tmp_path: Path, conf: str, message: str) -> None:
    result = make(tmp_path, "ingest", f"SOURCE={tmp_path / 'reviews.tsv'}", f"CONF={conf}", fake_airflow=True)
    assert result.returncode != 0 and message in result.stderr
    assert not (tmp_path / "airflow.jsonl").exists()  # Airflow never started


def test_make_ingest_allows_the_folder_of_the_source_it_is_given() -> None:
    """Whoever runs make chose SOURCE; its folder joins the allowed roots for that command only."""
    assert roots_with_source(("/data", "/repo/.data"), "/home/me/reviews.tsv.gz") == "/data,/repo/.data,/home/me"
    assert roots_with_source(("/data",), "s3://landing/reviews/x.tsv") == "/data,s3://landing/reviews"
    assert roots_with_source(("/data",), "file:///data/x.tsv") == "/data"


def test_make_serve_answers_from_the_champion_and_make_stop_stops_it(tmp_path: Path, served_registry: Path) -> None:
    paths = EndpointPaths.for_endpoint(data_root_with_registry(served_registry, tmp_path / "data"))  # v1 is champion
    with socket.socket() as probe:  # a free port, so the test never takes the default 8090
        probe.bind(("127.0.0.1", 0))
        port = f"REVIEWFLOW_ENDPOINT_PORT={probe.getsockname()[1]}"
    try:
        served = make(tmp_path, "serve", port)
        assert served.returncode == 0, served.stdout + served.stderr
        info = running_server(paths)
        assert info is not None and f"serving on {info.url}" in served.stdout
        assert str(paths.token) in served.stdout and paths.token.read_text().strip() not in served.stdout
        with EndpointClient(info.url) as client:
            variant, [item] = client.invoke({"review_headline": "Great", "review_body": "Works as described."})
        assert (variant, item["variant"], item["model_version"]) == ("v1", "v1", "1")
        assert item["label"] in item["probabilities"] and item["inference_id"]

        again = make(tmp_path, "serve", port)  # already running: the same server answers
        assert again.returncode == 0 and f"serving on {info.url} (pid {info.pid}" in again.stdout, again.stdout

        stopped = make(tmp_path, "stop")
        assert stopped.returncode == 0 and "stopped." in stopped.stdout, stopped.stdout + stopped.stderr
        assert read_server_info(paths) is None and not is_running(info.pid, SERVER_MODULE)
        assert "was not running" in make(tmp_path, "stop").stdout
    finally:
        stop_server(paths)
