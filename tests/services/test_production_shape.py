"""The production shape on real services: Airflow with Postgres metadata and the CeleryExecutor (Redis),
an MLflow tracking server on Postgres, steward's tables in Postgres. Two engagements (three runs) triggered at once
through the REST API (apache-airflow-client) must all finish correctly.

Processes (api-server, scheduler, dag-processor, celery worker, mlflow server) are started here and torn
down after; the databases are created fresh and dropped.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from steward import demo, store
from steward.governance import ledger
from steward.models import registry
from steward.settings import PROJECT_ROOT, StewardPaths
from tests.support import production

pytestmark = pytest.mark.e2e  # and services, by its folder
# Two clients' first nights and the first client's second night, triggered together: three runs on a worker of
# concurrency 4 overlap on the 2 cores (the worker has the task libraries preloaded, ADR 0020).
ENGAGEMENTS = [f"client{i}_churn" for i in range(1, 3)]
NIGHT = "2026-03-01"
NEXT_NIGHT = "2026-03-02"  # a second run of the first engagement, triggered at once: it must wait for the first
REDIS_DB = 7


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    pytest.importorskip("psycopg2")
    root = tmp_path_factory.mktemp("prod")
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
    try:
        with production.stack(root, home, engagements_dir, redis_db=REDIS_DB,
                              extra_env=production.PRODUCTION_TUNING) as running:
            yield running
    finally:
        store._engine.cache_clear()


def test_engagements_at_once_on_postgres_celery_and_mlflow_server(stack, monkeypatch):
    import airflow_client.client as client
    from airflow_client.client.api import dag_api, dag_run_api
    from airflow_client.client.models import DAGPatchBody, TriggerDAGRunPostBody

    config = client.Configuration(host=stack["url"], access_token=production.token(stack["url"]))
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
        deadline = time.monotonic() + 1500  # generous: a 2-core machine running other suites at the same time
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
    # the worker imported the task libraries once, before forking its pool (ADR 0020)
    assert "steward: preloaded" in (stack["root"] / "worker.log").read_text()
