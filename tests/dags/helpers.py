"""What the DAG tests share: a tiny training budget and readers of a run's task states and summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reviewflow.runs import run_key_of

# A few optimizer steps: enough to exercise every task, not to learn; the gate minimum is lifted accordingly.
TINY_TRAINING = {"epochs": 1, "max_train_samples": 96, "max_seq_length": 32, "min_macro_f1": 0.0}


def states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def run_summary(data_root: Path, dag_run: Any) -> dict[str, Any]:
    return json.loads((data_root / "reports" / run_key_of(dag_run.run_id) / "summary.json").read_text())
