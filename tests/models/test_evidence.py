"""The gate's paired test (steward.models.evidence, ADR 0024): DeLong's variance, the other metrics' influence
functions, night clustering, and the minimum detectable effect."""

from __future__ import annotations

import numpy as np
import pytest

from steward.models import evidence, metrics


def _naive_delong(y, s1, s2):
    """DeLong's paired test written out over every positive-negative pair (O(m·n))."""
    pos, neg = y == 1, y == 0

    def components(s):
        psi = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        return psi.mean(1), psi.mean(0), psi.mean()

    v10a, v01a, a = components(s1)
    v10b, v01b, b = components(s2)
    cov = np.cov(np.vstack([v10a, v10b])) / pos.sum() + np.cov(np.vstack([v01a, v01b])) / neg.sum()
    return a - b, float(np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]))


def test_auc_difference_and_its_variance_are_delongs(churn):
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(int)
    better = y * 0.9 + rng.normal(0, 1, 400)
    worse = np.round(y * 0.4 + rng.normal(0, 1, 400) + 0.3 * better, 1)  # rounded: ties count half
    ev, why = evidence.paired(churn, "roc_auc", y, (np.zeros(400), better), (np.zeros(400), worse), np.zeros(400))
    assert why is None
    gain, se = _naive_delong(y, better, worse)
    assert ev.gain == pytest.approx(gain, abs=1e-12) and ev.se == pytest.approx(se, rel=1e-9)
    assert ev.challenger == pytest.approx(metrics.compute(churn, "roc_auc", y, y, better)[0], abs=1e-6)
    same, _ = evidence.paired(churn, "roc_auc", y, (np.zeros(400), better), (np.zeros(400), better), np.zeros(400))
    assert same.gain == 0 and same.se == 0


@pytest.mark.parametrize("metric", ["accuracy", "f1", "precision", "recall"])
def test_classification_gains_are_the_metric_differences(churn, metric):
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.4).astype(int)
    good = np.where(rng.random(500) < 0.85, y, 1 - y)
    poor = np.where(rng.random(500) < 0.65, y, 1 - y)
    ev, _ = evidence.paired(churn, metric, y, (good, None), (poor, None), np.zeros(500))
    expected = metrics.compute(churn, metric, y, good)[0] - metrics.compute(churn, metric, y, poor)[0]
    assert ev.gain == pytest.approx(expected, abs=1e-5)
    assert 0 < ev.se < abs(ev.gain)  # 85% against 65% right on 500 rows is not noise


@pytest.mark.parametrize("metric", ["rmse", "mae", "r2"])
def test_regression_gains_point_the_right_way(demand, metric):
    rng = np.random.default_rng(2)
    y = rng.normal(100, 20, 600)
    close, far = y + rng.normal(0, 5, 600), y + rng.normal(0, 15, 600)
    ev, _ = evidence.paired(demand, metric, y, (close, None), (far, None), np.zeros(600))
    a, b = metrics.compute(demand, metric, y, close)[0], metrics.compute(demand, metric, y, far)[0]
    assert ev.gain == pytest.approx(abs(a - b), rel=1e-3) and ev.gain > 4 * ev.se  # lower error is the gain


def test_a_gain_one_night_carries_is_clustered_by_night(churn):
    rng = np.random.default_rng(4)
    y = (rng.random(600) < 0.5).astype(int)
    nights = np.repeat(np.arange(6), 100)
    base = y * 1.0 + rng.normal(0, 1, 600)
    lucky = base + np.where(nights == 0, y * 3.0, 0)  # better on night 0 only
    pooled_rows, _ = evidence.paired(churn, "roc_auc", y, (None, lucky), (None, base), np.zeros(600))
    by_night, _ = evidence.paired(churn, "roc_auc", y, (None, lucky), (None, base), nights)
    assert by_night.gain == pooled_rows.gain
    assert by_night.se > 1.5 * pooled_rows.se and "clustered by night" in by_night.method


def test_a_real_better_model_clears_the_bound_and_noise_does_not(churn):
    from steward import demo, policy
    from steward.models import training

    rng = np.random.default_rng(3)
    train = training.labelled(churn, demo._churn_frame(rng, 1500, 0, 0.0, False))
    nights = {f"n{i}": training.labelled(churn, demo._churn_frame(rng, 200, 5000 + 200 * i, 0.0, False))
              for i in range(3)}
    good = training.train(churn, train)
    shuffled = training.train(churn, train.assign(churned=rng.permutation(train["churned"].to_numpy())))
    zero = churn.model_copy(update={"promotion": churn.promotion.model_copy(update={"shadow_nights": 0})})
    found, _ = evidence.on_nights(zero, good, shuffled, nights)
    assert found["nights"] == 3 and found["rows"] == 600 and found["bounds"]["lower"] > 0.1
    assert policy.gate(zero, champion_version=1, challenger_version=2, evidence=found).action == "promote"
    same, _ = evidence.on_nights(zero, good, good, nights)
    assert same["gain"] == 0
    assert policy.gate(zero, champion_version=1, challenger_version=2, evidence=same).action == "refuse"
    assert evidence.on_nights(zero, good, shuffled, {"n0": nights["n0"].iloc[:0]}) == (None, "no labelled rows")
    one_class = nights["n0"][nights["n0"]["churned"] == 0]
    found, why = evidence.on_nights(zero, good, shuffled, {"n0": one_class})
    assert found is None and "one class only" in why
