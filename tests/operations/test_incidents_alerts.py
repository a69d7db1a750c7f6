"""Incidents (states, time to recovery), the alert outbox through real Airflow notifiers, and SLA evaluation."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from steward import store
from steward.airflow import notifiers
from steward.config import Engagement
from steward.monitoring import outcomes
from steward.operations import incidents, notify
from tests.support.smtp import SmtpServer


@pytest.fixture
def with_smtp(churn) -> Engagement:
    raw = churn.model_dump()
    raw["alerts"] = {"channels": [{"type": "smtp", "conn_id": "smtp_steward", "to": ["ops@client.example"]}],
                     "max_attempts": 3}
    return Engagement.model_validate(raw)


@pytest.fixture
def smtp(monkeypatch):
    server = SmtpServer().start()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_STEWARD", server.conn_uri())
    yield server
    server.stop()


def test_incident_opens_once_continues_and_resolves_with_time_to_recovery(churn, paths):
    first, opened = incidents.open_or_continue(paths, churn.id, "drift", "2026-03-05", summary="drift", response="notify")
    again, opened_again = incidents.open_or_continue(paths, churn.id, "drift", "2026-03-06", summary="drift", response="notify")
    assert opened and not opened_again and again["id"] == first["id"]
    rerun, _ = incidents.open_or_continue(paths, churn.id, "drift", "2026-03-05", summary="drift", response="notify")
    assert rerun["id"] == first["id"]
    acked = incidents.acknowledge(paths, first["id"], "ana")
    assert (acked["state"], acked["acknowledged_by"]) == ("acknowledged", "ana")
    with pytest.raises(incidents.IncidentError, match="not open"):
        incidents.acknowledge(paths, first["id"], "bob")
    assert incidents.resolve(paths, churn.id, "drift", "2026-03-05", "clear") == []  # not on its own night
    [done] = incidents.resolve(paths, churn.id, "drift", "2026-03-09", "drift cleared")
    assert (done["state"], done["resolved_on"], done["recovery_nights"]) == ("resolved", "2026-03-09", 4)
    assert done["recovery_hours"] is not None and done["recovery_hours"] >= 0
    new, opened = incidents.open_or_continue(paths, churn.id, "drift", "2026-03-10", summary="drift", response="notify")
    assert opened and new["id"] != first["id"]


def test_alert_is_sent_by_email_and_to_the_incident_log(with_smtp, paths, smtp):
    inc, _ = incidents.open_or_continue(paths, with_smtp.id, "quality", "2026-03-06", summary="3 failed checks",
                                        response="notify")
    assert notify.enqueue(paths, with_smtp, inc, "opened") == 2
    assert notify.enqueue(paths, with_smtp, inc, "opened") == 0  # once per channel
    result = notifiers.deliver(with_smtp, {})
    assert sorted(s["channel"] for s in result["sent"]) == ["incident_log", "smtp:smtp_steward"]
    assert smtp.inbox.subjects == [f"[steward] OPEN: Northwind Telecom / churn_telco: quality (incident #{inc['id']}, "
                                   "2026-03-06)"]
    html_body = "".join(part.get_payload(decode=True).decode() for part in smtp.inbox.messages[0].walk()
                        if part.get_content_type() == "text/html")
    assert "3 failed checks" in html_body and "ops@client.example" in smtp.inbox.messages[0]["To"]
    line = json.loads(notify.incident_log_path(paths, with_smtp.id).read_text().splitlines()[0])
    assert line["subject"].startswith("[steward] OPEN") and "3 failed checks" in line["body"]


def test_smtp_down_is_recorded_on_the_incident_and_retried(with_smtp, paths, smtp):
    inc, _ = incidents.open_or_continue(paths, with_smtp.id, "drift", "2026-03-07", summary="drift 67%", response="notify")
    notify.enqueue(paths, with_smtp, inc, "opened")
    smtp.stop()
    first = notifiers.deliver(with_smtp, {})
    assert [f["channel"] for f in first["failed"]] == ["smtp:smtp_steward"] and first["failed"][0]["will_retry"]
    assert [s["channel"] for s in first["sent"]] == ["incident_log"]  # the offline channel still works
    actions = incidents.get(paths, inc["id"])["actions"]
    assert actions[0]["what"] == "notification_failed" and "Connection refused" in actions[0]["detail"]
    smtp.start()
    second = notifiers.deliver(with_smtp, {})
    assert [(s["channel"], s["attempt"]) for s in second["sent"]] == [("smtp:smtp_steward", 2)]
    assert len(smtp.inbox.messages) == 1
    assert notifiers.deliver(with_smtp, {}) == {"sent": [], "failed": []}  # nothing sent twice


def test_a_notifier_that_keeps_failing_gives_up_after_max_attempts(with_smtp, paths, smtp):
    inc, _ = incidents.open_or_continue(paths, with_smtp.id, "drift", "2026-03-07", summary="x", response="notify")
    notify.enqueue(paths, with_smtp, inc, "opened")
    smtp.stop()
    for _ in range(5):
        notifiers.deliver(with_smtp, {})
    rows = {r["channel"]: r for r in notify.of_incident(paths, inc["id"])}
    assert (rows["smtp:smtp_steward"]["status"], rows["smtp:smtp_steward"]["attempts"]) == ("gave_up", 3)
    assert rows["incident_log"]["status"] == "sent"


def _performance_row(paths, eng, pdate, value, rows=500, version=1):
    store.replace_rows(paths, store.performance, {"engagement": eng.id, "prediction_date": pdate}, [{
        "engagement": eng.id, "prediction_date": pdate, "metric": eng.performance.metric, "realised_value": value,
        "labelled_rows": rows, "model_version": version, "estimated_value": None, "estimate_error": None,
        "labels_through": pdate, "report_html": None}])


def test_performance_sla_is_a_row_weighted_mean_over_the_window(churn, paths):
    raw = churn.model_dump()
    raw["sla"] = {"performance": {"threshold": 0.7, "window_days": 3, "min_labelled_rows": 600}}
    eng = Engagement.model_validate(raw)
    for pdate, value, rows in (("2026-03-01", 0.9, 500), ("2026-03-02", 0.8, 100), ("2026-03-03", 0.6, 500),
                               ("2026-03-04", 0.5, 500)):
        _performance_row(paths, eng, pdate, value, rows)
    ev = outcomes.evaluate_performance(eng, paths, dt.date(2026, 3, 4))
    assert ev["window_dates"] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert ev["value"] == pytest.approx((0.8 * 100 + 0.6 * 500 + 0.5 * 500) / 1100)
    assert ev["met"] is False
    ev_early = outcomes.evaluate_performance(eng, paths, dt.date(2026, 3, 1))
    assert ev_early["met"] is None and "not enough data yet" in ev_early["detail"]  # 500 rows < 600
    stored = store.select_rows(paths, store.sla_evaluations, {"engagement": eng.id})
    assert {(r["logical_date"], r["met"]) for r in stored} == {("2026-03-04", False), ("2026-03-01", None)}


def test_quarantine_share_counts_the_window_and_tonight(churn, paths):
    raw = churn.model_dump()
    raw["sla"] = {"quarantine": {"max_share": 0.25, "window_days": 4}}
    eng = Engagement.model_validate(raw)
    for day, outcome in (("2026-03-01", "quarantine"), ("2026-03-02", "keep"), ("2026-03-03", "missing")):
        store.record_run(paths, {"engagement": {"id": eng.id}, "logical_date": day, "run": {"run_id": day},
                                 "outcome": outcome, "models": {"champion_before": 1, "champion_after": 1},
                                 "recorded_at": "2026-03-05T00:00:00+00:00"}, ledger_seq=int(day[-1]), ledger_hash="0" * 64)
    ok = outcomes.evaluate_quarantine(eng, paths, dt.date(2026, 3, 4), quarantined_tonight=False)
    assert (ok["value"], ok["met"]) == (pytest.approx(1 / 3), False)  # 1 of 3 batches (missing is no batch)
    window_moved = outcomes.evaluate_quarantine(eng, paths, dt.date(2026, 3, 5), quarantined_tonight=False)
    assert (window_moved["value"], window_moved["met"]) == (0.0, True)


def test_a_failing_webhook_never_writes_its_secret(churn, paths, monkeypatch):
    """The Slack webhook token sits in the connection; a failed send must not copy it into the incident,
    the outbox or the logs (the alert error is stored and later exported)."""
    secret = "PLANTEDSECRET0042"
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_STEWARD", json.dumps({
        "conn_type": "slackwebhook", "password": f"http://127.0.0.1:9/services/T0/B0/{secret}"}))
    raw = churn.model_dump()
    raw["alerts"] = {"channels": [{"type": "slack_webhook", "conn_id": "slack_steward"}]}
    eng = Engagement.model_validate(raw)
    inc, _ = incidents.open_or_continue(paths, eng.id, "drift", "2026-03-07", summary="drift", response="notify")
    notify.enqueue(paths, eng, inc, "opened")
    result = notifiers.deliver(eng, {})
    [failed] = result["failed"]
    assert failed["channel"] == "slack_webhook:slack_steward" and secret not in failed["error"]
    assert secret not in json.dumps(incidents.public(incidents.get(paths, inc["id"])))
    assert secret not in json.dumps([{k: str(v) for k, v in r.items()} for r in notify.of_incident(paths, inc["id"])])
    assert notifiers.redact(f"url /services/T0/B0/{secret}", [secret]) == "url /services/T0/B0/***"


def test_a_connection_that_cannot_be_looked_up_sends_nothing_and_says_why(with_smtp, paths, smtp, monkeypatch):
    """Fail closed (issue 18): without the connection its secrets cannot be masked, so nothing is sent; the
    failure is recorded on the incident and the alert goes out on a later night once the lookup works."""
    inc, _ = incidents.open_or_continue(paths, with_smtp.id, "drift", "2026-03-07", summary="x", response="notify")
    notify.enqueue(paths, with_smtp, inc, "opened")
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_STEWARD")  # the secrets backend has no such connection (tonight)
    first = notifiers.deliver(with_smtp, {})
    assert [f["channel"] for f in first["failed"]] == ["smtp:smtp_steward"] and smtp.inbox.messages == []
    error = first["failed"][0]["error"]
    assert error.startswith("connection 'smtp_steward' could not be looked up (") and "not sent" in error, error
    assert "not sent" in incidents.get(paths, inc["id"])["actions"][0]["detail"]
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_STEWARD", smtp.conn_uri())
    second = notifiers.deliver(with_smtp, {})
    assert [(s["channel"], s["attempt"]) for s in second["sent"]] == [("smtp:smtp_steward", 2)]
    assert len(smtp.inbox.messages) == 1
