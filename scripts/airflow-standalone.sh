#!/usr/bin/env bash
# Run `airflow standalone` with the project's DAGs, plus the MLflow UI of the local model
# registry, in a session of their own, so Ctrl-C stops the scheduler, triggerer, api-server,
# dag-processor, MLflow and the running tasks' workers (each in a process group of its own),
# not only the parents.
#
# Addresses come from include/config.py: the API server (the UI) binds REVIEWFLOW_AIRFLOW_HOST
# (default 127.0.0.1) on REVIEWFLOW_AIRFLOW_PORT (8080); MLflow binds 127.0.0.1 on
# REVIEWFLOW_MLFLOW_PORT (5000).
set -euo pipefail
mkdir -p "$AIRFLOW_HOME"
addresses="$(python - <<'PY'
import shlex

from include.config import load_settings
from include.registry.mlflow_registry import ui_command

settings = load_settings()
# A wildcard bind is reached locally on the loopback address.
reach = "127.0.0.1" if settings.airflow_host in ("0.0.0.0", "::") else settings.airflow_host
values = {
    "host": settings.airflow_host,
    "port": settings.airflow_port,
    "url": f"http://{reach}:{settings.airflow_port}",
    "mlflow_port": settings.mlflow_port,
    "mlflow_ui": " ".join(ui_command(settings.data_root, settings.mlflow_port)) if settings.backend == "local" else "",
}
for name, value in values.items():
    print(f"{name}={shlex.quote(str(value))}")
PY
)"  # an assignment, so a bad setting stops the script here (set -e)
eval "$addresses"
export AIRFLOW__API__HOST="$host" AIRFLOW__API__PORT="$port"
# Links in pages and the workers' execution API follow the port (set it yourself for a public name).
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-$url}"
cat <<MSG
Starting Airflow on $AIRFLOW__API__BASE_URL (bound to $host:$port; AIRFLOW_HOME=$AIRFLOW_HOME).
Log in as 'admin'; the password is printed below by Airflow and kept in
$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated. Ctrl-C stops everything.
MSG
if [ -n "$mlflow_ui" ]; then
    echo "Model registry (MLflow UI): http://127.0.0.1:$mlflow_port → Models → reviewflow-sentiment"
fi
# MLflow's job runner (GenAI jobs, 7 huey consumers of ~190 MB each) is of no use to the registry UI.
setsid bash -c "${mlflow_ui:+MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $mlflow_ui > \"$AIRFLOW_HOME/mlflow-ui.log\" 2>&1 &} exec airflow standalone" &
session=$!  # setsid made it the leader of a new session
trap 'pkill -TERM -s $session; wait $session 2>/dev/null; exit 0' INT TERM
status=0
wait $session || status=$?
pkill -TERM -s $session || true  # Airflow ended by itself: stop MLflow and any task worker too
exit $status
