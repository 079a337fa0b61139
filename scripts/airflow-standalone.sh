#!/usr/bin/env bash
# Run `airflow standalone` with the project's DAGs in its own process group, so Ctrl-C
# stops the scheduler, triggerer, api-server and dag-processor it starts, not only the parent.
set -euo pipefail
mkdir -p "$AIRFLOW_HOME"
cat <<MSG
Starting Airflow on http://localhost:8080 (AIRFLOW_HOME=$AIRFLOW_HOME).
Log in as 'admin'; the password is printed below by Airflow and kept in
$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated. Ctrl-C stops everything.
MSG
setsid airflow standalone &
group=$!
trap 'kill -TERM -- -$group 2>/dev/null; wait $group 2>/dev/null; exit 0' INT TERM
wait $group
