"""The trigger forms: each DAG's params as the Airflow 3.3 API serves them to the UI, which
validates every field against its JSON schema and marks non-null-able fields required."""

from __future__ import annotations

import re
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


def rendered(task: Any, value: Any, params: dict[str, Any]) -> Any:
    """``value`` rendered as the task's DAG renders it (natively: a param keeps its type)."""
    return task.render_template(value, {"params": params}, jinja_env=task.get_template_env())


def test_emptied_fields_reach_the_operators_as_none(dag_bag) -> None:
    """An emptied field arrives as null; the tasks must see None ("choose automatically", all categories,
    never expire), not the string 'None'. An empty category list keeps every category, too."""
    train = dag_bag.dags["reviews_train"]
    emptied = {"curated_uri": None, "categories": None, "cache_expire_after": None}
    for task_id, field in (
        ("resolve_snapshot", "curated_uri"), ("build_features", "categories"), ("build_features", "cache_expire_after"),
    ):
        task = train.get_task(task_id)
        assert rendered(task, getattr(task, field), emptied) is None, (task_id, field)
    features = train.get_task("build_features")
    assert rendered(features, features.categories, {"categories": []}) is None
    assert rendered(features, features.categories, {"categories": ["Books"]}) == ["Books"]

    ingest = dag_bag.dags["reviews_ingest"].get_task("ingest")
    assert rendered(ingest, ingest.categories, {"categories": None}) is None  # the operator keeps every category


@pytest.mark.parametrize("dag_id", sorted(OPTIONAL))
def test_params_reach_the_operators_with_their_types(dag_bag, dag_id: str) -> None:
    """Every DAG renders natively: a templated field (or a value in a templated dict) that is one param
    gets the param's value with its type (an int stays an int, a list a list), which operators use as is."""
    dag = dag_bag.dags[dag_id]
    assert dag.render_template_as_native_obj
    params = {name: dag.params[name] for name in dag.params}
    checked = set()
    for task in dag.tasks:
        for field in task.template_fields:
            value = getattr(task, field)
            for template in value.values() if isinstance(value, dict) else [value]:
                match = re.fullmatch(r"\{\{ params\.(\w+) \}\}", template) if isinstance(template, str) else None
                if match:
                    result = rendered(task, template, params)
                    assert result == params[match[1]] and type(result) is type(params[match[1]]), (task.task_id, field)
                    checked.add(match[1])
    assert checked >= {name for name, value in params.items() if isinstance(value, int | float | bool)}
