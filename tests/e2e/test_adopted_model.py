"""A model built outside steward, adopted and operated on the real DAG (issue 34, ADR 0032).

A project team's pipeline (ColumnTransformer with one-hot and scaling, then gradient boosting) is saved with
skops, adopted with `steward onboard --model`, serves as champion v1 as handed over, drifts, is retrained as
a clone fitted on the window, gated and promoted on the demo's concept shift, and `steward model rollback
--to adopted` returns the champion to the adopted version.
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from typer.testing import CliRunner

from steward import demo
from steward.cli import app
from steward.config import AdoptedSpec, load_engagement
from steward.models import registry
from steward.settings import StewardPaths
from tests.conftest import ENGAGEMENTS

NIGHTS = 10  # through the drift (night 7) and the concept shift's first night (9: 2026-03-10)
NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb"]
CATEGORICAL = ["contract", "payment_method"]
runner = CliRunner()


@pytest.fixture(scope="module")
def adopted(tmp_path_factory):
    from steward.airflow.runner import run_night

    tmp = tmp_path_factory.mktemp("adopted")
    with pytest.MonkeyPatch.context() as mp:
        engagements = tmp / "engagements"
        engagements.mkdir()
        mp.setenv("STEWARD_HOME", str(tmp / "home"))
        mp.setenv("STEWARD_ENGAGEMENTS_DIR", str(tmp / "onboarded"))
        allow = tmp / "reviewed-skops-types.txt"
        allow.write_text("")
        mp.setenv("STEWARD_REVIEWED_TYPES", str(allow))
        paths = StewardPaths.from_env()
        demo.generate("churn_telco", paths.data_root, nights=NIGHTS)
        reference = paths.data_root / "churn_telco" / "reference.csv"
        # built and saved outside steward, as a project team would
        ref = pd.read_csv(reference)
        handed_over = Pipeline([
            ("prep", ColumnTransformer([("num", StandardScaler(), NUMERIC),
                                        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])),
            ("model", GradientBoostingClassifier(n_estimators=60, max_depth=2, random_state=0)),
        ]).fit(ref[NUMERIC + CATEGORICAL], ref["churned"])
        model_file = tmp / "project_team_model.skops"
        skops.io.dump(handed_over, model_file)
        onboarded = runner.invoke(app, ["onboard", "--data", str(reference), "--target", "churned",
                                        "--id", "churn_telco", "--model", str(model_file)])
        assert onboarded.exit_code == 0, onboarded.stdout + onboarded.stderr
        # the demo's monitoring and promotion policy, with the estimator block onboarding wrote
        written = (tmp / "onboarded" / "churn_telco.yaml").read_text()
        block = re.search(r"  estimator:.*?\n(?=\n)", written, re.S).group(0)
        demo_text = (ENGAGEMENTS / "churn_telco.yaml").read_text()
        (engagements / "churn_telco.yaml").write_text(
            re.sub(r"  estimator:\n    name: logistic_regression\n    params: \{[^}]*\}\n", block, demo_text))
        mp.setenv("STEWARD_ENGAGEMENTS_DIR", str(engagements))
        eng = load_engagement(engagements / "churn_telco.yaml")
        assert isinstance(eng.retraining.estimator, AdoptedSpec)
        nights = {d: run_night("churn_telco", d) for d in demo.night_dates(nights=NIGHTS)}
        rolled = runner.invoke(app, ["model", "rollback", "churn_telco", "--to", "adopted",
                                     "--reason", "client asked for the model they handed over"])
        champion_after_rollback = registry.get_alias(registry.client(paths), eng, registry.CHAMPION)
        yield {"eng": eng, "paths": paths, "nights": nights, "handed_over": handed_over, "ref": ref,
               "rolled": rolled, "champion_after_rollback": champion_after_rollback}


def test_the_adopted_model_serves_as_handed_over(adopted):
    eng, paths = adopted["eng"], adopted["paths"]
    first = adopted["nights"][dt.date(2026, 3, 1)]
    assert first["state"].endswith("success")
    c = registry.client(paths)
    v1 = registry.get_version(c, eng, 1)
    assert registry.get_alias(c, eng, registry.ADOPTED).version == 1
    assert v1.tags["steward.adopted_sha256"] == eng.retraining.estimator.sha256
    served = registry.load(c, v1)
    sample = adopted["ref"][NUMERIC + CATEGORICAL].head(300)
    assert (served.predict_proba(sample) == adopted["handed_over"].predict_proba(sample)).all()
    card = (paths.run_dir(eng.id, "2026-03-01") / "model_v1" / "model_card.md").read_text()
    assert "## Provenance (adopted model)" in card and eng.retraining.estimator.sha256 in card


def test_it_drifts_is_retrained_as_a_clone_gated_and_promoted(adopted):
    eng, paths = adopted["eng"], adopted["paths"]
    records = {d: r["audit"] for d, r in adopted["nights"].items()}
    assert all(r["state"].endswith("success") for r in adopted["nights"].values())
    assert any(r["drift"].get("dataset_drift") for r in records.values() if r.get("drift"))
    promoted = [d for d, r in records.items() if r["outcome"] == "promote"]
    assert promoted, {d.isoformat(): r["outcome"] for d, r in records.items()}
    rec = records[promoted[0]]
    assert rec["models"]["champion_before"] == 1 and rec["models"]["champion_after"] > 1
    c = registry.client(paths)
    clone = registry.load(c, registry.get_version(c, eng, rec["models"]["champion_after"]))
    original = adopted["handed_over"]
    # the same steps and parameters as handed over, fitted anew on the window
    assert [n for n, _ in clone.steps] == [n for n, _ in original.steps]
    assert clone.named_steps["model"].get_params() == original.named_steps["model"].get_params()
    assert type(clone.named_steps["model"]) is GradientBoostingClassifier
    assert not (clone.predict_proba(adopted["ref"][NUMERIC + CATEGORICAL].head(50))
                == original.predict_proba(adopted["ref"][NUMERIC + CATEGORICAL].head(50))).all()
    assert rec["retraining"]["scores"]["challenger"] > rec["retraining"]["scores"]["champion"]


def test_rollback_returns_to_the_adopted_version(adopted):
    assert adopted["rolled"].exit_code == 0, adopted["rolled"].stdout + adopted["rolled"].stderr
    assert adopted["champion_after_rollback"].version == 1
    ledger = (adopted["paths"].home / "ledger" / "churn_telco.jsonl").read_text()
    assert '"type":"adoption"' in ledger and "client asked for the model they handed over" in ledger
