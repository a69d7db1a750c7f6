"""Freshness SLA as an Airflow 3 Deadline Alert, through the real scheduler (airflow standalone, LocalExecutor).

An engagement whose batch never arrives, with a 6-second freshness deadline: the scheduler notices the
miss and runs steward's callback on the executor, which records the SLA evaluation, opens an incident,
writes the alert to the incident log and appends an 'sla' entry to the ledger.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
import yaml

from steward import incidents, ledger, notify, store
from steward.settings import StewardPaths
from tests.conftest import ENGAGEMENTS
from tests.support import servers

pytestmark = pytest.mark.e2e


def test_missed_freshness_deadline_fires_the_alert(tmp_path, monkeypatch):
    home, engagements, airflow_home = tmp_path / "home", tmp_path / "engagements", tmp_path / "airflow"
    for d in (home, engagements, airflow_home):
        d.mkdir()
    raw = yaml.safe_load((ENGAGEMENTS / "prepaid_churn.yaml").read_text())
    raw["id"] = "late_feed"
    raw["data"]["wait_minutes"] = 5  # the sensor is still waiting when the deadline passes
    raw["sla"]["freshness"] = {"minutes_after_schedule": 0.1}
    # today's 02:00 run is created hours late by this test, so a completion deadline would fire as well
    raw["sla"].pop("completion")
    (engagements / "late_feed.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    port = servers.free_port()
    env = servers.standalone_env(home, engagements, airflow_home, port)
    log = tmp_path / "standalone.log"
    proc = servers.start([str(servers.Path(sys.executable).with_name("airflow")), "standalone"], env, log)
    monkeypatch.setenv("STEWARD_HOME", str(home))
    paths = StewardPaths.from_env()
    incident_log = notify.incident_log_path(paths, "late_feed")
    try:
        servers.wait_http(f"http://127.0.0.1:{port}/api/v2/version", 240, proc, log)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not incident_log.exists():
            assert proc.poll() is None, log.read_text()[-4000:]
            time.sleep(2)
    finally:
        servers.stop(proc)
    assert incident_log.exists(), f"no alert after 300 s; standalone log tail:\n{log.read_text()[-6000:]}"
    # one alert per missed run (the scheduler may have created more than one run of the DAG by then)
    lines = [json.loads(x) for x in incident_log.read_text().splitlines()]
    assert lines and all("late_feed: freshness" in x["subject"] for x in lines)
    assert "not landed 0.1 min after the scheduled time" in lines[0]["body"]
    found = incidents.list_for(paths, "late_feed")
    assert found and {(i["condition"], i["state"]) for i in found} == {("freshness", "open")}
    evaluations = store.select_rows(paths, store.sla_evaluations, {"engagement": "late_feed", "sla": "freshness"})
    assert {e["logical_date"] for e in evaluations if e["met"] is False} == {i["opened_on"] for i in found}
    entries = [e for e in ledger.read_entries(paths, "late_feed") if e["type"] == "sla"]
    assert {e["detail"]["incident"] for e in entries} == {i["id"] for i in found}
    assert all(e["detail"]["source"] == "airflow deadline alert" for e in entries)
