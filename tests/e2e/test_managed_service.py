"""Operate like a managed service: 20 nights of prepaid_churn through the real DAG, labels 3 nights late.

The scenario (steward.demo.PREPAID_SCENARIOS): a corrupt batch on 03-03, a temporary concept shift on
03-05..03-09 that reverts from 03-10. Expected: realised performance drops on exactly the shifted
prediction dates served by v1 and on the reverted dates served by the retrained v2; the first breach
(03-08) opens an incident and retrains (no earlier champion to roll back to); the second (03-13) rolls
back automatically to v1; both incidents resolve once labels of fixed predictions land. An email
channel goes through a real SMTP server (the test notifier), which is down when the first incident
opens: the failure is recorded on the incident and the alert is sent on a later night. A copy of the
engagement configured to notify only never rolls back or retrains.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
import yaml

from steward import demo, store
from steward.config import load_engagement
from steward.governance import ledger
from steward.models import metrics, predictions, registry
from steward.operations import incidents, report, value
from steward.settings import StewardPaths
from steward.sources import labels
from tests.conftest import ENGAGEMENTS
from tests.support.smtp import SmtpServer

NIGHTS = 20  # to 03-20: both incidents resolved (03-12, 03-16) and four quiet nights after
LAST = dt.date(2026, 3, 20)
START = dt.date(2026, 3, 1)
SMTP_DOWN = {dt.date(2026, 3, 8), dt.date(2026, 3, 9)}
BREACHED_DATES = {"2026-03-05", "2026-03-06", "2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10",
                  "2026-03-11", "2026-03-12"}


def _write_engagement(folder, eng_id: str, **changes) -> None:
    """prepaid_churn as shipped, without its shadow period: the rollback path needs the promotion for the
    competitor's offer to happen and then prove worse (the shadow period that refuses it is tested in
    test_monitoring_months.py and measured in docs/real-data.md)."""
    raw = yaml.safe_load((ENGAGEMENTS / "prepaid_churn.yaml").read_text())
    assert raw["promotion"]["shadow_nights"] == 2
    raw.update(id=eng_id, promotion={**raw["promotion"], "shadow_nights": 0}, **changes)
    (folder / f"{eng_id}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from steward.airflow.runner import run_night

    home = tmp_path_factory.mktemp("managed")
    engagements = tmp_path_factory.mktemp("engagements")
    smtp = SmtpServer().start()
    _write_engagement(engagements, "prepaid_churn", alerts={
        "channels": [{"type": "smtp", "conn_id": "smtp_steward", "to": ["retention-ops@northwind.example"]}]})
    _write_engagement(engagements, "prepaid_notify", responses={"performance": "notify"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEWARD_HOME", str(home))
        mp.setenv("STEWARD_ENGAGEMENTS_DIR", str(engagements))
        mp.setenv("AIRFLOW_CONN_SMTP_STEWARD", smtp.conn_uri())
        paths = StewardPaths.from_env()
        demo.generate("prepaid_churn", paths.data_root, START, NIGHTS)
        label_bytes = {p.name: p.read_bytes() for p in (paths.data_root / "prepaid_churn/labels").iterdir()}
        runs, sent_by_night = {}, {}
        for day in demo.night_dates(START, NIGHTS):
            (smtp.stop if day in SMTP_DOWN else smtp.start)()
            runs[day] = run_night("prepaid_churn", day)
            sent_by_night[day] = list(smtp.inbox.subjects)
        notify_runs = {d: run_night("prepaid_notify", d) for d in demo.night_dates(START, 13)}  # to 03-13: resolved
        yield {"paths": paths, "runs": runs, "notify_runs": notify_runs, "smtp": smtp, "sent_by_night": sent_by_night,
               "label_bytes": label_bytes, "eng": load_engagement(engagements / "prepaid_churn.yaml"),
               "notify_eng": load_engagement(engagements / "prepaid_notify.yaml"), "run_night": run_night}
    smtp.stop()


def test_every_night_finishes(service):
    for runs in (service["runs"], service["notify_runs"]):
        assert all(r["state"].endswith("success") for r in runs.values()), {d: r["log"] for d, r in runs.items()
                                                                          if not r["state"].endswith("success")}


def test_performance_drop_is_found_on_the_right_prediction_dates(service):
    history = labels.history(service["paths"], "prepaid_churn")
    assert [h["prediction_date"] for h in history][-1] == "2026-03-17"  # labels of the last 3 nights are pending
    assert "2026-03-03" not in {h["prediction_date"] for h in history}  # quarantined: nothing was served
    below = {h["prediction_date"] for h in history if h["realised_value"] < 0.70}
    assert below == BREACHED_DATES - {"2026-03-09"}  # 03-09 (shifted) was served by v2, trained on the shift
    served_by = {h["prediction_date"]: h["model_version"] for h in history}
    assert {served_by[d] for d in ("2026-03-05", "2026-03-08", "2026-03-13", "2026-03-17")} == {1}
    assert {served_by[d] for d in ("2026-03-09", "2026-03-10", "2026-03-12")} == {2}


def test_breaches_open_incidents_that_resolve_with_time_to_recovery(service):
    perf = [i for i in incidents.list_for(service["paths"], "prepaid_churn") if i["condition"] == "performance"]
    assert [(i["opened_on"], i["resolved_on"], i["recovery_nights"], i["state"]) for i in perf] == [
        ("2026-03-08", "2026-03-12", 4, "resolved"), ("2026-03-13", "2026-03-16", 3, "resolved")]
    first, second = ([a["what"] for a in i["actions"]] for i in perf)
    assert first[:2] == ["rollback_refused", "retrain_requested"] and "notification_failed" in first
    assert second == ["rollback"]


def test_auto_rollback_moves_the_alias_through_the_rollback_code_path(service):
    paths, eng = service["paths"], service["eng"]
    rollbacks = [e for e in ledger.read_entries(paths, eng.id) if e["type"] == "rollback"]
    assert [(e["logical_date"], e["detail"]["from_version"], e["detail"]["to_version"], e["detail"]["actor"])
            for e in rollbacks] == [("2026-03-13", 2, 1, "steward auto-rollback")]
    assert "v1 scores" in rollbacks[0]["detail"]["reason"]
    c = registry.client(paths)
    assert registry.get_alias(c, eng, registry.CHAMPION).version == 1
    assert registry.get_alias(c, eng, registry.PREVIOUS_CHAMPION).version == 2
    record = service["runs"][dt.date(2026, 3, 13)]["audit"]
    assert record["outcomes"]["response"]["rollback"]["to_version"] == 1
    assert record["models"]["champion_before"] == 1  # tonight already served by the restored champion
    assert {e["sla"]: e["met"] for e in record["sla_evaluations"]}["performance"] is False
    assert ledger.verify(paths, eng.id).ok


def test_notify_only_never_rolls_back_or_retrains(service):
    paths, eng = service["paths"], service["notify_eng"]
    assert not [e for e in ledger.read_entries(paths, eng.id) if e["type"] == "rollback"]
    versions = registry.client(paths).search_model_versions(f"name='{eng.registered_model_name}'")
    assert [int(v.version) for v in versions] == [1]
    [perf] = [i for i in incidents.list_for(paths, eng.id) if i["condition"] == "performance"]
    # v1 serves the whole shift (03-05..03-09); labels of 03-10 (reverted) land on 03-13 and clear it
    assert (perf["opened_on"], perf["resolved_on"], perf["actions"]) == ("2026-03-08", "2026-03-13", [])


def test_alerts_reach_the_test_notifier_and_a_failed_send_is_retried(service):
    sent = service["sent_by_night"]
    opened = "[steward] OPEN: Northwind Telecom (prepaid) / prepaid_churn: performance (incident #"
    assert not any(s.startswith(opened) for s in sent[dt.date(2026, 3, 9)])  # server down on 03-08 and 03-09
    assert any(s.startswith(opened) and "2026-03-08)" in s for s in sent[dt.date(2026, 3, 10)])
    final = sent[LAST]
    assert sum(s.startswith(opened) for s in final) == 2  # each incident alerted once, none twice
    assert sum(s.startswith("[steward] RESOLVED: Northwind Telecom (prepaid) / prepaid_churn: performance") for s in final) == 2
    paths = service["paths"]
    rows = [r for r in store.select_rows(paths, store.notifications, {"engagement": "prepaid_churn"})
            if r["channel"] == "smtp:smtp_steward"]
    late = [r for r in rows if r["subject"].startswith(opened) and "2026-03-08)" in r["subject"]]
    assert [(r["status"], r["attempts"]) for r in late] == [("sent", 3)] and "Connection refused" in late[0]["last_error"]
    log_lines = notify_log(paths, "prepaid_churn")
    assert any("performance" in line["subject"] for line in log_lines)  # the offline channel never misses


def notify_log(paths, engagement_id):
    from steward.operations import notify

    return [json.loads(x) for x in notify.incident_log_path(paths, engagement_id).read_text().splitlines()]


def test_cbpe_estimate_is_scored_against_the_truth_and_never_acts(service):
    history = {h["prediction_date"]: h for h in labels.history(service["paths"], "prepaid_churn")}
    stable = ["2026-03-01", "2026-03-02", "2026-03-04", "2026-03-15", "2026-03-17"]
    assert all(abs(history[d]["estimate_error"]) < 0.06 for d in stable), {d: history[d]["estimate_error"] for d in stable}
    assert all(history[d]["estimate_error"] > 0.5 for d in ("2026-03-05", "2026-03-06", "2026-03-07"))
    for entry in ledger.read_entries(service["paths"], "prepaid_churn"):
        if entry["type"] == "run" and entry["record"]["decision"]:
            assert not any("estimat" in r for r in entry["record"]["decision"]["reasons"])
    early = [i for i in incidents.list_for(service["paths"], "prepaid_churn") if i["condition"] == "estimated_performance"]
    assert all(i["response"] == "notify" and not [a for a in i["actions"] if a["what"] != "notification_failed"]
               for i in early)


def test_bad_labels_are_counted_set_aside_and_never_joined_wrongly(service):
    paths = service["paths"]
    arrivals = {a["arrival_date"]: a for a in store.select_rows(paths, store.label_arrivals, {"engagement": "prepaid_churn"})}
    normal = arrivals["2026-03-04"]
    assert (normal["joined"], normal["unknown_ids"], normal["duplicates"]) == (1500, 5, 10)
    quarantined = arrivals["2026-03-06"]  # labels of the corrupt 03-03 batch
    assert quarantined["joined"] == 0 and quarantined["for_quarantined"] > 1400
    aside = pd.read_csv(labels.aside_path(service["eng"], paths, dt.date(2026, 3, 6)))
    assert set(aside["quarantined_batch"]) == {"2026-03-03"}
    raw = pd.read_csv(paths.data_root / "prepaid_churn/labels/2026-03-04.csv")
    last = raw.drop_duplicates("customer_id", keep="last").set_index("customer_id")["churned"]
    stored = labels.labels_known_by(service["eng"], paths, "2026-03-01", dt.date(2026, 3, 4)).set_index("customer_id")
    dup_ids = raw.loc[raw["customer_id"].duplicated(), "customer_id"]
    assert (stored.loc[dup_ids, "churned"].astype(int) == last.loc[dup_ids].astype(int)).all()
    for name, data in service["label_bytes"].items():  # the client's label files are untouched
        assert (paths.data_root / "prepaid_churn/labels" / name).read_bytes() == data


def test_outcome_report_lists_incidents_with_time_to_recovery(service, tmp_path):
    result = report.build(service["eng"], service["paths"], days=NIGHTS, end=LAST, out=tmp_path / "r.html")
    data = json.loads((tmp_path / "r.json").read_text())
    perf = [i for i in data["incidents"] if i["condition"] == "performance"]
    assert [(i["opened_on"], i["recovery_nights"]) for i in perf] == [("2026-03-08", 4), ("2026-03-13", 3)]
    counts = data["counts"]
    assert (counts["rollbacks"], counts["promotions"], counts["batches_quarantined"]) == (1, 1, 1)
    assert counts["predictions_served"] == (NIGHTS - 1) * 1500  # every night but the quarantined 03-03
    page = (tmp_path / "r.html").read_text()
    assert "time to recovery (nights)" in page and page.count("data:image/png;base64,") == 4  # value plot too
    assert "rollback" in page and "2026-03-13" in page
    assert result["data"]["counts"] == counts
    # what operating the model added, with how much the dates' luck moves the gap to the periodic refit
    s = data["operating"]["summary"]
    assert s["dates"] >= 10 and s["vs_periodic_refit_se"] > 0
    assert f"against the periodic refit {s['vs_periodic_refit']:+.3f} (give or take {s['vs_periodic_refit_se']:.3f}" in page


def _untimed(section):
    """Stage results carry their start time and duration (recorded separately from the decisions)."""
    if isinstance(section, dict):
        return {k: v for k, v in section.items() if k != "timing"}
    return section


def test_rerun_of_the_rollback_night_changes_nothing(service):
    paths, day = service["paths"], dt.date(2026, 3, 13)
    first = service["runs"][day]["audit"]
    before = (len(ledger.read_entries(paths, "prepaid_churn")), len(incidents.list_for(paths, "prepaid_churn")))
    again = service["run_night"]("prepaid_churn", day)["audit"]
    for section in ("outcomes", "labels", "predictions", "decision", "models", "sla_evaluations"):
        assert _untimed(again[section]) == _untimed(first[section]), section
    assert [e["type"] for e in ledger.read_entries(paths, "prepaid_churn")][before[0]:] == ["run"]  # no second rollback
    assert len(incidents.list_for(paths, "prepaid_churn")) == before[1]


def test_business_value_is_priced_from_realised_outcomes_and_pending_rows_are_not_guessed(service, tmp_path):
    """ADR 0022: each prediction date with realised labels is priced with the business block (35 per true
    positive, 4 per false positive, 20 per false negative); dates still waiting for labels are pending."""
    eng, paths = service["eng"], service["paths"]
    priced = value.history(paths, eng.id, through=LAST)
    realised = {r["prediction_date"] for r in labels.history(paths, eng.id, through=LAST)}
    assert {r["prediction_date"] for r in priced} == realised and len(priced) >= 14
    for row in (priced[0], priced[len(priced) // 2]):  # recomputed by hand from the stored files
        served = pd.read_parquet(predictions.predictions_path(eng, paths, row["prediction_date"]))
        served[eng.id_column] = served[eng.id_column].astype(str)
        known = labels.labels_known_by(eng, paths, row["prediction_date"], dt.date.fromisoformat(row["labels_through"]))
        joined = served.merge(known, on=eng.id_column)
        truth = metrics.encode_target(eng, joined[eng.target]) == 1
        said = joined[predictions.PREDICTION].astype(int) == 1
        tp, fp, fn = int((truth & said).sum()), int((~truth & said).sum()), int((truth & ~said).sum())
        assert (row["true_positives"], row["false_positives"], row["false_negatives"]) == (tp, fp, fn)
        assert row["value_delivered"] == round(35 * tp, 2) and row["cost_of_errors"] == round(4 * fp + 20 * fn, 2)
        assert row["labelled_rows"] == len(joined) and row["minutes_saved"] == row["scored_rows"] * 0.25
        assert row["model_version"] == int(served[predictions.VERSION].iloc[0])
    total = value.period(eng, paths, START, LAST)
    served_rows = sum(r["rows"] for r in store.select_rows(paths, store.predictions, {"engagement": eng.id}))
    assert total["scored_rows"] == served_rows
    assert total["pending_rows"] == served_rows - sum(r["labelled_rows"] for r in priced) >= 3 * 1500  # labels 3 nights late
    assert total["net_value"] == round(sum(r["value_delivered"] - r["cost_of_errors"] for r in priced), 2)

    result = report.build(eng, paths, days=NIGHTS, end=LAST, out=tmp_path / "v.html")
    business = result["data"]["business"]
    assert business["total"] == total
    assert sum(w["scored_rows"] for w in business["weeks"]) == served_rows
    assert [m["period"] for m in business["months"]] == ["2026-03"]
    vs = business["against_previous"]  # the rolled-back v2 served some dates: scored against v1 on the same rows
    assert vs is not None and "v2 vs v1" in vs["compared"] and vs["gain"] == round(vs["net_value"] - vs["previous_net_value"], 2)
    page = (tmp_path / "v.html").read_text()
    assert "Business value" in page and "hours saved" in page and "pending labels" in page
    row = json.loads((paths.home / "status" / f"{eng.id}.json").read_text())["row"]["value_30d"]
    assert row["currency"] == "EUR" and row["pending_rows"] > 0


def test_client_portfolio_covers_every_engagement_of_the_client_in_one_page(service, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from steward.cli import app
    from steward.operations import portfolio

    paths = service["paths"]
    monkeypatch.setenv("STEWARD_HOME", str(paths.home))
    out = tmp_path / "portfolio.html"
    result = CliRunner().invoke(app, ["report", "--client", "northwind telecom (PREPAID)", "--period", "20d",
                                      "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    data = json.loads(out.with_suffix(".json").read_text())
    assert [r["engagement"] for r in data["engagements"]] == ["prepaid_churn", "prepaid_notify"]
    totals = [r["data"]["business"]["total"] for r in data["engagements"]]
    assert data["net_value"] == round(sum(t["net_value"] for t in totals), 2) and data["currency"] == "EUR"
    churn = next(r for r in data["engagements"] if r["engagement"] == "prepaid_churn")
    assert churn["data"]["counts"]["rollbacks"] == 1 and churn["data"]["counts"]["incidents_opened"] >= 2
    assert any(r.startswith("SLA performance missed") for r in churn["risks"])
    page = out.read_text()
    assert page.count("<h2>") == 2 and "SLA attainment" in page and "Open risks" in page
    assert page.count("data:image/png;base64,") >= 3  # value per engagement + each engagement's performance

    unknown = CliRunner().invoke(app, ["report", "--client", "Nobody Ltd"], terminal_width=200)
    assert unknown.exit_code == 2 and "no engagement has client 'Nobody Ltd'" in unknown.output
    both = CliRunner().invoke(app, ["report", "prepaid_churn", "--client", "x"], terminal_width=200)
    assert both.exit_code == 2
    with pytest.raises(portfolio.PortfolioError):
        portfolio.gather("x", [], paths, 7)
