#!/usr/bin/env bash
# Run `airflow standalone` with the project's DAGs, plus the MLflow UI of the local model
# registry, in one process group, so Ctrl-C stops the scheduler, triggerer, api-server,
# dag-processor and MLflow, not only the parents.
set -euo pipefail
mkdir -p "$AIRFLOW_HOME"
mlflow_ui=$(python -c 'from include.config import load_settings; from include.registry.mlflow_registry import ui_command
settings = load_settings()
print(" ".join(ui_command(settings.data_root)) if settings.backend == "local" else "")')
cat <<MSG
Starting Airflow on http://localhost:8080 (AIRFLOW_HOME=$AIRFLOW_HOME).
Log in as 'admin'; the password is printed below by Airflow and kept in
$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated. Ctrl-C stops everything.
MSG
if [ -n "$mlflow_ui" ]; then
    echo "Model registry (MLflow UI): http://127.0.0.1:5000 → Models → reviewflow-sentiment"
fi
setsid bash -c "${mlflow_ui:+$mlflow_ui > \"$AIRFLOW_HOME/mlflow-ui.log\" 2>&1 &} exec airflow standalone" &
group=$!
trap 'kill -TERM -- -$group 2>/dev/null; wait $group 2>/dev/null; exit 0' INT TERM
wait $group
