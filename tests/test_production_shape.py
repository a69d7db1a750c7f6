"""The production shape on real services: Airflow with Postgres metadata and the CeleryExecutor (Redis),
an MLflow tracking server on Postgres, steward's tables in Postgres. Two engagements (three runs) triggered at once
through the REST API (apache-airflow-client) must all finish correctly.

Processes (api-server, scheduler, dag-processor, celery worker, mlflow server) are started here and torn
down after; the databases are created fresh and dropped.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from steward import demo, ledger, registry, store
from steward.settings import PROJECT_ROOT, StewardPaths
from tests.support import servers

pytestmark = [pytest.mark.e2e, pytest.mark.services]
# Two clients' first nights and the first client's second night, triggered together: three runs on a worker of
# concurrency 4 overlap on the 2 cores (every task a fresh process importing the stack: about a core-minute a run).
ENGAGEMENTS = [f"client{i}_churn" for i in range(1, 3)]
NIGHT = "2026-03-01"
NEXT_NIGHT = "2026-03-02"  # a second run of the first engagement, triggered at once: it must wait for the first
PASSWORD = "steward-services-pass"
REDIS_DB = 7


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    psycopg2 = pytest.importorskip("psycopg2")
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()  # no queued tasks from an earlier run
    root = tmp_path_factory.mktemp("prod")
    suffix = uuid.uuid4().hex[:8]
    dbs = {k: f"steward_it_{k}_{suffix}" for k in ("airflow", "mlflow", "steward")}
    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    for name in dbs.values():
        admin.cursor().execute(f'CREATE DATABASE "{name}"')
    pg = "postgresql+psycopg2://postgres@127.0.0.1:5432/"

    # the engagements: copies of the churn demo, one client each, with their own data
    engagements_dir = root / "engagements"
    engagements_dir.mkdir()
    template = (PROJECT_ROOT / "include" / "engagements" / "churn_telco.yaml").read_text()
    home = root / "home"
    data_root = home / "data"
    demo.generate("churn_telco", root / "demo", nights=2)
    for i, eid in enumerate(ENGAGEMENTS, start=1):
        text = template.replace("id: churn_telco", f"id: {eid}").replace("churn_telco/", f"{eid}/")
        text = text.replace("client: Northwind Telecom", f"client: Client {i}")
        (engagements_dir / f"{eid}.yaml").write_text(text)
        shutil.copytree(root / "demo" / "churn_telco", data_root / eid)

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
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg + dbs["airflow"],
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+postgresql+psycopg2://postgres@127.0.0.1:5432/" + dbs["airflow"],
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
        "STEWARD_DB_URL": pg + dbs["steward"],
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # as in docker-compose.yaml: no GenAI job workers
    }
    procs = []
    try:
        migrate = servers.start([_bin("airflow"), "db", "migrate"], env, root / "migrate.log")
        assert migrate.wait(300) == 0, (root / "migrate.log").read_text()[-3000:]
        mlflow = servers.start([_bin("mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
                                "--backend-store-uri", pg + dbs["mlflow"],
                                "--artifacts-destination", str(home / "mlflow-artifacts"), "--serve-artifacts"],
                               env, root / "mlflow.log")
        procs.append(mlflow)
        for name, cmd in (("api-server", ["api-server"]), ("scheduler", ["scheduler"]),
                          ("dag-processor", ["dag-processor"]), ("worker", ["celery", "worker"])):
            procs.append(servers.start([_bin("airflow"), *cmd], env, root / f"{name}.log"))
        servers.wait_http(f"http://127.0.0.1:{mlflow_port}/health", 180, mlflow, root / "mlflow.log")
        servers.wait_http(f"http://127.0.0.1:{api_port}/api/v2/version", 240, procs[1], root / "api-server.log")
        yield {"url": f"http://127.0.0.1:{api_port}", "env": env, "root": root, "home": home, "dbs": dbs}
    finally:
        for proc in reversed(procs):
            servers.stop(proc)
        store._engine.cache_clear()
        for name in dbs.values():
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _token(base: str) -> str:
    req = urllib.request.Request(f"{base}/auth/token", method="POST",
                                 data=json.dumps({"username": "admin", "password": PASSWORD}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["access_token"]


def test_engagements_at_once_on_postgres_celery_and_mlflow_server(stack, monkeypatch):
    import airflow_client.client as client
    from airflow_client.client.api import dag_api, dag_run_api
    from airflow_client.client.models import DAGPatchBody, TriggerDAGRunPostBody

    config = client.Configuration(host=stack["url"], access_token=_token(stack["url"]))
    with client.ApiClient(config) as api:
        dags, runs = dag_api.DAGApi(api), dag_run_api.DagRunApi(api)
        deadline = time.monotonic() + 180
        while {d.dag_id for d in dags.get_dags(limit=100).dags} < set(ENGAGEMENTS):
            assert time.monotonic() < deadline, "DAGs not parsed in time:\n" + (stack["root"] / "dag-processor.log").read_text()[-3000:]
            time.sleep(3)
        for eid in ENGAGEMENTS:
            dags.patch_dag(eid, DAGPatchBody(is_paused=False))
        wanted = [(eid, NIGHT) for eid in ENGAGEMENTS] + [(ENGAGEMENTS[0], NEXT_NIGHT)]
        for eid, night in wanted:  # all at once
            runs.trigger_dag_run(eid, TriggerDAGRunPostBody(dag_run_id=f"it_{night}", logical_date=f"{night}T00:00:00Z"))
        states: dict[tuple[str, str], str] = {}
        deadline = time.monotonic() + 900
        while len(states) < len(wanted):
            for eid, night in wanted:
                state = str(runs.get_dag_run(eid, f"it_{night}").state.value)
                if state in {"success", "failed"}:
                    states[(eid, night)] = state
            assert len(states) == len(wanted) or time.monotonic() < deadline, f"runs not finished: {states}"
            time.sleep(5)
        assert set(states.values()) == {"success"}, states
        # with max_active_runs=1 the runs of one engagement never overlap: the first engagement has two
        # triggered together (and unpausing may add today's scheduled run to any of them)
        for eid in ENGAGEMENTS:
            spans = sorted((r.start_date, r.end_date) for r in runs.get_dag_runs(eid, limit=10).dag_runs
                           if r.start_date and r.end_date)
            assert len(spans) >= (2 if eid == ENGAGEMENTS[0] else 1), (eid, spans)
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), (eid, spans)

    for key in ("STEWARD_HOME", "STEWARD_DB_URL", "MLFLOW_TRACKING_URI", "STEWARD_ENGAGEMENTS_DIR"):
        monkeypatch.setenv(key, stack["env"][key])
    paths = StewardPaths.from_env()
    from steward.config import load_engagement

    c = registry.client(paths)
    store._engine.cache_clear()
    for eid in ENGAGEMENTS:
        eng = load_engagement(Path(stack["env"]["STEWARD_ENGAGEMENTS_DIR"]) / f"{eid}.yaml")
        champion = registry.get_alias(c, eng, registry.CHAMPION)
        assert champion is not None and champion.version == 1, eid  # exactly one bootstrap each, no race
        assert len(c.search_model_versions(f"name='{eng.registered_model_name}'")) == 1
        rows = {(r["logical_date"], r["outcome"]) for r in store.runs_of(paths, eid)}
        assert (NIGHT, "keep") in rows and not any(outcome == "failed" for _, outcome in rows), rows
        assert (eid != ENGAGEMENTS[0]) or NEXT_NIGHT in {day for day, _ in rows}, rows
        heads = store.heads_of(paths, eid)  # the second anchor (ADR 0017), here in Postgres
        assert heads and ledger.verify(paths, eid, anchors=heads).ok
    log_text = "".join(p.read_text() for p in stack["root"].glob("*.log"))
    assert "database is locked" not in log_text
