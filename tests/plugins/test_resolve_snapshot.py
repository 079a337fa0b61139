"""resolve_snapshot: which curated snapshot a reviews_train run trains on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult

from reviewflow.dag_defaults import CURATED_REVIEWS
from reviewflow.operators.ingest import ResolveCuratedSnapshotOperator
from tests.conftest import AWS_CONN_ID

PUBLISHED = dt.datetime(2026, 11, 26, 6, 0, tzinfo=dt.UTC)


def curated_event(snapshot: str, minutes_after: int) -> AssetEventDagRunReferenceResult:
    """An asset event as the task runner hands it to a triggered run's tasks."""
    return AssetEventDagRunReferenceResult(
        asset={"name": CURATED_REVIEWS.name, "uri": CURATED_REVIEWS.uri, "extra": {}},
        extra={"snapshot": snapshot, "curated_uri": f"/data/curated/reviews/snapshot={snapshot}"},
        source_task_id="publish",
        source_dag_id="reviews_ingest",
        source_run_id=snapshot,
        source_map_index=-1,
        source_aliases=[],
        timestamp=PUBLISHED + dt.timedelta(minutes=minutes_after),
    )


def resolve(events: list[Any], curated_uri: str = "") -> dict[str, str]:
    operator = ResolveCuratedSnapshotOperator(task_id="resolve_snapshot", curated_uri=curated_uri, aws_conn_id=AWS_CONN_ID)
    return operator.execute({"triggering_asset_events": {CURATED_REVIEWS: events}})


@pytest.fixture(autouse=True)
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWFLOW_BACKEND", "local")
    monkeypatch.setenv("REVIEWFLOW_DATA_ROOT", str(tmp_path))


@pytest.mark.parametrize("newest_first", [True, False])
def test_the_newest_of_two_queued_events_wins_whatever_their_order(newest_first: bool, capsys) -> None:
    older, newer = curated_event("older", minutes_after=0), curated_event("newer", minutes_after=90)
    events = [newer, older] if newest_first else [older, newer]
    chosen = resolve(events)
    assert chosen == {"curated_uri": "/data/curated/reviews/snapshot=newer", "snapshot": "newer"}
    assert (
        "2 curated-reviews event(s) queued; using the newest, published 2026-11-26T07:30:00+00:00; "
        "skipped: /data/curated/reviews/snapshot=older (published 2026-11-26T06:00:00+00:00)"
    ) in capsys.readouterr().out  # the task log


def test_a_snapshot_given_on_the_form_beats_the_events(tmp_path: Path) -> None:
    given = tmp_path / "curated" / "reviews" / "snapshot=picked"
    chosen = resolve([curated_event("queued", 0)], curated_uri=f"{given}/")
    assert chosen == {"curated_uri": str(given), "snapshot": "picked"}


@pytest.mark.parametrize("outside", ["/etc/reviews/snapshot=x", "{root}/../elsewhere/snapshot=x", "s3://other-bucket/snapshot=x"])
def test_a_snapshot_outside_the_allowed_roots_is_refused(tmp_path: Path, outside: str) -> None:
    from include.allowed_roots import OutsideAllowedRootsError

    with pytest.raises(OutsideAllowedRootsError, match=r"outside the allowed storage roots .* \(param curated_uri\)"):
        resolve([curated_event("queued", 0)], curated_uri=outside.format(root=tmp_path))
