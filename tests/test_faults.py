"""Faults through the real scheduler (airflow standalone, LocalExecutor): the worker is SIGKILLed in the
middle of retraining and twice in the middle of the audit export, and Airflow retries. The night must end
exactly like an undisturbed twin engagement's: one model version, one ledger entry, a record that
verifies. Then clearing the export task re-runs it without changing a byte.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

import pytest
import yaml

from steward import batches, demo, ledger, lineage, registry
from steward.config import load_engagement
from steward.settings import StewardPaths
from tests.conftest import ENGAGEMENTS
from tests.support import servers

pytestmark = pytest.mark.e2e
NIGHT = dt.date(2026, 3, 2)  # the second night: a daily scheduled refresh retrains here
FAULTS = ("retrain.after_register", "export.after_record", "export.after_ledger")


def _engagement(folder, eng_id):
    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    # Fires only on Feb 29: the scheduler creates no run of its own, only the ones the test triggers.
    raw.update(id=eng_id, schedule="0 2 29 2 *")
    raw["retraining"]["refresh_every_days"] = 1  # a candidate on the second night: one night of history suffices
    (folder / f"{eng_id}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def _night_entries(paths, eng_id):
    return [e for e in ledger.read_entries(paths, eng_id) if e["type"] == "run" and e["logical_date"] == NIGHT.isoformat()]


def test_sigkill_mid_retrain_and_mid_export_then_retry_ends_like_an_undisturbed_run(tmp_path, monkeypatch):
    from steward.airflow.runner import run_night

    home, engagements, airflow_home = tmp_path / "home", tmp_path / "engagements", tmp_path / "airflow"
    for d in (home, engagements, airflow_home):
        d.mkdir()
    for eng_id in ("fault_churn", "calm_churn"):
        _engagement(engagements, eng_id)
    monkeypatch.setenv("STEWARD_HOME", str(home))
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(engagements))
    paths = StewardPaths.from_env()
    demo.generate("churn_telco", paths.data_root, nights=2)
    for day in demo.night_dates(nights=1):  # the history before the night under test, in-process
        for eng_id in ("fault_churn", "calm_churn"):
            assert run_night(eng_id, day)["state"].endswith("success")

    port = servers.free_port()
    env = servers.standalone_env(
        home, engagements, airflow_home, port,
        STEWARD_RETRY_DELAY_SECONDS="2",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",  # the REST call below needs no login
        STEWARD_FAULTS=",".join(f"fault_churn:{p}" for p in FAULTS),
    )
    airflow = str(servers.Path(sys.executable).with_name("airflow"))
    log = tmp_path / "standalone.log"
    proc = servers.start([airflow, "standalone"], env, log)
    api = f"http://127.0.0.1:{port}/api/v2"

    def wait_for(condition, what: str, timeout: float = 420) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-4000:]
            if condition():
                return
            time.sleep(3)
        raise AssertionError(f"timed out waiting for {what}; log tail:\n{log.read_text()[-6000:]}")

    try:
        servers.wait_http(f"http://127.0.0.1:{port}/api/v2/version", 240, proc, log)
        wait_for(lambda: {"fault_churn", "calm_churn"} <= {d["dag_id"] for d in servers.rest(f"{api}/dags?limit=100")["dags"]},
                 "the DAGs to be parsed")
        for eng_id in ("fault_churn", "calm_churn"):
            servers.trigger_run(api, eng_id, f"faults_{NIGHT}", f"{NIGHT.isoformat()}T00:00:00Z")

        def state(eng_id: str) -> str:
            return servers.rest(f"{api}/dags/{eng_id}/dagRuns/faults_{NIGHT}")["state"]

        wait_for(lambda: {state("fault_churn"), state("calm_churn")} <= {"success", "failed"}, "both runs to finish")
        states = {e: state(e) for e in ("fault_churn", "calm_churn")}
        assert states == {"fault_churn": "success", "calm_churn": "success"}, log.read_text()[-4000:]

        # every fault fired (the worker really died three times) ...
        assert sorted(p.name for p in (home / "faults").iterdir()) == sorted(f"fault_churn.{p}" for p in FAULTS)
        # ... and the night ended like the undisturbed twin's
        c = registry.client(paths)
        versions = {e: sorted(int(v.version) for v in c.search_model_versions(f"name='steward.{e}'"))
                    for e in ("fault_churn", "calm_churn")}
        assert versions["fault_churn"] == versions["calm_churn"]  # no duplicate version from the killed retrain
        [faulty], [calm] = _night_entries(paths, "fault_churn"), _night_entries(paths, "calm_churn")
        f_rec, c_rec = faulty["record"], calm["record"]
        assert f_rec["outcome"] == c_rec["outcome"] == "retrain"
        same = {"decision": ("action", "reasons", "triggers"),
                "retraining": ("training", "holdout_rows", "metric", "scores"),
                "promotion": ("action", "reasons", "promoted", "champion_before", "champion_after")}
        for section, keys in same.items():
            assert {k: f_rec[section][k] for k in keys} == {k: c_rec[section][k] for k in keys}, section
        assert f_rec["retraining"]["challenger"]["version"] == c_rec["retraining"]["challenger"]["version"]
        # the retry found the version the killed attempt had registered, by its training key
        assert (f_rec["retraining"]["reused_existing_version"], c_rec["retraining"]["reused_existing_version"]) == \
            (True, False)
        assert f_rec["run"]["try_number"] == 2  # the export that reached the ledger was the retry
        audit_path = paths.run_dir("fault_churn", NIGHT.isoformat()) / "audit.json"
        assert json.loads(audit_path.read_text()) == f_rec
        assert ledger.verify(paths, "fault_churn").ok and ledger.verify(paths, "calm_churn").ok
        final_events = [e for e in lineage.read_events(paths, "fault_churn")
                        if e["job"]["name"] == "fault_churn" and e["eventType"] == "COMPLETE"
                        and e["run"]["runId"] == lineage.run_uuid("fault_churn", f_rec["run"]["run_id"])]
        assert len(final_events) == 1

        # clearing the export task re-runs it: same bytes, no new ledger entry
        before = (batches.sha256_file(audit_path), len(ledger.read_entries(paths, "fault_churn")))
        status_file = home / "status" / "fault_churn.json"
        stamp = json.loads(status_file.read_text())["row"]["updated_at"]
        cleared = servers.rest(f"{api}/dags/fault_churn/clearTaskInstances", {
            "dag_run_id": f_rec["run"]["run_id"], "task_ids": ["export_audit"], "dry_run": False, "only_failed": False})
        assert [t["task_id"] for t in cleared["task_instances"]] == ["export_audit"], cleared
        wait_for(lambda: json.loads(status_file.read_text())["row"]["updated_at"] != stamp, "the cleared export")
        assert (batches.sha256_file(audit_path), len(ledger.read_entries(paths, "fault_churn"))) == before
    finally:
        servers.stop(proc)
    eng = load_engagement(engagements / "fault_churn.yaml")
    assert registry.get_alias(registry.client(paths), eng, registry.CHAMPION).version == 1
