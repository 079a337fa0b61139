"""The ``--conf`` JSON that ``make run`` / ``make ingest`` hand to one DAG (``airflow dags test``).

``CONF`` is one JSON object of DAG params for the whole chain, e.g. ``{"min_rows": 500, "epochs": 1}``
(``--override`` sets keys over it: ``make run`` trains its first champion so);
each DAG keeps the keys it has params for, and ``reviews_ingest`` also gets ``source_uri`` from
``SOURCE`` (default: the sample). A key that no DAG has is an error naming the known params, so a
typo never silently runs with the default; a value its param refuses (the trigger form's rules) is
an error naming the param, before Airflow starts::

    python scripts/dag_conf.py reviews_ingest --conf '{"min_rows": 500}' --source /data/reviews.tsv.gz
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import re
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk.definitions.param import ParamsDict

DAGS_FOLDER = Path(__file__).resolve().parent.parent / "dags"
CHAIN = ("reviews_ingest", "reviews_train", "reviews_rollout")


class ConfError(ValueError):
    """``CONF`` is not a JSON object of known DAG params."""


def dag_params(dag_id: str, dags_folder: Path = DAGS_FOLDER) -> ParamsDict:
    """The params of ``dag_id``, read from its DAG file (``dags/<dag_id>.py``)."""
    spec = importlib.util.spec_from_file_location(f"dag_conf_{dag_id}", dags_folder / f"{dag_id}.py")
    if spec is None or spec.loader is None:
        raise ConfError(f"no DAG file for {dag_id} in {dags_folder}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag.params


def check_values(params: ParamsDict, conf: Mapping[str, Any]) -> None:
    """Validate ``conf`` against ``params`` as Airflow does when the run is created, naming the param and the rule."""
    from airflow.sdk.exceptions import ParamValidationError

    merged = copy.deepcopy(params)
    try:
        merged.update(conf)
        merged.validate()
    except ParamValidationError as error:
        first = str(error).splitlines()[0]
        named = re.match(r"Invalid input for param (\w+):", first)
        description = params.get_param(named.group(1)).description if named and named.group(1) in params else None
        raise ConfError(f"{first}{f' ({description})' if description else ''}") from None


def parse_conf(text: str) -> dict[str, Any]:
    """``CONF`` as a dict (empty text: no params)."""
    if not text.strip():
        return {}
    try:
        conf = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfError(f"CONF is not JSON ({error}): {text}") from None
    if not isinstance(conf, dict):
        raise ConfError(f"CONF must be a JSON object of DAG params, e.g. '{{\"min_rows\": 500}}', got {text}")
    return conf


def conf_for(
    dag_id: str, conf: Mapping[str, Any], params: Mapping[str, Collection[str]], source_uri: str | None
) -> dict[str, Any]:
    """The keys of ``conf`` that ``dag_id`` has params for, plus ``source_uri`` for the ingest DAG.

    :param params: param names of every DAG of the chain, by DAG id.
    :raises ConfError: for a key no DAG of the chain has, or a ``source_uri`` key (that is ``SOURCE``).
    """
    if "source_uri" in conf:
        raise ConfError("give the source file with SOURCE=…, not as source_uri in CONF")
    known = set().union(*(set(names) for names in params.values()))
    unknown = sorted(set(conf) - known)
    if unknown:
        listed = "; ".join(f"{dag}: {', '.join(sorted(set(names) - {'source_uri'}))}" for dag, names in params.items())
        raise ConfError(f"CONF key(s) {unknown} are no param of {' or '.join(params)} ({listed})")
    kept = {key: value for key, value in conf.items() if key in params[dag_id]}
    if source_uri is not None and "source_uri" in params[dag_id]:
        kept["source_uri"] = source_uri
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dag_id", choices=CHAIN)
    parser.add_argument("--conf", default="", help="JSON object of DAG params (make's CONF)")
    parser.add_argument("--source", help="the ingest DAG's source_uri (make's SOURCE, default the sample)")
    parser.add_argument("--override", default="", help="JSON object of params set over CONF (make run's first model, FIRST_MODEL_CONF)")
    args = parser.parse_args(argv)
    try:
        conf = {**parse_conf(args.conf), **parse_conf(args.override)}
        params = {dag_id: dag_params(dag_id) for dag_id in CHAIN}
        kept = conf_for(args.dag_id, conf, params, args.source)
        check_values(params[args.dag_id], kept)
        print(json.dumps(kept))
    except ConfError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
