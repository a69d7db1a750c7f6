"""What the scheduler sees: the DAG folder parsed the way the DAG processor parses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from steward.airflow.dag_builder import DEFAULT_RETRIES
from steward.config import discover, load_engagement
from steward.settings import PROJECT_ROOT
from tests.conftest import ENGAGEMENTS

DAGS = PROJECT_ROOT / "dags"
HEAVY = ("pandas", "great_expectations", "evidently", "mlflow", "sklearn")
EXPECTED_IDS = {p.stem for p in discover(ENGAGEMENTS)}
MAINTENANCE_IDS = {"steward_retention", "steward_outcome_reports"}

# Runs in a fresh interpreter so nothing the test session imported hides a heavy import at parse time.
_PARSE_SCRIPT = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
before = set(sys.modules)
t = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
ms = (time.perf_counter() - t) * 1000
heavy = sorted({m.split('.')[0] for m in set(sys.modules) - before} & set(sys.argv[2].split(',')))
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "heavy": heavy, "ms": ms}))
"""


def parse_in_subprocess(engagements_dir: Path) -> dict:
    env = {**os.environ, "STEWARD_ENGAGEMENTS_DIR": str(engagements_dir)}
    out = subprocess.run([sys.executable, "-c", _PARSE_SCRIPT, str(DAGS), ",".join(HEAVY)], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_dag_per_engagement_plus_maintenance(dagbag):
    assert set(dagbag.dag_ids) == EXPECTED_IDS | MAINTENANCE_IDS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_IDS))
def test_dag_policy(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    eng = load_engagement(ENGAGEMENTS / f"{dag_id}.yaml")
    assert set(dag.tags) == {eng.client, eng.use_case}
    assert dag.max_active_runs == 1
    assert dag.default_args["retries"] >= DEFAULT_RETRIES
    assert dag.default_args["owner"] == eng.owner
    assert dag.timetable.expression == eng.schedule
    assert eng.client in dag.doc_md and eng.retraining.estimator.name in dag.doc_md
    assert {"land_batch", "validate_batch", "quarantine_batch", "detect_drift", "decide_retrain",
            "retrain_candidate", "gate_and_promote", "judge_shadow", "export_audit"} <= set(dag.task_ids)
    # the decision branches three ways: a candidate, a challenger in shadow judged (ADR 0015), or nothing
    assert {"retrain_candidate", "judge_shadow", "keep_champion"} <= dag.get_task("route_on_decision").downstream_task_ids
    assert dag.get_task("export_audit").trigger_rule == "all_done"


def test_parse_imports_no_heavy_library():
    result = parse_in_subprocess(ENGAGEMENTS)
    assert result["errors"] == {}
    assert set(result["dags"]) == EXPECTED_IDS | MAINTENANCE_IDS
    assert result["heavy"] == [], f"heavy libraries imported at parse time: {result['heavy']}"


def test_broken_yaml_breaks_only_its_own_dag(tmp_path):
    for p in discover(ENGAGEMENTS):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    bad = (PROJECT_ROOT / "tests/configs/invalid/unknown_estimator_param.yaml").read_bytes()
    (tmp_path / "unknown_estimator_param.yaml").write_bytes(bad)
    result = parse_in_subprocess(tmp_path)
    assert set(result["dags"]) == EXPECTED_IDS | MAINTENANCE_IDS  # the good engagements still load
    assert len(result["errors"]) == 1
    message = next(iter(result["errors"].values()))
    assert "unknown_estimator_param.yaml" in message
    assert "retraining.estimator.params.fit_intercept_magic" in message


def test_execution_queue_and_pool_reach_every_task(tmp_path):
    import yaml

    from steward.airflow.dag_builder import build_dag

    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    raw["execution"] = {"queue": "client_northwind", "pool": "client_northwind"}
    path = tmp_path / "churn_telco.yaml"
    path.write_text(yaml.safe_dump(raw))
    dag = build_dag(load_engagement(path), path)
    assert {t.queue for t in dag.tasks} == {"client_northwind"}
    assert {t.pool for t in dag.tasks} == {"client_northwind"}


def test_the_preloading_executor_keeps_the_scheduler_light_and_its_workers_loaded():
    """The scheduler imports the executor class and the Celery configuration: neither may pull in the task
    libraries; a LocalExecutor worker imports them once before its first task (ADR 0019), and a Celery worker
    when Celery sends `import_modules`, before it forks its pool (ADR 0020). Both also fill MLflow's map of
    installed distributions, which every task that logs a model would otherwise build again."""
    import subprocess
    import sys

    heavy = ("pandas", "great_expectations", "evidently", "mlflow", "sklearn", "matplotlib.pyplot",
             "mlflow.store.tracking.sqlalchemy_store", "steward.pipeline")
    probes = {}
    for preload in ("e.preload()", "import_modules.send(sender=None)"):  # two fresh processes, side by side
        probe = ("import sys, steward.airflow.executor as e, steward.airflow.celery_config; "
                 "from celery.signals import import_modules; "
                 f"print([m for m in {heavy!r} if m in sys.modules]); {preload}; "
                 f"print([m for m in {heavy!r} if m not in sys.modules]); "
                 "from mlflow.utils import requirements_utils as r; print('map', r._PACKAGES_TO_MODULES is not None)")
        probes[preload] = subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE, text=True)
    for preload, proc in probes.items():
        stdout, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, (preload, stdout)
        at_import, missing_after_preload = [line for line in stdout.splitlines() if line.startswith("[")][-2:]
        assert at_import == "[]" and missing_after_preload == "[]", (preload, stdout)
        assert "map True" in stdout.splitlines(), (preload, stdout)


