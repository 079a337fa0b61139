"""Every custom operator declares its templated fields and says so, as the provider's operators do."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

from airflow.sdk import BaseOperator

import reviewflow.operators


def custom_operators() -> list[type[BaseOperator]]:
    """The operator classes defined under ``reviewflow.operators``."""
    found = []
    for module in pkgutil.iter_modules(reviewflow.operators.__path__, "reviewflow.operators."):
        for _, cls in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if issubclass(cls, BaseOperator) and cls.__module__ == module.name:
                found.append(cls)
    return found


def documented_params(cls: type) -> dict[str, str]:
    """``:param name: text`` of ``cls`` and of its reviewflow base classes."""
    params: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if base.__module__.startswith("reviewflow.") and base.__doc__:
            text = inspect.cleandoc(base.__doc__)
            params.update(re.findall(r"^:param (\w+):(.*?)(?=^:|^\S|\Z)", text, re.M | re.S))
    return params


def test_each_templated_field_of_a_custom_operator_is_documented_as_templated() -> None:
    operators = custom_operators()
    assert len(operators) > 20
    undocumented = []
    for cls in operators:
        providers = [base for base in cls.__mro__[1:] if not base.__module__.startswith("reviewflow.")]
        inherited = {field for base in providers for field in getattr(base, "template_fields", ())}
        params = documented_params(cls)
        for field in set(cls.template_fields) - inherited:
            if "(templated)" not in params.get(field, ""):
                undocumented.append(f"{cls.__name__}.{field}")
        rendered = set(getattr(cls, "template_fields_renderers", {}))
        for field in rendered - {f for base in providers for f in getattr(base, "template_fields_renderers", {})}:
            assert field in cls.template_fields, f"{cls.__name__} renders {field}, which is not templated"
    assert undocumented == []
