"""CBPE: with calibrated scores the estimate matches the realised metric; a concept shift is invisible to it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from steward.monitoring import estimate


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 3, n)
    y = (rng.random(n) < p).astype(int)  # labels drawn from the scores: calibrated by construction
    return p, y


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1", "roc_auc"])
def test_estimate_matches_realised_on_calibrated_scores(metric):
    p, y = _calibrated(20_000, 1)
    pred = (p >= 0.5).astype(int)
    realised = {"accuracy": metrics.accuracy_score, "precision": metrics.precision_score, "recall": metrics.recall_score,
                "f1": metrics.f1_score}.get(metric)
    truth = metrics.roc_auc_score(y, p) if metric == "roc_auc" else realised(y, pred)
    assert estimate.estimate(metric, p, pred) == pytest.approx(truth, abs=0.01)


def test_calibrator_fixes_overconfident_scores():
    p, y = _calibrated(20_000, 2)
    overconfident = p ** 0.3  # same ranking, wrong probabilities
    pred = (overconfident >= 0.5).astype(int)
    raw = estimate.estimate("accuracy", overconfident, pred)
    fixed = estimate.estimate("accuracy", estimate.calibrator(overconfident, y).predict(overconfident), pred)
    truth = metrics.accuracy_score(y, pred)
    assert abs(fixed - truth) < 0.01 < abs(raw - truth)


def test_concept_shift_is_invisible_to_the_estimate():
    """The reason an estimate never acts on its own: flip the concept and it does not move."""
    p, y = _calibrated(20_000, 3)
    flipped = 1 - y
    est = estimate.estimate("roc_auc", p, (p >= 0.5).astype(int))
    assert est == pytest.approx(metrics.roc_auc_score(y, p), abs=0.01)
    assert metrics.roc_auc_score(flipped, p) < 0.3 < est


def test_unsupported_metric_or_empty_input_gives_no_estimate():
    assert estimate.estimate("rmse", np.array([0.5]), np.array([1])) is None
    assert estimate.estimate("roc_auc", np.array([]), np.array([])) is None
    assert estimate.estimate("roc_auc", np.ones(5), np.ones(5)) is None  # no expected negatives
