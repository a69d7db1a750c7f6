"""The evidence a regulator asks for (issue 35): a post-market monitoring plan per configuration, versioned in
the ledger and bundled; incident reports drafted from the stored facts with the regulatory clock a person
picks, and that person's decision, both ledger entries."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml
from typer.testing import CliRunner

from steward.cli import app
from steward.config import config_hash, load_engagement
from steward.governance import bundle, export, ledger, monitoring_plan
from steward.operations import incident_report, incidents
from tests.conftest import ENGAGEMENTS

runner = CliRunner()


def _record(eng, day: str, metric: float, served: int, after: int, rows: int = 1500) -> dict:
    return {"logical_date": day, "outcome": "keep" if served == after else "promote",
            "engagement": {"id": eng.id}, "performance": {"metrics": {"roc_auc": metric}},
            "models": {"champion_before": served, "champion_after": after},
            "drift": {"drift_share": 0.1, "dataset_drift": False, "drifted_features": []}, "quality": None,
            "data": {"profile": {"rows": rows}}, "decision": {"action": "keep", "reasons": []}}


@pytest.fixture
def history(tmp_path, paths, monkeypatch):
    """Twelve recorded nights of churn_telco through the ledger: a performance incident opens on 03-05, a
    rollback on 03-06, recovered on 03-07; the configuration changes on 03-09."""
    engagements = tmp_path / "engagements"
    engagements.mkdir()
    path = engagements / "churn_telco.yaml"
    path.write_text((ENGAGEMENTS / "churn_telco.yaml").read_text())
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(engagements))
    eng = load_engagement(path)
    metrics = {1: 0.84, 2: 0.85, 3: 0.83, 4: 0.84, 5: 0.55, 6: 0.58, 7: 0.82, 8: 0.83, 9: 0.84, 10: 0.83}
    for n, value in metrics.items():
        day = f"2026-03-{n:02d}"
        if n == 9:  # a change of policy: a new configuration, so a new plan version
            raw = yaml.safe_load(path.read_text())
            raw["drift"]["threshold"] = 0.2
            path.write_text(yaml.safe_dump(raw, sort_keys=False))
            eng = load_engagement(path)
        record = _record(eng, day, value, served=1, after=1)
        record_path = paths.run_dir(eng.id, day) / "audit.json"
        record_path.parent.mkdir(parents=True, exist_ok=True)
        record_path.write_text(json.dumps(record))
        export.record_in_ledger(eng, paths, path, config_hash(path), record, record_path)
        if n == 5:
            inc, _ = incidents.open_or_continue(paths, eng.id, "performance", day, summary="roc_auc 0.55 < 0.70",
                                                response="rollback")
            incidents.add_action(paths, inc["id"], {"action": "rollback", "night": day, "to_version": 1})
        if n == 7:
            incidents.resolve(paths, eng.id, "performance", day, "roc_auc back to 0.82")
    ledger.append(paths, eng.id, "rollback", logical_date="2026-03-06",
                  detail={"from_version": 2, "to_version": 1, "reason": "performance SLA", "actor": "steward"})
    return eng, path, inc["id"]


def test_each_configuration_has_a_plan_version_in_the_ledger_and_the_bundle(history, paths, tmp_path):
    eng, path, _ = history
    plans = [e for e in ledger.read_entries(paths, eng.id) if e["type"] == "plan"]
    assert [p["detail"]["version"] for p in plans] == [1, 2]  # the change of 03-09 is plan version 2
    assert plans[1]["detail"]["config_sha256"] == config_hash(path) and plans[1]["logical_date"] == "2026-03-09"
    text = (monitoring_plan.plan_dir(paths, eng.id) / f"plan_{config_hash(path)[:12]}.md").read_text()
    for expected in ("Post-market monitoring plan: churn_telco (version 2)", "Risk class: **not classified**",
                     "wasserstein per feature above 0.2", "roc_auc floor 0.7", "Art. 72",
                     "kept 730 days", "ana.lima@steward.example"):
        assert expected in text, expected
    out = tmp_path / "bundle"
    bundle.export(paths, eng.id, dt.date(2026, 3, 1), dt.date(2026, 3, 10), out)
    assert (out / "monitoring_plan" / "v1").is_dir() and (out / "monitoring_plan" / "v2").is_dir()
    assert "monitoring plan v2" in (out / "index.html").read_text()
    assert "\"type\":\"plan\"" in (out / "VERIFY.md").read_text()
    # the bundled plan is the one the ledger cites
    cited = {line.split()[1]: line.split()[0] for line in (out / "artifacts.sha256").read_text().splitlines()}
    assert any(p.startswith("monitoring_plan/v2/") for p in cited)


def test_an_incident_report_is_drafted_from_the_records_with_the_chosen_clock(history, paths):
    eng, _, incident_id = history
    result = runner.invoke(app, ["incident", "report", str(incident_id), "--deadline-days", "15", "--by", "ana"])
    assert result.exit_code == 0, result.stdout + result.stderr
    [entry] = [e for e in ledger.read_entries(paths, eng.id) if e["type"] == "incident_report"]
    assert entry["detail"]["deadline_days"] == 15 and entry["detail"]["serious"] is None
    [json_file] = incident_report.reports_dir(paths, eng.id).glob(f"incident_{incident_id}_*.json")
    report = json.loads(json_file.read_text())
    assert report["affected_dates"] == ["2026-03-05", "2026-03-06", "2026-03-07"]
    assert report["affected_rows"] == 4500 and report["versions_served"] == [1]
    assert (report["metric_before"], report["metric_during"]) == (0.84, 0.65)  # 0.84 = mean of 03-01..03-04
    assert report["metric_after"] == 0.8333 and report["recovery_nights"] == 2
    assert [c["type"] for c in report["changes"]] == ["rollback"]
    text = json_file.with_suffix(".md").read_text()
    assert "Art. 73(2)" in text and "report due **2026-" in text
    # a person decides; the decision is a ledger entry of its own
    decided = runner.invoke(app, ["incident", "classify", str(incident_id), "--not-serious", "--by", "ana",
                                  "--reason", "scores were late, nobody was affected"])
    assert decided.exit_code == 0, decided.stdout + decided.stderr
    last = ledger.read_entries(paths, eng.id)[-1]
    assert (last["type"], last["detail"]["serious"], last["detail"]["decided_by"]) == ("incident_report", False, "ana")
    assert ledger.verify(paths, eng.id).ok


@pytest.mark.parametrize("args,message", [
    (["--deadline-days", "7"], "2, 10 or 15"),
    (["--deadline-days", "15", "--by", "x"], None),
])
def test_bad_requests_exit_2_and_write_nothing(history, paths, args, message):
    eng, _, incident_id = history
    before = len(ledger.read_entries(paths, eng.id))
    target = incident_id if message else 999
    result = runner.invoke(app, ["incident", "report", str(target), *args])
    assert result.exit_code == 2
    assert (message or "no incident 999") in result.stderr
    assert len(ledger.read_entries(paths, eng.id)) == before
    classify = runner.invoke(app, ["incident", "classify", str(incident_id), "--serious", "--by", "a", "--reason", "r"])
    assert classify.exit_code == 2 and "was drafted" in classify.stderr
