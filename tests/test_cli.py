from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from steward.cli import app
from tests.conftest import ENGAGEMENTS

runner = CliRunner()
INVALID = Path(__file__).parent / "configs" / "invalid"


def test_list_prints_engagement_ids():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert result.stdout.split() == sorted(p.stem for p in ENGAGEMENTS.glob("*.yaml"))


def test_validate_config_ok_and_failing():
    assert runner.invoke(app, ["validate-config"]).exit_code == 0
    bad = runner.invoke(app, ["validate-config", str(INVALID)])
    assert bad.exit_code == 1
    assert "drift.threshold" in bad.stdout


def test_run_unknown_engagement_is_usage_error():
    result = runner.invoke(app, ["run", "nope", "--date", "2026-03-01"])
    assert result.exit_code == 2
    assert "unknown engagement 'nope'" in result.stderr


def test_run_bad_date_is_usage_error():
    result = runner.invoke(app, ["run", "churn_telco", "--date", "03/01/2026"])
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.stderr


def test_demo_unknown_engagement_is_usage_error():
    result = runner.invoke(app, ["demo", "-e", "nope"])
    assert result.exit_code == 2


def test_backfill_bad_range_is_usage_error():
    result = runner.invoke(app, ["backfill", "churn_telco", "--from", "2026-03-05", "--to", "2026-03-01"])
    assert result.exit_code == 2 and "before --from" in result.stderr
    early = runner.invoke(app, ["backfill", "churn_telco", "--from", "2025-01-01", "--to", "2025-01-02"])
    assert early.exit_code == 2 and "start_date" in early.stderr


@pytest.mark.e2e
def test_backfill_records_a_failed_night_and_runs_the_next(tmp_path, monkeypatch):
    """Night 2's source file changes after it was landed (the client rewrote it): that night fails, is
    recorded, and night 3 still runs; the summary follows and the exit code is 1."""
    import datetime as dt
    import json

    from steward import demo
    from steward.airflow.runner import run_night
    from steward.settings import StewardPaths

    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    paths = StewardPaths.from_env()
    demo.generate("churn_telco", paths.data_root, nights=3)
    second = paths.data_root / "churn_telco" / "incoming" / "2026-03-02.csv"
    assert run_night("churn_telco", dt.date(2026, 3, 2))["state"].endswith("success")  # landed once
    second.write_bytes(second.read_bytes().replace(b"card", b"cash", 1))  # ... then rewritten by the client
    results = tmp_path / "nights.json"
    out = runner.invoke(app, ["backfill", "churn_telco", "--from", "2026-03-01", "--to", "2026-03-03",
                              "--results", str(results)])
    assert out.exit_code == 1, out.stdout + out.stderr
    nights = json.loads(results.read_text())
    assert [n["date"] for n in nights] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert [n["state"].endswith("success") for n in nights] == [True, False, True]
    assert "1 failed: 2026-03-02" in " ".join(out.stdout.split())
    assert "nightly summary" in out.stdout  # the summary table
    record = json.loads((paths.artifacts / "churn_telco" / "2026-03-02" / "audit.json").read_text())
    assert record["outcome"] == "failed" and "land_batch" in record["failed_tasks"]
    # no signing key configured (ADR 0017): the nights ran, and every place an operator looks says unsigned
    from steward.airflow.ui import render_table
    from steward.governance import ledger
    from steward.operations import status

    row = status.read(paths, "churn_telco")["row"]
    assert row["ledger_signed"] is False and "'steward_ledger_signing' is not defined" in row["ledger_unsigned_reason"]
    points = ledger.read_checkpoints(paths, "churn_telco")
    runs = [e["seq"] for e in ledger.read_entries(paths, "churn_telco") if e["type"] == "run"]
    assert [p["seq"] for p in points] == runs and all("unsigned" in p and "signature" not in p for p in points)
    assert "unsigned</span>" in render_table([row])
    assert ledger.verify(paths, "churn_telco", check_artifacts=False).unsigned_runs == runs
