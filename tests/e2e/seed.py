"""The one run the browser test does not trigger itself, written into its Airflow metadata DB.

Run as ``python -m tests.e2e.seed <out.json>`` with ``AIRFLOW_HOME``, ``REVIEWFLOW_DATA_ROOT`` and
``AIRFLOW__API__BASE_URL`` pointing at the test's private stack (conftest.py does). It writes a real
failed ``reviews_ingest`` run (``dag.test()`` on a source that does not exist): the failure notifier
pages into the alert log, whose run link the test follows to rerun the task.

It prints nothing but Airflow's logs; the run id goes to ``out.json`` as ``failed_ingest``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from include.config import load_settings

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


def main(out: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS_FOLDER)).dags["reviews_ingest"]
    missing = Path(load_settings().data_root) / "absent.tsv"
    Path(out).write_text(json.dumps({"failed_ingest": dag.test(run_conf={"source_uri": str(missing)}).run_id}))


if __name__ == "__main__":
    main(sys.argv[1])
