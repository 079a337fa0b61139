"""Every custom operator reports what it read and wrote to OpenLineage (issue 16): its own
``get_openlineage_facets_on_complete`` (``reviewflow.lineage.ReportsLineage``) or the provider operator's
it extends. The datasets each reports are checked where the operator is tested and in the DAG runs' events."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from airflow.sdk import BaseOperator

import reviewflow.operators


def custom_operators() -> list[type]:
    found = []
    for module_info in pkgutil.iter_modules(reviewflow.operators.__path__):
        module = importlib.import_module(f"reviewflow.operators.{module_info.name}")
        found += [
            cls for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BaseOperator) and cls.__module__ == module.__name__ and not cls.__name__.startswith("_")
        ]
    return found


def test_every_custom_operator_reports_lineage() -> None:
    operators = custom_operators()
    assert len(operators) > 20
    missing = [cls.__name__ for cls in operators if not hasattr(cls, "get_openlineage_facets_on_complete")]
    assert missing == []