def test_every_launcher_runs_the_scheduler_settings_of_the_embedded_default():
    """EMBEDDED_SCHEDULER is repeated for the shell in the Makefile and scripts/up.sh, and the production
    tuning in docker-compose.yaml: they must not drift apart (ADR 0020)."""
    import yaml

    from steward.settings import EMBEDDED_SCHEDULER, PROJECT_ROOT
    from tests.support.production import PRODUCTION_TUNING

    for launcher in ("Makefile", "scripts/up.sh"):
        text = (PROJECT_ROOT / launcher).read_text()
        for key, value in EMBEDDED_SCHEDULER.items():
            assert f"{key}={value}" in text, (launcher, key)
    compose_env = yaml.safe_load((PROJECT_ROOT / "docker-compose.yaml").read_text())["x-airflow-common"]["environment"]
    for key, value in PRODUCTION_TUNING.items():
        assert str(compose_env.get(key)) == value, key


def test_every_mlflow_ui_launcher_runs_without_the_genai_job_runner():
    """MLflow's job runner (huey consumers polling a queue) costs CPU all the time and steward runs no GenAI
    jobs: every place that starts `mlflow ui` turns it off (ADR 0018, point 7)."""
    import re

    from steward.settings import PROJECT_ROOT

    for launcher in ("Makefile", "scripts/up.sh"):
        lines = [line for line in (PROJECT_ROOT / launcher).read_text().splitlines()
                 if re.search(r"mlflow ui\b", line) and not line.lstrip().startswith("#")]
        assert lines, launcher
        for line in lines:
            assert re.search(r"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false\s+\S*mlflow ui", line), (launcher, line)


@pytest.mark.parametrize("wait_minutes,approval", [(0, False), (5, True)])
def test_every_dag_is_the_stage_table(tmp_path, wait_minutes, approval):
    """Issue 33: the nightly graph is declared once (steward.stages). Every task of a built DAG is a row of the
    table, with exactly the upstream tasks and trigger rule the table gives it (an engagement without a
    sensor drops that row); the record's stages and task states are the table's."""
    import yaml

    from steward import stages
    from steward.airflow.dag_builder import WORK_TASKS, build_dag
    from steward.governance import audit

    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    raw["data"]["wait_minutes"] = wait_minutes
    if approval:
        raw["promotion"]["approval"] = {"required": True, "approvers": ["risk.officer"]}
    path = tmp_path / "churn_telco.yaml"
    path.write_text(yaml.safe_dump(raw))
    dag = build_dag(load_engagement(path), path)
    present = {"wait_for_batch": bool(wait_minutes), "request_approval": approval}
    expected = {s.task_id for s in stages.NIGHTLY if not s.optional or present[s.task_id]}
    assert set(dag.task_ids) == expected and len(expected) >= 19
    for stage in stages.NIGHTLY:
        if stage.task_id not in expected:
            continue
        task = dag.get_task(stage.task_id)
        assert task.upstream_task_ids == set(stage.upstream) & expected, stage.task_id
        assert getattr(task.trigger_rule, "value", task.trigger_rule) == stage.trigger_rule, stage.task_id
    assert audit.STAGES == stages.RECORDED and WORK_TASKS == stages.WORK
    assert "decide_retrain" in audit.STAGES and "export_audit" not in audit.STAGES


