from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from steward import demo, policy
from steward.models import explain, fairness, training
from steward.monitoring.drift import PREDICTION


@pytest.fixture
def frame():
    return demo._churn_frame(np.random.default_rng(8), 1500, 0, 0.0, False)


def test_group_metrics_match_a_hand_count(churn):
    df = pd.DataFrame({"payment_method": ["card"] * 4 + ["bank_transfer"] * 4,
                       "churned": [1, 0, 1, 0, 1, 0, 1, 0], PREDICTION: [1, 1, 1, 0, 0, 0, 1, 0]})
    result = fairness.group_metrics(churn, df)["payment_method"]
    assert result["by_group"]["card"]["selection_rate"] == 0.75
    assert result["by_group"]["bank_transfer"]["selection_rate"] == 0.25
    assert result["gap"]["selection_rate"] == 0.5
    assert result["count"] == {"card": 4, "bank_transfer": 4}


def test_biased_candidate_is_refused_by_the_gate(churn, frame):
    # A candidate that learned to flag one payment method: its selection rate depends on the group.
    model = training.train(churn, frame)
    scored = training.predict(churn, model, frame)
    scored[PREDICTION] = np.where(scored["payment_method"] == "electronic_check", 1, scored[PREDICTION])
    gap = fairness.worst_gap(churn, fairness.group_metrics(churn, scored))
    assert gap[0] == "payment_method" and gap[1] > churn.governance.fairness.max_gap
    decision = policy.gate(churn, champion_version=1, challenger_version=2, evidence=_clear_gain(churn),
                           holdout_rows=len(scored), fairness_gap=gap)
    assert decision.action == "refuse"
    assert "fairness" in decision.reasons[0] and "payment_method" in decision.reasons[0]


def test_fair_candidate_passes(churn, frame):
    model = training.train(churn, frame)
    gap = fairness.worst_gap(churn, fairness.group_metrics(churn, training.predict(churn, model, frame)))
    assert gap[1] < churn.governance.fairness.max_gap
    assert policy.gate(churn, champion_version=1, challenger_version=2, evidence=_clear_gain(churn),
                       holdout_rows=1, fairness_gap=gap).action == "promote"


def _clear_gain(eng):
    """Evidence of a gain of +0.2 ROC AUC no test could doubt: only fairness can refuse it."""
    from steward.models import evidence

    return evidence.judged(eng, evidence.Evidence(metric="roc_auc", rows=1000, nights=3, challenger=0.9,
                                                  champion=0.7, gain=0.2, se=0.01, method="test"))


def test_no_sensitive_attributes_no_fairness(demand):
    assert fairness.group_metrics(demand, pd.DataFrame({"units_sold": [1], PREDICTION: [1]})) is None


def test_permutation_importance_ranks_the_signal_first(churn, frame, tmp_path):
    model = training.train(churn, frame)
    importance = explain.permutation_importance(churn, model, frame.head(600))
    ranked = [r["feature"] for r in importance["features"]]
    assert set(ranked) == set(churn.features)
    assert ranked[0] in {"tenure_months", "monthly_charges", "contract", "support_calls"}
    assert ranked.index("payment_method") > 2  # no signal in the generator
    png = explain.plot(importance, "test", tmp_path / "fi.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("estimator, scoring", [
    ("logistic_regression", "roc_auc"),  # decision_function
    ("random_forest_classifier", "roc_auc"),  # predict_proba
    ("random_forest_classifier", "accuracy"),  # predict
    ("random_forest_regressor", "neg_root_mean_squared_error"),
])
def test_batched_permutation_importance_equals_scikit_learns_to_the_last_bit(churn, frame, estimator, scoring):
    """One prediction per feature over the stacked permuted copies gives scikit-learn's own numbers: the same
    permutations, the same response method, the same scores. A shuffle order or a response method that differed
    would show here (checked: a per-repeat fresh copy instead of sklearn's composed shuffles fails)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.inspection import permutation_importance

    model = training.build_pipeline(churn)  # the engagement's features, LogisticRegression
    if estimator != "logistic_regression":
        cls = RandomForestRegressor if "regressor" in estimator else RandomForestClassifier
        model.set_params(model=cls(n_estimators=30, min_samples_leaf=2, random_state=0))
    x, y = training.features_of(churn, frame), frame[churn.target].astype(float).to_numpy()
    model.fit(x.head(900), y[:900])
    x, y = x.tail(300), y[-300:]
    ours = explain.batched_permutation_importance(model, x, y, scoring=scoring, n_repeats=5, random_state=0)
    theirs = permutation_importance(model, x, y, scoring=scoring, n_repeats=5, random_state=0, n_jobs=1)
    assert np.array_equal(ours.importances, theirs.importances)
    assert np.array_equal(ours.importances_mean, theirs.importances_mean)
