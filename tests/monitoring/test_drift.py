from __future__ import annotations

import json

import numpy as np
import pytest

from steward import demo
from steward.models import training
from steward.monitoring import drift


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng
    ref = demo._churn_frame(rng(1), 2000, 0, 0.0, False)
    same = demo._churn_frame(rng(2), 1000, 10_000, 0.0, False)
    drifted = demo._churn_frame(rng(3), 1000, 20_000, 1.0, False)
    shifted = demo._churn_frame(rng(4), 1000, 30_000, 0.0, True)
    return ref, same, drifted, shifted


@pytest.fixture(scope="module")
def model(frames):
    from steward.config import load_engagement
    from tests.conftest import ENGAGEMENTS

    eng = load_engagement(ENGAGEMENTS / "churn_telco.yaml")
    return eng, training.train(eng, frames[0])


def test_no_drift_on_same_distribution(frames, model, tmp_path):
    eng, m = model
    ref, same, _, _ = frames
    result = drift.detect_drift(eng, training.predict(eng, m, ref), training.predict(eng, m, same), tmp_path)
    assert not result["dataset_drift"] and result["drifted_features"] == []
    assert set(result["features"]) == set(eng.features)
    assert (tmp_path / "drift_report.html").stat().st_size > 10_000
    json.loads((tmp_path / "drift_report.json").read_text())


def test_covariate_drift_is_flagged(frames, model, tmp_path):
    eng, m = model
    ref, _, drifted, _ = frames
    result = drift.detect_drift(eng, training.predict(eng, m, ref), training.predict(eng, m, drifted), tmp_path)
    assert result["dataset_drift"]
    assert {"monthly_charges", "support_calls"} <= set(result["drifted_features"])
    assert result["drift_share"] >= eng.drift.drift_share
    assert result["prediction_drift"]["stattest"] == "wasserstein"
    assert result["features"]["contract"]["stattest"] == "jensenshannon"


def test_performance_drops_after_concept_shift(frames, model, tmp_path):
    eng, m = model
    _, same, _, shifted = frames
    before = drift.measure_performance(eng, training.predict(eng, m, same), tmp_path / "a")
    after = drift.measure_performance(eng, training.predict(eng, m, shifted), tmp_path / "b")
    assert before["metrics"]["roc_auc"] > 0.75 > 0.5 > after["metrics"]["roc_auc"]
    assert before["rows"] == 1000 and (tmp_path / "a" / "performance_report.html").exists()


def test_regression_performance(demand, tmp_path):
    rng = np.random.default_rng
    ref = demo._demand_frame(rng(1), 1500, 0, 0.0, False)
    m = training.train(demand, ref)
    cur = training.predict(demand, m, demo._demand_frame(rng(2), 500, 5000, 0.0, False))
    result = drift.measure_performance(demand, cur, tmp_path)
    assert 0 < result["metrics"]["rmse"] < demand.performance.threshold
    assert result["metrics"]["mae"] < result["metrics"]["rmse"]
