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
    income, debt_ratio = eng.quality.rules_for("income"), eng.quality.rules_for("debt_ratio")
    # debt_ratio reaches 0 in the reference: a negative ratio quarantines; the range only warns
    assert [r.severity for r in debt_ratio] == ["quarantine", "warn"] and debt_ratio[0].min == 0
    assert debt_ratio[1].max >= 1.0
    # income merely stays positive (lowest 19): no quarantine tier on its sign, its range warns
    assert income[0].min is None and income[1].severity == "warn" and income[1].min >= 0
    assert eng.quality.columns["loan_id"].unique
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


def _feed(tmp, nights=3, delay=2):
    """A client's pilot: sample batches without the target (with a timestamp and a free-text note), and
    label files `delay` nights later, under the data root."""
    data = tmp / "home" / "data" / "acme"
    batches, labels = data / "samples", data / "labels"
    batches.mkdir(parents=True)
    labels.mkdir()
    for i in range(nights):
        day = dt.date(2026, 5, 1) + dt.timedelta(days=i)
        frame = loans(40 + 10 * i, seed=20 + i)
        frame["applied_at"] = f"{day}T09:30:00Z"
        frame["note"] = "customer asked to be called back after the holidays, twice"
        frame.drop(columns=["defaulted"]).to_csv(batches / f"extract_{day}.csv", index=False)
        frame[["loan_id", "defaulted"]].to_csv(labels / f"{day + dt.timedelta(days=delay)}.csv", index=False)
    ref = loans().assign(applied_at=[f"2026-04-{1 + i % 28:02d}T10:{i % 60:02d}:00Z" for i in range(1500)],
                         note="customer asked to be called back after the holidays, twice")
    ref.loc[ref.index[:5], "note"] = "no answer on the phone number given, sent a letter"
    ref.to_csv(tmp / "loans.csv", index=False)
    return tmp / "loans.csv", batches, labels


def test_onboard_with_late_labels_and_sample_batches(env):
    tmp, engs = env
    csv, batches, labels = _feed(tmp)
    result = _onboard(csv, "--labels", str(labels), "--batches", str(batches))
    assert result.exit_code == 0, result.stdout + result.stderr
    eng = load_engagement(engs / "loans_acme.yaml")
    assert eng.labels is not None and eng.labels.directory == "acme/labels"
    assert eng.labels.expected_delay_days == 2  # measured: ids of the samples came back 2 nights later
    assert eng.data.directory == "acme/samples" and eng.data.pattern == "extract_{date}.csv"
    assert (eng.quality.row_count.min, eng.quality.row_count.max) == (10, 240)  # 40..60 rows a night
    assert eng.column_types["applied_at"] == "timestamp" and eng.column_types["loan_id"] == "string"
    assert "applied_at" not in eng.features and "note" not in eng.features
    assert set(eng.carried_columns) == {"applied_at", "note"}
    assert "defaulted" not in eng.batch_columns and eng.classes == [0, 1] and eng.positive == 1
    text = (engs / "loans_acme.yaml").read_text()
    assert "applied_at: timestamp" in text and "not a feature: a timestamp" in text and "free text" in text
    # issue 30 / 31 defaults, written out: the shadow period from the label delay (2 + 2 + 5), six candidates
    # a month, data-quality rates on with their level, tolerance, pooling and persistence
    assert eng.promotion.shadow_max_days == 9 and eng.retraining.max_candidates_per_30_days == 6
    assert eng.promotion.shadow_nights == 0  # ADR 0035: a conclusive holdout promotes at the gate
    rates = eng.quality.rates
    assert "rates:" in text and (rates.significance, rates.tolerance, rates.min_rows) == (0.01, 0.02, 200)
    assert (rates.persistence.nights, rates.persistence.of_last) == (2, 3) and eng.responses.quality_drift == "hold"


def test_a_null_share_cap_quarantines_what_is_broken_and_leaves_a_rise_to_the_rates():
    """Issue 31: the cap was twice the reference's share (0.21 for 10%), under which a four-week fault of 17-28%
    empty cells never showed; now the cap is for a broken column (the reference's share + 50 points) and the
    data-quality rates judge the share that rose."""
    import pandas as pd

    from steward import onboard

    rules = onboard._feature_rules(pd.Series([None] * 10 + list(range(90)), dtype="Float64"), "numeric", "float")
    first = rules[0] if isinstance(rules, list) else rules
    assert first["max_null_share"] == 0.6


def test_given_volume_and_delay_win(env):
    tmp, engs = env
    csv, _, labels = _feed(tmp)
    assert _onboard(csv, "--labels", "acme/labels", "--label-delay", "4", "--rows-per-night", "1000").exit_code == 0
    eng = load_engagement(engs / "loans_acme.yaml")
    assert eng.labels.expected_delay_days == 4 and eng.labels.directory == "acme/labels"
    assert (eng.quality.row_count.min, eng.quality.row_count.max) == (250, 4000)


@pytest.mark.parametrize("args, message", [
    (["--labels", "/etc"], "must be under the data root"),
    (["--label-delay", "3"], "--label-delay needs --labels"),
    (["--labels", "acme/labels", "--label-delay", "200"], "between 0 and 90"),
    (["--rows-per-night", "0"], "at least 1"),
    (["--batches", "EMPTY"], "no dated .csv files"),
    (["--batches", "SAMPLES"], "carry no 'defaulted' column: pass --labels"),
    (["--batches", "NARROW", "--labels", "acme/labels"], "lack column(s) ['age']"),
], ids=["labels-outside-root", "delay-without-labels", "delay-out-of-range", "zero-volume", "no-batches",
        "batches-without-target", "batches-missing-column"])
