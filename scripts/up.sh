#!/usr/bin/env bash
# `make up`: Airflow (standalone: api-server, scheduler, dag-processor, triggerer) and the MLflow UI on the
# embedded stores under STEWARD_HOME, with this project's dags/ and plugins/. Ctrl-C stops both.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.venv/bin"
export STEWARD_HOME="${STEWARD_HOME:-$root/.steward}"
export PATH="$bin:$PATH"
export AIRFLOW_HOME="$STEWARD_HOME/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$root/dags" AIRFLOW__CORE__PLUGINS_FOLDER="$root/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# steward.settings.EMBEDDED_SCHEDULER: task libraries once per worker, shorter scheduler nap (ADR 0019, 0020)
export AIRFLOW__CORE__EXECUTOR=steward.airflow.executor.PreloadingLocalExecutor AIRFLOW__CORE__PARALLELISM=4 \
  AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.25
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
export STEWARD_MLFLOW_UI_URL="${STEWARD_MLFLOW_UI_URL:-http://localhost:5000}"
mkdir -p "$AIRFLOW_HOME" "$STEWARD_HOME/mlflow" "$STEWARD_HOME/logs"

airflow standalone > "$STEWARD_HOME/logs/airflow-standalone.log" 2>&1 &
airflow_pid=$!
# without the GenAI job runner, as in docker-compose.yaml (ADR 0018)
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow ui --backend-store-uri "sqlite:///$STEWARD_HOME/mlflow/mlflow.db" --host 127.0.0.1 --port 5000 \
  > "$STEWARD_HOME/logs/mlflow-ui.log" 2>&1 &
mlflow_pid=$!
trap 'kill $airflow_pid $mlflow_pid 2>/dev/null; wait' INT TERM EXIT

echo "starting... (logs in $STEWARD_HOME/logs/)"
for _ in $(seq 1 180); do
  curl -fs http://localhost:8080/api/v2/version >/dev/null 2>&1 && break
  sleep 1
done
password_file="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
echo
echo "  Airflow UI   http://localhost:8080   login: admin / $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['admin'])" "$password_file" 2>/dev/null || echo "see $password_file")"
echo "  Engagements  http://localhost:8080/plugin/steward-engagements   (Browse > Engagements)"
echo "  MLflow UI    http://localhost:5000"
echo
echo "Ctrl-C stops both."
wait
