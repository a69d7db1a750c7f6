from __future__ import annotations

from pathlib import Path

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
