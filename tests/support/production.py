"""The production shape as processes on this machine: Airflow with Postgres metadata and the CeleryExecutor
(Redis), an MLflow tracking server on Postgres, steward's tables in Postgres. Used by
tests/services/test_production_shape.py and bench/scheduler_parallel.py (`--executor celery`).

Every process (api-server, scheduler, dag-processor, celery worker, mlflow server) is started here and stopped
on exit; the databases are created fresh and dropped.
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from steward.settings import PROJECT_ROOT
from tests.support import servers

PASSWORD = "steward-services-pass"
PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/"
# As docker-compose.yaml runs it (ADR 0020): the task libraries preloaded in the Celery worker before it forks
# its pool. The scheduler keeps Airflow's 1 s idle nap here: at many engagements a night a shorter nap costs
# more CPU than the latency it saves.
PRODUCTION_TUNING = {"AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "steward.airflow.celery_config.CELERY_CONFIG"}


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@contextlib.contextmanager
def stack(root: Path, home: Path, engagements_dir: Path, *, redis_db: int,
          extra_env: dict[str, str] | None = None) -> Iterator[dict]:
    """Start the stack on engagement files in `engagements_dir`, steward state under `home`; yields the API
    base URL, the environment, the processes by name and the database names."""
    import psycopg2
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=redis_db).flushdb()  # no queued tasks from an earlier run
    suffix = uuid.uuid4().hex[:8]
    dbs = {k: f"steward_it_{k}_{suffix}" for k in ("airflow", "mlflow", "steward")}
    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    for name in dbs.values():
        admin.cursor().execute(f'CREATE DATABASE "{name}"')
    airflow_home = root / "airflow"
    airflow_home.mkdir()
    (airflow_home / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
    api_port, mlflow_port = servers.free_port(), servers.free_port()
    env = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": PG + dbs["airflow"],
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + PG + dbs["airflow"],
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "STEWARD_HOME": str(home),
        "STEWARD_ENGAGEMENTS_DIR": str(engagements_dir),
        "STEWARD_DB_URL": PG + dbs["steward"],
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # as in docker-compose.yaml: no GenAI job workers
        **(extra_env or {}),
    }
    procs: dict[str, servers.subprocess.Popen] = {}
    try:
        migrate = servers.start([_bin("airflow"), "db", "migrate"], env, root / "migrate.log")
        assert migrate.wait(300) == 0, (root / "migrate.log").read_text()[-3000:]
        procs["mlflow"] = servers.start(
            [_bin("mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
             "--backend-store-uri", PG + dbs["mlflow"],
             "--artifacts-destination", str(home / "mlflow-artifacts"), "--serve-artifacts",
             "--workers", "1"],  # three runs' tracking calls: one worker, not MLflow's default four
            env, root / "mlflow.log")
        for name, cmd in (("api-server", ["api-server"]), ("scheduler", ["scheduler"]),
                          ("dag-processor", ["dag-processor"]), ("worker", ["celery", "worker"])):
            procs[name] = servers.start([_bin("airflow"), *cmd], env, root / f"{name}.log")
        servers.wait_http(f"http://127.0.0.1:{mlflow_port}/health", 180, procs["mlflow"], root / "mlflow.log")
        servers.wait_http(f"http://127.0.0.1:{api_port}/api/v2/version", 240, procs["api-server"],
                          root / "api-server.log")
        yield {"url": f"http://127.0.0.1:{api_port}", "env": env, "root": root, "home": home, "dbs": dbs,
               "procs": procs}
    finally:
        for proc in reversed(list(procs.values())):
            servers.stop(proc)
        for name in dbs.values():
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def token(base: str) -> str:
    """A JWT for the REST API, from the admin's password."""
    return servers.token(base, "admin", PASSWORD)