def test_bad_nightly_options_exit_2_and_nothing_written(env, args, message):
    tmp, engs = env
    csv, batches, _ = _feed(tmp)
    (tmp / "empty").mkdir()
    narrow = tmp / "narrow"
    narrow.mkdir()
    pd.read_csv(next(batches.iterdir())).drop(columns=["age"]).to_csv(narrow / "2026-05-01.csv", index=False)
    swap = {"EMPTY": str(tmp / "empty"), "SAMPLES": str(batches), "NARROW": str(narrow)}
    before = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
    result = _onboard(csv, *[swap.get(a, a) for a in args])
    assert result.exit_code == 2, result.stdout
    assert message in " ".join(result.stderr.split())
    assert not engs.exists() and sorted(p.relative_to(tmp) for p in tmp.rglob("*")) == before


@pytest.mark.e2e
def test_onboarded_engagement_runs_its_first_two_nights(env):
    from steward.airflow.runner import run_night
    from steward.operations import status
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


def test_onboard_like_an_engagement_takes_its_conventions_and_infers_only_the_data(env):
    """Issue 34: the next use case of the same client starts from an existing engagement: label delay and a label
    folder of its own, schedule, SLAs, responses, alerts, execution, governance owners, region and retention come
    from it; features, target, types and rules from the new data; the decision log is the new engagement's."""
    import shutil

    from tests.conftest import ENGAGEMENTS

    tmp, engs = env
    engs.mkdir()
    shutil.copy(ENGAGEMENTS / "prepaid_churn.yaml", engs / "prepaid_churn.yaml")
    like = load_engagement(engs / "prepaid_churn.yaml")
    csv = tmp / "loans.csv"
    loans().drop(columns=["defaulted"]).assign(defaulted=loans().defaulted).to_csv(csv, index=False)
    result = runner.invoke(app, ["onboard", "--data", str(csv), "--target", "defaulted", "--id", "loans_acme",
                                 "--use-case", "loan default", "--like", "prepaid_churn", "--sensitive", "gender"])
    assert result.exit_code == 0, result.stdout + result.stderr
    eng = load_engagement(engs / "loans_acme.yaml")
    # the client file prepaid_churn inherits from is the new engagement's too; the client is the client file's
    # name ("(prepaid)" was prepaid_churn's own)
    assert eng.client_defaults == like.client_defaults == "northwind_telecom" and eng.client == "Northwind Telecom"
    assert (eng.owner, eng.schedule) == (like.owner, like.schedule)
    assert eng.sla == like.sla and eng.responses == like.responses and eng.alerts == like.alerts
    assert eng.execution == like.execution
    g = eng.governance
    assert (g.owners, g.region, g.retention_days) == (like.governance.owners, like.governance.region, 730)
    assert g.sensitive_attributes == ["gender"] and "Onboarded with `steward onboard`" in g.decision_log
    assert eng.labels is not None and eng.labels.directory == "loans_acme/labels"
    assert eng.labels.expected_delay_days == like.labels.expected_delay_days == 3
    assert eng.target == "defaulted" and "debt_ratio" in eng.features and eng.id_column == "loan_id"
    assert "as in prepaid_churn.yaml (steward onboard --like)" in (engs / "loans_acme.yaml").read_text()
    # what the command line gives wins over the engagement it is like
    again = runner.invoke(app, ["onboard", "--data", str(csv), "--target", "defaulted", "--id", "loans_other",
                                "--like", "prepaid_churn", "--label-delay", "5", "--owner", "me@acme.example"])
    assert again.exit_code == 0, again.stdout + again.stderr
    other = load_engagement(engs / "loans_other.yaml")
    assert other.labels.expected_delay_days == 5 and other.owner == "me@acme.example"


def test_onboard_like_an_unknown_engagement_exits_2_and_writes_nothing(env):
    tmp, engs = env
    csv = tmp / "loans.csv"
    loans().to_csv(csv, index=False)
    before = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
    for name in ("no_such_engagement", "../etc/passwd"):
        result = _onboard(csv, "--like", name)
        assert result.exit_code == 2 and "--like" in result.stderr and "no engagement file" in result.stderr
    assert not engs.exists() and sorted(p.relative_to(tmp) for p in tmp.rglob("*")) == before


def test_the_growth_factor_follows_the_volume_seen_at_onboarding():
    """ADR 0034: a candidate about every two weeks of labels at go-live volume, between a quarter and half again
    the rows the model learnt from."""
    from steward.onboard import growth_factor

    assert growth_factor(1200, 28)[0] == 0.33  # 30 applications a night: about 14 nights, not 43
    assert growth_factor(1460, 24)[0] == 0.25  # never below a quarter: ever smaller candidates are noise
    assert growth_factor(1200, 2000)[0] == 0.5  # at volume: half again (the refit period and the budget bound it)
    assert growth_factor(1200, None)[0] == 0.5
    assert "14 nights of 28 rows" in growth_factor(1200, 28)[1]
