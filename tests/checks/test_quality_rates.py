"""Data-quality drift (issue 31, ADR 0027): rates tested against the reference, pooled on small nights, an
alarm only when the fault persists."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from steward.checks import quality_rates
from steward.config import Engagement


def _reference(n: int = 1200, seed: int = 0, null_share: float = 0.0) -> pd.DataFrame:
    from steward import demo

    frame = demo._churn_frame(np.random.default_rng(seed), n, 1, 0.0, False)
    if null_share:
        frame["monthly_charges"] = frame["monthly_charges"].astype(float)
        frame.loc[np.random.default_rng(seed + 1).random(n) < null_share, "monthly_charges"] = np.nan
    return frame


def _night(rows: int, seed: int, null_share: float = 0.0) -> pd.DataFrame:
    return _reference(rows, seed=100 + seed, null_share=null_share)


def _flagged(eng: Engagement, reference: pd.DataFrame, night: pd.DataFrame) -> dict[tuple[str, str], dict]:
    found = quality_rates.counts(eng, night, quality_rates.column_profile(eng, reference))
    return {(t["column"], t["kind"]): t for t in quality_rates.test(eng, found) if t["flagged"]}


def test_one_null_in_a_column_the_reference_never_saw_empty_is_no_fault_a_sustained_share_is(churn):
    """Bad input (issue 31): a reference of n rows cannot rule out a rate of about 3/n; one null in a night is
    within that bound plus the tolerance, 8% of a 300-row night is not."""
    reference = _reference(1200)
    assert quality_rates.reference_bound(0, 1200) == pytest.approx(3 / 1200, rel=0.01)
    one = _night(120, 1)
    one.loc[0, "tenure_months"] = None
    assert _flagged(churn, reference, one) == {}
    sustained = _night(300, 2)
    sustained.loc[:23, "tenure_months"] = None  # 24 of 300 = 8%
    flagged = _flagged(churn, reference, sustained)
    assert list(flagged) == [("tenure_months", "null")]
    assert flagged[("tenure_months", "null")]["rate"] == 0.08


def test_a_null_share_of_26_percent_against_a_reference_of_10_is_flagged_every_night_and_10_is_not(churn):
    """The fault onboarding's cap of 21% never saw: 165 rows a night, 26% empty against the reference's 10%."""
    reference = _reference(1200, null_share=0.10)
    faulty = [_flagged(churn, reference, _night(165, n, null_share=0.26)) for n in range(10)]
    assert sum(("monthly_charges", "null") in f for f in faulty) >= 9  # alone; pooled and persistent: every one
    clean = [_flagged(churn, reference, _night(165, 50 + n, null_share=0.10)) for n in range(60)]
    assert sum(bool(f) for f in clean) <= 1, [f for f in clean if f]


def test_a_unit_change_a_renamed_category_and_a_stuck_sensor_are_flagged_a_cold_month_is_not(churn):
    reference = _reference(1200)
    unit = _night(60, 3)
    unit["monthly_charges"] = unit["monthly_charges"] * 1000
    assert ("monthly_charges", "out_of_range") in _flagged(churn, reference, unit)
    cold = _night(200, 4)
    cold["monthly_charges"] = cold["monthly_charges"] - 30  # below the reference's minimum, within the margin
    assert ("monthly_charges", "out_of_range") not in _flagged(churn, reference, cold)
    renamed = _night(60, 5)
    renamed["contract"] = renamed["contract"].replace({"month-to-month": "monthly"})
    assert ("contract", "unseen") in _flagged(churn, reference, renamed)
    stuck = _night(200, 6)
    stuck["data_usage_gb"] = 12.18
    assert set(_flagged(churn, reference, stuck)) == {("data_usage_gb", "constant")}
    # a day whose rows share that day's value (one hour's weather for every flight of the hour) is not stuck
    shared = _night(200, 7)
    shared.loc[:119, "data_usage_gb"] = 12.18  # 60% of the rows
    assert _flagged(churn, reference, shared) == {}
    # a column nearly constant in the reference (a cap value on most rows) is not judged for it
    profile = quality_rates.column_profile(churn, reference.assign(support_calls=[1] * 1100 + [2] * 100))
    assert "top" not in profile["support_calls"] and "top" in profile["data_usage_gb"]


def test_an_alarm_needs_the_fault_to_persist_and_small_nights_are_pooled(churn, paths):
    """One flagged night is in the record, not an alarm; two of the last three are. 30-row nights are pooled
    with the accepted nights before them up to min_rows."""
    from steward import demo
    from steward.sources import batches

    demo.generate("churn_telco", paths.data_root, nights=0)
    reference = batches.read_for(churn, batches.reference_path(churn, paths))
    start = churn.start_date
    states = []
    for n in range(6):
        day = start + dt.timedelta(days=n)
        frame = _night(30, 10 + n)
        if n >= 3:  # the fault starts on night 3: a fifth of the contract values renamed
            frame.loc[:5, "contract"] = "monthly-plan"
        frame.to_csv(batches.incoming_path(churn, paths, day), index=False)
        batches.land_batch(churn, paths, day)
        tonight = batches.read_for(churn, batches.landed_path(churn, paths, day))
        states.append(quality_rates.judge(churn, paths, day, tonight, reference))
    assert [s["state"] for s in states[:3]] == ["ok", "ok", "ok"]
    assert states[3]["window_nights"] == [(start + dt.timedelta(days=d)).isoformat() for d in range(4)]
    first_alarm = next(i for i, s in enumerate(states) if s["state"] == "alarm")
    assert first_alarm - 3 <= 3  # detection delay within three nights of the first faulty one
    assert states[first_alarm]["alarm_columns"] == ["contract"]
    assert "values the reference never holds" in states[first_alarm]["summary"]


def test_one_incident_per_column_resolved_the_night_it_clears(churn, paths):
    from steward.operations import alerts, incidents

    judged = {"state": "alarm", "alarm_columns": ["contract", "tenure_months"],
              "rates": [{"column": "contract", "kind": "unseen", "rate": 0.2, "events": 6, "rows": 30,
                         "reference_rate": 0.0, "bound": 0.0225, "p_value": 1e-6, "alarm": True},
                        {"column": "tenure_months", "kind": "null", "rate": 0.3, "events": 9, "rows": 30,
                         "reference_rate": 0.0, "bound": 0.0225, "p_value": 1e-8, "alarm": True}]}
    first = alerts.quality_drift(churn, paths, "2026-03-05", judged)
    again = alerts.quality_drift(churn, paths, "2026-03-06", judged)
    assert [t["subject"] for t in first] == ["contract", "tenure_months"] and all(t["opened_tonight"] for t in first)
    assert [t["incident"] for t in again] == [t["incident"] for t in first]  # deduplicated per column
    assert not any(t["opened_tonight"] for t in again)
    only_contract = {**judged, "alarm_columns": ["contract"], "rates": judged["rates"][:1]}
    tonight = alerts.quality_drift(churn, paths, "2026-03-07", only_contract)
    cleared = [t for t in tonight if t["state"] == "clear"]
    assert [t["subject"] for t in cleared] == ["tenure_months"] and cleared[0]["resolved"] == [first[1]["incident"]]
    assert incidents.active_subjects(paths, churn.id, "quality_drift") == ["contract"]
    opened = incidents.get(paths, first[0]["incident"])
    assert opened["response"] == "hold" and "values the reference never holds" in opened["summary"]


def test_a_fault_is_counted_once_and_holds_retraining_and_its_nights_leave_the_window(churn, paths):
    from steward import policy, store
    from steward.models.training_set import TrainingSet
    from steward.monitoring import windows as monitoring

    drift = {"state": "judged", "drifted_features": ["monthly_charges", "contract"], "drift_share": 0.3333,
             "share_threshold": 0.3, "dataset_drift": True,
             "features": {c: ({"drifted": c in ("monthly_charges", "contract")}) for c in churn.features}}
    quality = {"alarm_columns": ["monthly_charges"], "rates": [{"column": "monthly_charges", "kind": "out_of_range"}]}
    once = monitoring.counted_once(drift, quality)
    assert once["drifted_features"] == ["contract"] and once["dataset_drift"] is False  # 1 of 5 judged
    assert "data-quality alarm (out_of_range)" in once["judged_by_quality"]["monthly_charges"]
    retrain = policy.Decision("retrain", ["dataset drift"], ["drift"])
    held = policy.held_for_quality(churn, retrain, {"alarm_columns": ["monthly_charges"]})
    assert held.action == "keep" and held.deferred == ["drift"] and "monthly_charges" in held.reasons[-1]
    notify = churn.model_copy(update={"responses": churn.responses.model_copy(update={"quality_drift": "notify"})})
    assert policy.held_for_quality(notify, retrain, {"alarm_columns": ["monthly_charges"]}).action == "retrain"
    # the triggers a fault cannot fire go on, on a window without the flagged nights (ADR 0028); the refit's
    # evidence leaves the flagged dates out, so the alarm does not hold it (ADR 0034)
    both = policy.held_for_quality(churn, policy.Decision("retrain", ["grew"], ["drift", "refit", "growth"]),
                                   {"alarm_columns": ["monthly_charges"]})
    assert both.action == "retrain" and both.triggers == ["refit", "growth"] and both.deferred == ["drift"]
    # a night a rate alarmed on leaves the training window, recorded, unless accepted
    from steward import demo
    from steward.sources import batches

    demo.generate("churn_telco", paths.data_root, nights=0)
    start = churn.start_date
    for n in range(4):
        day = start + dt.timedelta(days=n)
        _night(300, 30 + n).to_csv(batches.incoming_path(churn, paths, day), index=False)
        batches.land_batch(churn, paths, day)
    faulty = (start + dt.timedelta(days=2)).isoformat()
    store.replace_rows(paths, store.quality_rates, {"engagement": churn.id, "logical_date": faulty}, [{
        "engagement": churn.id, "logical_date": faulty, "column_name": "monthly_charges", "kind": "null", "events": 90,
        "rows": 300, "rate": 0.3, "reference_rate": 0.0, "bound": 0.02, "p_value": 1e-9, "flagged": True,
        "alarm": True, "window_nights": 1}])
    champion = {"version": 1, "tags": {"steward.trained_for": start.isoformat()}}
    night = start + dt.timedelta(days=3)
    ts = TrainingSet(churn, paths, night, ["drift"], champion)
    assert faulty not in [d.isoformat() for d, _ in ts.window]
    assert "data-quality alarm on monthly_charges" in ts.left_out[faulty]
    accepting = churn.model_copy(update={"retraining": churn.retraining.model_copy(
        update={"accept_flagged_nights": [dt.date.fromisoformat(faulty)]})})
    assert faulty in [d.isoformat() for d, _ in TrainingSet(accepting, paths, night, ["drift"], champion).window]


def test_a_column_all_empty_is_still_quarantined_with_its_reason_while_a_rise_is_left_to_the_rates(churn):
    """Bad input (issue 31): the cap onboarding writes now (the reference's share + 50 points: 0.6 for a column
    10% empty) quarantines a broken column, naming it; 26% empty passes the checks and is the rates' job."""
    from steward import onboard
    from steward.checks import quality

    rules = churn.quality.columns["data_usage_gb"].model_copy(
        update={"max_null_share": round(0.1 + onboard.BROKEN_NULL_RISE, 4)})
    eng = churn.model_copy(update={"quality": churn.quality.model_copy(
        update={"columns": {**churn.quality.columns, "data_usage_gb": rules}})})
    broken = _night(800, 40)
    broken["data_usage_gb"] = np.nan
    result = quality.validate_frame(eng, broken)
    assert not result["success"]
    assert [(c["expectation"], c["column"]) for c in result["failed"]] == [
        ("expect_column_proportion_of_non_null_values_to_be_between", "data_usage_gb")]
    risen = _night(800, 41, null_share=0.0)
    risen.loc[risen.index[:208], "data_usage_gb"] = np.nan  # 26%
    assert quality.validate_frame(eng, risen)["success"]
