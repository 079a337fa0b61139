"""The check suite: YAML in Deequ's vocabulary → typed, validated constraints.

A suite file looks like this (see ``reviews_suite.yaml`` for the full default)::

    dataset: reviews
    params: {min_rows: 1000}          # defaults; callers may override them
    columns: {review_id: string, star_rating: int, review_date: date}
    checks:
      - {check: hasSize, level: Error, min: $min_rows}
      - {check: isUnique, level: Error, column: review_id}
      - {check: hasCompleteness, level: Error, column: review_body, min: 0.99}
    anomalies:
      - {anomaly: RelativeRateOfChangeStrategy, metric: Size, maxRateDecrease: 0.5, level: Error}
    bias: {facet: product_category, label_column: star_rating, labels: {...}}

Every constraint asserts on one Deequ metric (``analyzer(instance)``) with inclusive
``min``/``max`` bounds. Anything invalid — unknown check or key, a column not declared in
``columns``, a column of the wrong type, a bad threshold — raises :class:`SuiteError`
naming the file and line, before any Spark work.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from include.errors import BadInputError

Level = Literal["Error", "Warning"]
LEVELS: tuple[str, ...] = ("Error", "Warning")
COLUMN_TYPES: tuple[str, ...] = ("string", "int", "double", "date")
NUMERIC_TYPES: tuple[str, ...] = ("int", "double")


class SuiteError(BadInputError):
    """The suite file is invalid; the message names the file and line."""


@dataclass(frozen=True)
class Metric:
    """One Deequ metric: analyzer name and instance exactly as Deequ reports them.

    :param analyzer: ``Size``, ``Completeness``, ``Uniqueness``, ``Compliance``,
        ``PatternMatch``, ``Minimum``, ``Maximum`` or ``ApproxCountDistinct``.
    :param instance: ``*`` for ``Size``, the column(s) joined by ``,``, or the
        compliance name.
    :param columns: columns the metric reads.
    :param predicate: SQL predicate (``Compliance`` only).
    :param pattern: regular expression (``PatternMatch`` only).
    """

    analyzer: str
    instance: str
    columns: tuple[str, ...] = ()
    predicate: str | None = None
    pattern: str | None = None

    @property
    def key(self) -> str:
        return f"{self.analyzer}({self.instance})"


@dataclass(frozen=True)
class Constraint:
    """One declared check: a metric, inclusive bounds on it, a level and its source line.

    ``bound_params`` names the suite parameters a bound came from (``min: $min_rows``), so a
    failure can say which parameter to change.
    """

    check: str
    level: Level
    line: int
    metric: Metric
    min_value: float | None
    max_value: float | None
    arguments: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    bound_params: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        shown = self.arguments.get("name") or ",".join(self.metric.columns) or "*"
        return f"{self.check}({shown})"

    @property
    def bounds(self) -> str:
        return bounds_text(self.min_value, self.max_value)

    @property
    def threshold(self) -> str:
        """The bounds, and the parameter(s) that set them: ``>= 1000 (param min_rows)``."""
        return self.bounds + (f" (param {', '.join(self.bound_params)})" if self.bound_params else "")

    def holds(self, value: float | None) -> bool:
        """Whether ``value`` meets the bounds (a missing value never does)."""
        return within(value, self.min_value, self.max_value)


@dataclass(frozen=True)
class AnomalyCheck:
    """A Deequ anomaly-detection strategy on one metric against the previous run.

    ``RelativeRateOfChangeStrategy`` bounds ``current / previous``;
    ``AbsoluteChangeStrategy`` bounds ``current - previous``.
    """

    strategy: str
    level: Level
    line: int
    metric: Metric
    max_rate_decrease: float | None
    max_rate_increase: float | None

    @property
    def name(self) -> str:
        return f"{self.strategy}({self.metric.key})"

    @property
    def threshold(self) -> str:
        change = "current/previous" if self.strategy == "RelativeRateOfChangeStrategy" else "current-previous"
        return f"{change} {bounds_text(self.max_rate_decrease, self.max_rate_increase)}"


@dataclass(frozen=True)
class BiasSpec:
    """Pre-training bias metrics of a derived label per facet (SageMaker Clarify definitions).

    :param facet: column whose values are the facets (e.g. ``product_category``).
    :param label_column: integer column the label is derived from.
    :param labels: label name → values of ``label_column`` mapping to it.
    :param max_abs_class_imbalance: bound on ``|CI|`` per facet.
    :param max_abs_dpl: bound on ``|DPL|`` per facet and label.
    """

    facet: str
    label_column: str
    labels: dict[str, tuple[int, ...]]
    max_abs_class_imbalance: float
    max_abs_dpl: float
    level: Level
    line: int


@dataclass(frozen=True)
class Suite:
    """A validated check suite."""

    dataset: str
    source: str
    columns: dict[str, str]
    constraints: tuple[Constraint, ...]
    anomalies: tuple[AnomalyCheck, ...]
    bias: BiasSpec | None

    def metrics(self) -> list[Metric]:
        """Every metric the constraints and anomaly checks need, each once, in suite order."""
        seen: dict[str, Metric] = {}
        for item in (*self.constraints, *self.anomalies):
            seen.setdefault(item.metric.key, item.metric)
        return list(seen.values())


def bounds_text(low: float | None, high: float | None) -> str:
    if low is not None and low == high:
        return f"== {low:g}"
    parts = ([f">= {low:g}"] if low is not None else []) + ([f"<= {high:g}"] if high is not None else [])
    return " and ".join(parts)


def within(value: float | None, low: float | None, high: float | None) -> bool:
    if value is None or math.isnan(value):
        return False
    return (low is None or value >= low) and (high is None or value <= high)


# --- YAML with line numbers -------------------------------------------------------------


class _Node(dict):
    """A YAML mapping that remembers its line and the line of each key."""

    line: int
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Node:
    mapping = _Node(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {str(key.value): key.start_mark.line + 1 for key, _ in node.value}
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Reader:
    """Reads one mapping of the suite, raising :class:`SuiteError` with file and line."""

    def __init__(self, source: str, node: Any, what: str, params: dict[str, Any], parent_line: int = 1) -> None:
        self.source = source
        self.params = params
        if not isinstance(node, _Node):
            raise SuiteError(f"{source}:{getattr(node, 'line', parent_line)}: {what} must be a mapping, got {node!r}")
        self.node = node
        self.what = what
        self.used: set[str] = set()
        self.from_params: dict[str, str] = {}  # key → the parameter its value came from

    def line(self, key: str | None = None) -> int:
        return self.node.key_lines.get(key, self.node.line) if key else self.node.line

    def fail(self, message: str, key: str | None = None) -> SuiteError:
        return SuiteError(f"{self.source}:{self.line(key)}: {self.what}: {message}")

    def get(self, key: str, default: Any = ..., kind: type | tuple[type, ...] | None = None) -> Any:
        self.used.add(key)
        if key not in self.node:
            if default is ...:
                raise self.fail(f"missing required key {key!r}")
            return default
        value = self.node[key]
        if isinstance(value, str) and value.startswith("$"):
            name = value[1:]
            if name not in self.params:
                raise self.fail(f"unknown parameter {value!r} (declared: {sorted(self.params)})", key)
            value = self.params[name]
            self.from_params[key] = name
        if kind is not None and (not isinstance(value, kind) or isinstance(value, bool) and bool not in _tuple(kind)):
            raise self.fail(f"{key!r} must be {_kind_name(kind)}, got {value!r}", key)
        return value

    def number(self, key: str, low: float | None = None, high: float | None = None) -> float | None:
        value = self.get(key, None, (int, float))
        if value is None:
            return None
        if math.isnan(value) or (low is not None and value < low) or (high is not None and value > high):
            span = f"[{low:g}, {high:g}]" if low is not None and high is not None else f">= {low:g}"
            raise self.fail(f"{key!r} must be a number in {span}, got {value!r}", key)
        return float(value)

    def finish(self, allowed_hint: str = "") -> None:
        unknown = [key for key in self.node if key not in self.used]
        if unknown:
            raise self.fail(f"unknown key {unknown[0]!r}{allowed_hint}", unknown[0])


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if set(_tuple(kind)) == {int, float}:
        return "a number"
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"}
    return " or ".join(names.get(k, k.__name__) for k in _tuple(kind))


# --- checks -----------------------------------------------------------------------------

# check name → (threshold kind, default bounds when neither min nor max is given).
# Threshold kind: "fraction" (0..1), "count" (>= 0), "value" (any number), None (fixed, == 1).
_CHECKS: dict[str, tuple[str | None, tuple[float, float] | None]] = {
    "hasSize": ("count", None),
    "isComplete": (None, (1.0, 1.0)),
    "hasCompleteness": ("fraction", None),
    "isUnique": (None, (1.0, 1.0)),
    "hasUniqueness": ("fraction", None),
    "isContainedIn": ("fraction", (1.0, 1.0)),
    "hasMin": ("value", None),
    "hasMax": ("value", None),
    "hasPattern": ("fraction", (1.0, 1.0)),
    "satisfies": ("fraction", (1.0, 1.0)),
    "hasApproxCountDistinct": ("count", None),
}
SUPPORTED_CHECKS: tuple[str, ...] = tuple(_CHECKS)


def _column(reader: _Reader, columns: dict[str, str], key: str = "column", types: tuple[str, ...] = ()) -> str:
    name = reader.get(key, kind=str)
    if name not in columns:
        raise reader.fail(f"column {name!r} is not declared in 'columns' (declared: {sorted(columns)})", key)
    if types and columns[name] not in types:
        raise reader.fail(f"column {name!r} is {columns[name]}, this check needs {' or '.join(types)}", key)
    return name


def _metric(check: str, reader: _Reader, columns: dict[str, str]) -> tuple[Metric, dict[str, Any]]:
    """The Deequ metric a check asserts on, named as Deequ names it."""
    if check == "hasSize":
        return Metric("Size", "*"), {}
    if check in ("isComplete", "hasCompleteness"):
        column = _column(reader, columns)
        return Metric("Completeness", column, (column,)), {}
    if check == "isUnique" or (check == "hasUniqueness" and "columns" not in reader.node):
        column = _column(reader, columns)
        return Metric("Uniqueness", column, (column,)), {}
    if check == "hasUniqueness":
        names = reader.get("columns", kind=list)
        if not names or not all(isinstance(name, str) for name in names):
            raise reader.fail("'columns' must be a non-empty list of column names", "columns")
        for name in names:
            if name not in columns:
                raise reader.fail(f"column {name!r} is not declared in 'columns'", "columns")
        return Metric("Uniqueness", ",".join(names), tuple(names)), {}
    if check == "isContainedIn":
        column = _column(reader, columns)
        values = reader.get("values", kind=list)
        if not values or not all(isinstance(value, str) for value in values):
            raise reader.fail("'values' must be a non-empty list of strings", "values")
        quoted = ",".join("'" + value.replace("'", "\\'") + "'" for value in values)
        instance = f"{column} contained in {','.join(values)}"
        return Metric("Compliance", instance, (column,), f"`{column}` IS NULL OR `{column}` IN ({quoted})"), {
            "values": values
        }
    if check in ("hasMin", "hasMax"):
        column = _column(reader, columns, types=NUMERIC_TYPES)
        return Metric("Minimum" if check == "hasMin" else "Maximum", column, (column,)), {}
    if check == "hasPattern":
        column = _column(reader, columns, types=("string",))
        pattern = reader.get("pattern", kind=str)
        try:
            re.compile(pattern)
        except re.error as error:
            raise reader.fail(f"'pattern' is not a valid regular expression: {error}", "pattern") from None
        return Metric("PatternMatch", column, (column,), pattern=pattern), {"pattern": pattern}
    if check == "satisfies":
        predicate = reader.get("predicate", kind=str)
        name = reader.get("name", kind=str)
        names = reader.get("columns", kind=list)
        for column in names:
            if column not in columns:
                raise reader.fail(f"column {column!r} is not declared in 'columns'", "columns")
        return Metric("Compliance", name, tuple(names), predicate), {"predicate": predicate, "name": name}
    if check == "hasApproxCountDistinct":
        column = _column(reader, columns)
        return Metric("ApproxCountDistinct", column, (column,)), {}
    raise AssertionError(check)


def _constraint(reader: _Reader, columns: dict[str, str]) -> Constraint:
    check = reader.get("check", kind=str)
    if check not in _CHECKS:
        raise reader.fail(f"unknown check {check!r}; supported: {', '.join(SUPPORTED_CHECKS)}", "check")
    level = _level(reader)
    metric, arguments = _metric(check, reader, columns)
    kind, default = _CHECKS[check]
    if kind is None:
        for key in ("min", "max"):
            if key in reader.node:
                raise reader.fail(f"{check} takes no threshold ('{key}'): it asserts == 1", key)
        low, high = default  # type: ignore[misc]
    else:
        span = {"fraction": (0.0, 1.0), "count": (0.0, None), "value": (None, None)}[kind]
        low, high = reader.number("min", *span), reader.number("max", *span)
        if low is None and high is None:
            if default is None:
                raise reader.fail(f"{check} needs a threshold: 'min' and/or 'max'")
            low, high = default
        if low is not None and high is not None and low > high:
            raise reader.fail(f"'min' ({low:g}) is greater than 'max' ({high:g})", "min")
    reader.finish()
    bound_params = tuple(reader.from_params[key] for key in ("min", "max") if key in reader.from_params)
    return Constraint(check, level, reader.line(), metric, low, high, arguments, bound_params)


def _level(reader: _Reader, default: Any = ...) -> Level:
    level = reader.get("level", default, str)
    if level not in LEVELS:
        raise reader.fail(f"'level' must be Error or Warning, got {level!r}", "level")
    return level


_ANOMALY_METRICS = ("Size", "Completeness", "Uniqueness", "Minimum", "Maximum", "ApproxCountDistinct")
_STRATEGIES = ("RelativeRateOfChangeStrategy", "AbsoluteChangeStrategy")


def _anomaly(reader: _Reader, columns: dict[str, str]) -> AnomalyCheck:
    strategy = reader.get("anomaly", kind=str)
    if strategy not in _STRATEGIES:
        raise reader.fail(f"unknown anomaly strategy {strategy!r}; supported: {', '.join(_STRATEGIES)}", "anomaly")
    level = _level(reader)
    analyzer = reader.get("metric", kind=str)
    if analyzer not in _ANOMALY_METRICS:
        raise reader.fail(f"unsupported metric {analyzer!r}; supported: {', '.join(_ANOMALY_METRICS)}", "metric")
    if analyzer == "Size":
        metric = Metric("Size", "*")
    else:
        column = _column(reader, columns, types=NUMERIC_TYPES if analyzer in ("Minimum", "Maximum") else ())
        metric = Metric(analyzer, column, (column,))
    low = reader.number("maxRateDecrease", 0.0 if strategy == "RelativeRateOfChangeStrategy" else None)
    high = reader.number("maxRateIncrease", 0.0 if strategy == "RelativeRateOfChangeStrategy" else None)
    if low is None and high is None:
        raise reader.fail("needs 'maxRateDecrease' and/or 'maxRateIncrease'")
    if low is not None and high is not None and low > high:
        raise reader.fail("'maxRateDecrease' is greater than 'maxRateIncrease'", "maxRateDecrease")
    reader.finish()
    return AnomalyCheck(strategy, level, reader.line(), metric, low, high)


def _bias(reader: _Reader, columns: dict[str, str]) -> BiasSpec:
    facet = _column(reader, columns, "facet")
    label_column = _column(reader, columns, "label_column", NUMERIC_TYPES)
    labels_node = reader.get("labels")
    labels_reader = _Reader(reader.source, labels_node, "bias labels", reader.params, reader.line("labels"))
    labels: dict[str, tuple[int, ...]] = {}
    owner: dict[int, str] = {}
    for name in labels_node:
        values = labels_reader.get(name, kind=list)
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise labels_reader.fail(f"label {name!r} must map to a non-empty list of integers", name)
        for value in values:
            if value in owner:
                raise labels_reader.fail(f"value {value} maps to both {owner[value]!r} and {name!r}", name)
            owner[value] = name
        labels[str(name)] = tuple(values)
    if len(labels) < 2:
        raise reader.fail("'labels' needs at least two labels", "labels")
    max_ci = reader.number("max_abs_class_imbalance", 0.0, 1.0)
    max_dpl = reader.number("max_abs_dpl", 0.0, 1.0)
    spec = BiasSpec(
        facet=facet,
        label_column=label_column,
        labels=labels,
        max_abs_class_imbalance=1.0 if max_ci is None else max_ci,
        max_abs_dpl=1.0 if max_dpl is None else max_dpl,
        level=_level(reader, "Warning"),
        line=reader.line(),
    )
    reader.finish()
    return spec


def parse_suite(text: str, source: str = "<suite>", params: dict[str, Any] | None = None) -> Suite:
    """Parse and validate a suite from YAML ``text``; ``params`` override the file's defaults."""
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise SuiteError(f"{where}: invalid YAML: {getattr(error, 'problem', error)}") from None
    top = _Reader(source, document, "suite", {})
    declared = top.get("params", {}, dict)
    unknown = set(params or {}) - set(declared)
    if unknown:
        raise top.fail(f"unknown parameter(s) {sorted(unknown)}; declared in 'params': {sorted(declared)}", "params")
    top.params = {**declared, **(params or {})}
    dataset = top.get("dataset", kind=str)
    columns_node = top.get("columns", kind=dict)
    columns_reader = _Reader(source, columns_node, "columns", top.params, top.line("columns"))
    columns: dict[str, str] = {}
    for name in columns_node:
        kind = columns_reader.get(name, kind=str)
        if kind not in COLUMN_TYPES:
            raise columns_reader.fail(f"type of {name!r} must be one of {COLUMN_TYPES}, got {kind!r}", name)
        columns[str(name)] = kind
    checks = top.get("checks", kind=list)
    if not checks:
        raise top.fail("'checks' must list at least one check", "checks")
    constraints = tuple(
        _constraint(_Reader(source, item, f"check #{index}", top.params, top.line("checks")), columns)
        for index, item in enumerate(checks, 1)
    )
    anomalies = tuple(
        _anomaly(_Reader(source, item, f"anomaly #{index}", top.params, top.line("anomalies")), columns)
        for index, item in enumerate(top.get("anomalies", [], list), 1)
    )
    bias_node = top.get("bias", None)
    bias = None
    if bias_node is not None:
        bias = _bias(_Reader(source, bias_node, "bias", top.params, top.line("bias")), columns)
    top.finish()
    return Suite(dataset, source, columns, constraints, anomalies, bias)


def load_suite(path: str | Path, params: dict[str, Any] | None = None) -> Suite:
    """Read and validate the suite file at ``path`` (see :func:`parse_suite`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SuiteError(f"{path}: cannot read the suite file: {error.strerror}") from None
    return parse_suite(text, str(path), params)