def test_an_engagement_that_requires_approval_gets_an_approval_dag(tmp_path):
    """Issue 35: the nightly DAG's request_approval emits on the engagement's approval asset; the approval DAG
    runs on it and asks only the named approvers in Required Actions, Reject by default when time runs out."""
    import datetime as dt

    import yaml
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    from steward.airflow.approval_dag import ASK_TASK, build_approval_dag
    from steward.airflow.dag_builder import build_dag

    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    raw["promotion"]["approval"] = {"required": True, "approvers": ["risk.officer", "cro"], "timeout_hours": 0.5}
    path = tmp_path / "churn_telco.yaml"
    path.write_text(yaml.safe_dump(raw))
    eng = load_engagement(path)
    nightly, approval = build_dag(eng, path), build_approval_dag(eng)
    outlet = nightly.get_task("request_approval").outlets[0]
    assert outlet.uri == "steward://churn_telco/approval"
    assert [a.uri for a in approval.timetable.asset_condition.objects] == [outlet.uri]
    ask = approval.get_task(ASK_TASK)
    assert isinstance(ask, ApprovalOperator)
    assert [u["id"] for u in ask.assigned_users] == ["risk.officer", "cro"]
    assert ask.defaults == ["Reject"] and ask.response_timeout == dt.timedelta(minutes=30)
    assert approval.get_task("promote_approved").upstream_task_ids == {ASK_TASK}
    assert getattr(approval.get_task("record_refusal").trigger_rule, "value", None) == "all_done"
    assert approval.dag_id == "churn_telco__approval" and approval.max_active_runs == 1


def test_request_approval_emits_the_event_only_when_a_challenger_waits(tmp_path, monkeypatch):
    """Issue 35: the nightly stage that starts the approval DAG. With a request waiting (the gate said
    `approval`), it sets the event's extra and returns the request; otherwise it is skipped, so no event is
    emitted and no approval DAG runs."""
    from types import SimpleNamespace

    import yaml
    from airflow.sdk.exceptions import AirflowSkipException

    from steward.airflow import dag_builder
    from steward.governance import approvals
    from steward.settings import StewardPaths

    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    raw["promotion"]["approval"] = {"required": True, "approvers": ["risk.officer"]}
    path = tmp_path / "churn_telco.yaml"
    path.write_text(yaml.safe_dump(raw))
    dag = dag_builder.build_dag(load_engagement(path), path)
    task = dag.get_task("request_approval")
    asset = task.outlets[0]
    events = {asset: SimpleNamespace(extra={})}
    xcoms: dict = {"gate_and_promote": {"action": "retrain"}, "judge_shadow": None}
    monkeypatch.setattr(dag_builder, "get_current_context", lambda: {"ti": None, "outlet_events": events})
    monkeypatch.setattr(dag_builder, "pull", lambda ti, task_id: xcoms.get(task_id))
    with pytest.raises(AirflowSkipException):  # nothing waits tonight
        task.python_callable()
    target = approvals.request_path(StewardPaths.from_env(), "churn_telco")
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"version": 4, "approvers": ["risk.officer"], "requested_for": "2026-03-10"}))
    xcoms["gate_and_promote"] = {"action": "approval"}
    result = task.python_callable()
    assert result["version"] == 4 and result["approval_dag"] == "churn_telco__approval"
    assert events[asset].extra == {"engagement": "churn_telco", "version": 4, "requested_for": "2026-03-10"}
    target.write_text(json.dumps({"version": 4, "approvers": [], "requested_for": "2026-03-10",
                                  "answer": {"outcome": "approved"}}))
    with pytest.raises(AirflowSkipException):  # already answered: not asked again
        task.python_callable()
