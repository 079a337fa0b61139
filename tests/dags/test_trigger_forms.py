"""The trigger forms: each DAG's params as the Airflow 3.3 API serves them to the UI, which
validates every field against its JSON schema and marks non-null-able fields required."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.api_fastapi.core_api.datamodels.dags import DAGDetailsResponse
from airflow.serialization.serialized_objects import DagSerialization
from jsonschema import Draft202012Validator, FormatChecker

from tests.conftest import form_requires

# Params whose description says empty is allowed (empty keeps all categories / picks the snapshot or the
# challenger / sets no budget / never expires cached outputs).
OPTIONAL = {
    "reviews_ingest": {"categories", "cache_expire_after"},
    "reviews_train": {"curated_uri", "categories", "cache_expire_after"},
    "reviews_rollout": {"challenger_version", "budget_requests", "budget_hours"},
}


def form_params(dag: Any) -> dict[str, dict[str, Any]]:
    """``GET /api/v2/dags/{dag_id}/details`` ``params``: the serialized DAG's params, dumped."""
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    return DAGDetailsResponse.get_params(serialized.params)


def schema_errors(value: Any, schema: dict[str, Any]) -> list[str]:
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    return [error.message for error in validator.iter_errors(value)]


@pytest.mark.parametrize("dag_id", sorted(OPTIONAL))
def test_defaults_validate_and_optional_fields_may_be_left_empty(dag_bag, dag_id: str) -> None:
    dag = dag_bag.dags[dag_id]
    params = form_params(dag)
    assert set(params) == set(dag.params)
    for name, spec in params.items():
        default = dag.params[name]
        assert spec["value"] == default, name  # the API serves None for a default its schema rejects
        assert schema_errors(default, spec["schema"]) == [], name
        if name in OPTIONAL[dag_id]:
            assert not form_requires(spec), f"{dag_id}.{name} is marked required on the form"
            assert schema_errors(None, spec["schema"]) == [], name
        else:
            assert form_requires(spec) or "enum" in spec["schema"], name

    # Submitting the form with every optional field emptied: the run's conf the API validates.
    emptied = DagSerialization.from_dict(DagSerialization.to_dict(dag)).params.deep_merge(
        {name: None for name in OPTIONAL[dag_id]}
    )
    assert {name: emptied[name] for name in OPTIONAL[dag_id]} == dict.fromkeys(OPTIONAL[dag_id])
    emptied.validate()


def test_emptied_fields_render_as_empty_not_as_none(dag_bag) -> None:
    """An emptied field arrives as null; the tasks must see "choose automatically", not the string 'None'."""
    train = dag_bag.dags["reviews_train"]
    params = {"curated_uri": None, "categories": None, "balance": "downsample", "max_seq_length": 64, "seed": 42}
    resolve = train.get_task("resolve_snapshot")
    features = train.get_task("build_features")
    assert resolve.render_template(resolve.curated_uri, {"params": params}) == ""
    assert features.render_template(features.categories, {"params": params}) == "None"  # parse_categories: all

    ingest = dag_bag.dags["reviews_ingest"].get_task("ingest")
    rendered = ingest.render_template(ingest.categories, {"params": {"categories": None}}, jinja_env=ingest.get_template_env())
    assert rendered is None  # native rendering: the operator keeps every category
