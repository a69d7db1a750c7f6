"""A known secret planted in Airflow connections never appears in any output: task logs, audit records,
the ledger, lineage, the incident log and tables, reports, the MLflow store or an auditor bundle.

The SMTP connection's password and the Slack webhook token both carry the planted value; both channels
fail during the run (the SMTP server offers no AUTH, the webhook host refuses connections), which is
exactly when client libraries like to print URLs and credentials.
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path
from urllib.parse import quote

import yaml

from steward import demo
from steward.config import load_engagement
from steward.governance import bundle
from steward.operations import incidents, report
from steward.settings import StewardPaths
from tests.conftest import ENGAGEMENTS
from tests.support import logs
from tests.support.smtp import SmtpServer

SECRET = "s3cr3t-PLANTED-7f1c9e"
# The corrupt batch of 03-03 opens a quality incident, alerted on every channel; on the two nights after it the
# first labels join. (It ran 9 nights before, to the first performance breach: an alert takes the same delivery
# path whatever its condition, so the 4 nights more of CPU exercised no other way out for a secret.)
NIGHTS = 5


def _leaks(root: Path) -> list[str]:
    needles = [SECRET.encode(), quote(SECRET, safe="").encode()]
    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        blobs = [data]
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                blobs += [zf.read(n) for n in zf.namelist()]
        if any(n in b for b in blobs for n in needles):
            found.append(str(path.relative_to(root)))
    return found


def test_planted_connection_secret_never_reaches_any_output(tmp_path, monkeypatch, capfd):
    from steward.airflow.runner import run_night

    home, engagements = tmp_path / "home", tmp_path / "engagements"
    engagements.mkdir()
    raw = yaml.safe_load((ENGAGEMENTS / "prepaid_churn.yaml").read_text())
    raw["alerts"] = {"channels": [{"type": "smtp", "conn_id": "smtp_secret", "to": ["ops@client.example"]},
                                  {"type": "slack_webhook", "conn_id": "slack_secret"}]}
    (engagements / "prepaid_churn.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    smtp = SmtpServer().start()
    monkeypatch.setenv("STEWARD_HOME", str(home))
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(engagements))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_SECRET", smtp.conn_uri(login="steward", password=SECRET))
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_SECRET", json.dumps(
        {"conn_type": "slackwebhook", "password": f"http://127.0.0.1:9/services/T0/B0/{SECRET}"}))
    paths = StewardPaths.from_env()
    # The alert task's own logger, caught at the source as well: whatever Airflow's logging setup did
    # earlier in the session, the searched output provably holds the lines a leak would be in.
    try:
        with logs.caught("steward.airflow") as caught:
            demo.generate("prepaid_churn", paths.data_root, nights=NIGHTS)
            for day in demo.night_dates(nights=NIGHTS):
                assert run_night("prepaid_churn", day)["state"].endswith("success")
    finally:
        smtp.stop()
    eng = load_engagement(engagements / "prepaid_churn.yaml")
    bundle.export(paths, eng.id, since=dt.date(2026, 3, 1), until=dt.date(2026, 3, NIGHTS), out=home / "bundles" / "march")
    report.build(eng, paths, days=NIGHTS)

    # the channels really failed, with their reasons kept (so there was something to leak)
    failures = [a for i in incidents.list_for(paths, eng.id) for a in i["actions"] if a["what"] == "notification_failed"]
    assert {f["channel"] for f in failures} == {"smtp:smtp_secret", "slack_webhook:slack_secret"}
    assert all(f["detail"] for f in failures)
    # task logs: to files when run from the CLI, to the captured streams under pytest; both are searched
    captured = capfd.readouterr()
    task_output = (captured.out + captured.err + "".join(p.read_text() for p in (home / "logs").rglob("*.log"))
                   + "\n".join(caught.lines))
    # positive control: the searched output holds both failed deliveries, with the error text a leak would be in
    for channel in ("smtp:smtp_secret", "slack_webhook:slack_secret"):
        assert f"ALERT NOT SENT via {channel}" in task_output, channel
    assert SECRET not in task_output and quote(SECRET, safe="") not in task_output
    assert _leaks(home) == []
