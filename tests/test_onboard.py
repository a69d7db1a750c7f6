from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from steward.cli import app
from steward.config import load_engagement

runner = CliRunner()


def loans(n: int = 1500, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "loan_id": [f"L{seed}-{i:06d}" for i in range(n)],
        "income": rng.normal(50000, 15000, n).clip(0).round(0),
        "debt_ratio": rng.uniform(0, 1, n).round(3),
        "age": rng.integers(18, 80, n),
        "region": rng.choice(["north", "south", "east"], n),
        "gender": rng.choice(["f", "m"], n),
    })
    logit = -2 + 3 * df.debt_ratio - df.income / 50000
    df["defaulted"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


@pytest.fixture
def env(tmp_path, monkeypatch):
    engs = tmp_path / "engagements"
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(engs))
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    return tmp_path, engs


def _onboard(csv, *extra):
    return runner.invoke(app, ["onboard", "--data", str(csv), "--target", "defaulted", "--id", "loans_acme",
                               "--client", "Acme Bank", "--use-case", "loan default", *extra])


def test_onboard_writes_a_valid_commented_engagement(env):
    tmp, engs = env
    csv = tmp / "loans.csv"
    loans().to_csv(csv, index=False)
    result = _onboard(csv, "--sensitive", "gender")
    assert result.exit_code == 0, result.stdout + result.stderr
    path = engs / "loans_acme.yaml"
    eng = load_engagement(path)
    assert eng.problem_type == "binary_classification" and eng.id_column == "loan_id"
    assert eng.features == {"income": "numeric", "debt_ratio": "numeric", "age": "numeric",
                            "region": "categorical", "gender": "categorical"}
    assert eng.quality.columns["region"].allowed_values == ["east", "north", "south"]
    assert eng.quality.columns["debt_ratio"].max >= 1.0 and eng.quality.columns["loan_id"].unique
    assert eng.governance.sensitive_attributes == ["gender"] and eng.governance.fairness is not None
    assert path.read_text().startswith("# Acme Bank: loan default")
    assert (tmp / "home" / "data" / "loans_acme" / "reference.csv").read_bytes() == csv.read_bytes()
    again = _onboard(csv)
    assert again.exit_code == 2 and "--force" in again.stderr
    assert load_engagement(path).governance.sensitive_attributes == ["gender"]  # untouched
    assert _onboard(csv, "--force").exit_code == 0


def test_regression_target_is_inferred(env):
    tmp, engs = env
    df = loans().assign(defaulted=lambda d: d.income * 0.1 + d.age)  # a continuous target
    df.to_csv(tmp / "r.csv", index=False)
    assert _onboard(tmp / "r.csv").exit_code == 0
    eng = load_engagement(engs / "loans_acme.yaml")
    assert eng.problem_type == "regression" and eng.performance.metric == "rmse"


def _bad_no_rows(df):
    return df.head(0)


def _bad_one_class(df):
    return df.assign(defaulted=1)


def _bad_null_column(df):
    return df.assign(age=np.nan)


def _bad_mixed(df):
    out = df.copy()
    out["income"] = out["income"].astype(object)
    out.loc[out.index[:300], "income"] = "unknown"
    return out


@pytest.mark.parametrize("mutate, extra, message", [
    (_bad_no_rows, [], "no rows"),
    (lambda d: d.drop(columns=["defaulted"]), [], "target column 'defaulted' is not in"),
    (_bad_one_class, [], "single value"),
    (_bad_null_column, [], "column 'age' is entirely empty"),
    (_bad_mixed, [], "column 'income' mixes numbers and text"),
    (lambda d: d, ["--sensitive", "zodiac"], "--sensitive 'zodiac'"),
], ids=["no-rows", "missing-target", "one-class", "all-null-column", "mixed-types", "unknown-sensitive"])
def test_bad_reference_data_exit_2_and_nothing_written(env, mutate, extra, message):
    tmp, engs = env
    csv = tmp / "loans.csv"
    mutate(loans()).to_csv(csv, index=False)
    result = _onboard(csv, *extra)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr.replace("\n", " ")
    assert not engs.exists() and not (tmp / "home").exists()


def test_unsafe_id_and_missing_file(env):
    tmp, engs = env
    loans().to_csv(tmp / "l.csv", index=False)
    bad = runner.invoke(app, ["onboard", "--data", str(tmp / "l.csv"), "--target", "defaulted", "--id", "../evil"])
    assert bad.exit_code == 2 and "not a safe name" in bad.stderr
    missing = runner.invoke(app, ["onboard", "--data", str(tmp / "nope.csv"), "--target", "y", "--id", "x_y"])
    assert missing.exit_code == 2 and "no such file" in " ".join(missing.stderr.split())
    assert not engs.exists()


@pytest.mark.e2e
def test_onboarded_engagement_runs_its_first_two_nights(env):
    from steward import status
    from steward.airflow.runner import run_night
    from steward.settings import StewardPaths

    tmp, engs = env
    csv = tmp / "loans.csv"
    loans().to_csv(csv, index=False)
    assert _onboard(csv, "--start-date", "2026-11-01").exit_code == 0
    paths = StewardPaths.from_env()
    incoming = paths.data_root / "loans_acme" / "incoming"
    for i, day in enumerate((dt.date(2026, 11, 1), dt.date(2026, 11, 2))):
        loans(600, seed=10 + i).to_csv(incoming / f"{day}.csv", index=False)
    first = run_night("loans_acme", dt.date(2026, 11, 1))
    second = run_night("loans_acme", dt.date(2026, 11, 2))
    assert first["state"].endswith("success") and second["state"].endswith("success")
    assert first["audit"]["models"]["bootstrapped"] is True
    assert second["audit"]["quality"]["success"] and second["audit"]["outcome"] in {"keep", "retrain", "promote"}
    row = status.read(paths, "loans_acme")["row"]
    assert row["last_night"] == "2026-11-02" and row["champion_version"] >= 1 and row["ledger_verified"]
