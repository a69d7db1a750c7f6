"""Business value (steward.operations.value, ADR 0022): pricing outcomes, the `business:` block's validation, and the
report's periods. The nightly pricing on real runs is tested in test_managed_service.py (late labels,
a rollback) and e2e/test_nightly_dag.py (regression, labels in the batch)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import yaml

from steward.config import EngagementConfigError, load_all, load_engagement
from steward.operations import value
from steward.operations.report import _periods
from tests.conftest import ENGAGEMENTS


def _with_business(tmp_path, source: str, business, eng_id: str | None = None, **changes):
    raw = yaml.safe_load((ENGAGEMENTS / f"{source}.yaml").read_text())
    raw.update(business=business, **changes)
    if eng_id:
        raw["id"] = eng_id
    path = tmp_path / f"{raw['id']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_binary_outcomes_are_counted_against_the_positive_class_and_priced(churn):
    labelled = pd.DataFrame({churn.target: [1, 1, 0, 0, 1, 0], "prediction": [1, 0, 1, 0, 1, 0]})
    counts = value.outcome_counts(churn, labelled)
    assert counts == {"true_positives": 2, "false_positives": 1, "false_negatives": 1, "true_negatives": 2}
    assert value.price(churn, counts) == {"value_delivered": 2 * 180.0, "cost_of_errors": 25.0 + 90.0}


def test_regression_is_priced_per_unit_of_absolute_error(demand):
    labelled = pd.DataFrame({demand.target: [10.0, 20.0, 30.0], "prediction": [12.0, 20.0, 25.5]})
    counts = value.outcome_counts(demand, labelled)
    assert counts == {"absolute_error": pytest.approx(6.5)}
    assert value.price(demand, counts) == {"value_delivered": 0.0, "cost_of_errors": round(6.5 * 1.2, 2)}


def test_summary_keeps_pending_rows_apart_and_adoption_only_where_feedback_exists():
    rows = [{"currency": "EUR", "scored_rows": 100, "labelled_rows": 100, "value_delivered": 50.0, "cost_of_errors": 20.0,
             "minutes_saved": 60.0},
            {"currency": "EUR", "scored_rows": 200, "labelled_rows": 150, "value_delivered": 10.0, "cost_of_errors": 40.0,
             "minutes_saved": 120.0}]
    s = value.summary(rows, adopted=[{"scored_rows": 100, "acted_rows": 30}])
    assert (s["value_delivered"], s["cost_of_errors"], s["net_value"]) == (60.0, 60.0, 0.0)
    assert (s["pending_rows"], s["hours_saved"], s["adoption"]) == (50, 3.0, 0.3)  # 30 of the 100 with feedback
    assert value.summary(rows)["adoption"] is None  # no feedback at all: unknown, not 0 %


def _served(eng, paths, pdate: str, ids: list[str], version: int = 1) -> None:
    """A prediction date as score_batch leaves it: the parquet the client consumed and its store row."""
    from steward import store
    from steward.models import predictions

    path = predictions.predictions_path(eng, paths, pdate)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({eng.id_column: ids, predictions.PREDICTION: 1}).to_parquet(path)
    store.replace_rows(paths, store.predictions, {"engagement": eng.id, "prediction_date": pdate}, [{
        "engagement": eng.id, "prediction_date": pdate, "model_version": version, "rows": len(ids),
        "path": str(path), "sha256": "0" * 64}])


def _feedback(eng, paths, pdate: str, text: str) -> None:
    path = paths.data_root / eng.business.adoption.directory / f"{pdate}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_adoption_counts_served_rows_acted_on_as_known_each_night(churn, paths):
    """Feedback dated by the prediction date it answers, read on the nights that follow: unknown until it
    arrives, ids never served are counted apart, a corrected file is a new known state (the earlier one kept)."""
    _served(churn, paths, "2026-03-01", ["a", "b", "c", "d"])
    _served(churn, paths, "2026-03-02", ["e", "f"], version=2)
    assert value.record_adoption(churn, paths, dt.date(2026, 3, 2)) == {"recorded": [], "rejected": []}
    _feedback(churn, paths, "2026-03-01", "customer_id,acted\na,yes\nb,No\nc,TRUE\nz,yes\nb,1\n")
    first = value.record_adoption(churn, paths, dt.date(2026, 3, 3))["recorded"]
    # a and c acted, b corrected to acted (last answer wins), d never answered, z never served
    assert [(r["prediction_date"], r["acted_rows"], r["scored_rows"], r["unknown_ids"]) for r in first] == \
        [("2026-03-01", 3, 4, 1)]
    assert value.record_adoption(churn, paths, dt.date(2026, 3, 4))["recorded"] == []  # same bytes: nothing new
    _feedback(churn, paths, "2026-03-01", "customer_id,acted\na,yes\nb,no\n")  # the client corrects its export
    _feedback(churn, paths, "2026-03-02", "customer_id,acted\ne,yes\nf,yes\n")
    value.record_adoption(churn, paths, dt.date(2026, 3, 5))
    as_of = {night: {r["prediction_date"]: r["acted_rows"] for r in value.adoption_history(paths, churn.id, dt.date(2026, 3, night))}
             for night in (2, 4, 5)}
    assert as_of == {2: {}, 4: {"2026-03-01": 3}, 5: {"2026-03-01": 1, "2026-03-02": 2}}
    period = value.period(churn, paths, dt.date(2026, 3, 1), dt.date(2026, 3, 5))
    assert (period["adoption"], period["feedback_dates"]) == (round(3 / 6, 4), 2)
    assert value.period(churn, paths, dt.date(2026, 3, 1), dt.date(2026, 3, 4))["adoption"] == 0.75


def test_a_bad_feedback_file_is_rejected_with_its_reason_and_kept(churn, paths):
    _served(churn, paths, "2026-03-01", ["a", "b"])
    _feedback(churn, paths, "2026-03-01", "customer_id,did_act\na,yes\n")
    before = (paths.data_root / churn.business.adoption.directory / "2026-03-01.csv").read_bytes()
    out = value.record_adoption(churn, paths, dt.date(2026, 3, 2))
    assert out["recorded"] == [] and "no column acted" in out["rejected"][0]["reason"]
    assert out["rejected"][0]["file"].endswith("2026-03-01.csv")
    assert (paths.data_root / churn.business.adoption.directory / "2026-03-01.csv").read_bytes() == before
    assert value.adoption_history(paths, churn.id) == []


def test_weeks_and_months_cover_the_period_exactly_once():
    start, end = dt.date(2026, 2, 25), dt.date(2026, 3, 10)
    weeks, months = _periods(start, end, "week"), _periods(start, end, "month")
    assert [w[0] for w in weeks] == ["2026-W09", "2026-W10", "2026-W11"]
    assert [(m[0], m[1], m[2]) for m in months] == [("2026-02", start, dt.date(2026, 2, 28)),
                                                   ("2026-03", dt.date(2026, 3, 1), end)]
    for periods in (weeks, months):
        days = [a + dt.timedelta(days=i) for _, a, b in periods for i in range((b - a).days + 1)]
        assert days == [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


GOOD_BINARY = {"value_per_true_positive": 10, "cost_per_false_positive": 1, "cost_per_false_negative": 5}


@pytest.mark.parametrize(("source", "business", "field", "words"), [
    ("demand_retail", {"value_per_true_positive": 5, "cost_per_unit_error": 1}, "business.value_per_true_positive",
     "problem_type is regression"),
    ("demand_retail", {"minutes_saved_per_decision": 1}, "business.cost_per_unit_error", "required for regression"),
    ("churn_telco", {**GOOD_BINARY, "cost_per_unit_error": 2}, "business.cost_per_unit_error",
     "applies to regression"),
    ("churn_telco", {"value_per_true_positive": 10, "cost_per_false_positive": 1}, "business.cost_per_false_negative",
     "required for binary classification"),
    ("churn_telco", {**GOOD_BINARY, "cost_per_false_positive": -1}, "business.cost_per_false_positive",
     "greater than or equal to 0"),
    ("churn_telco", {**GOOD_BINARY, "value_per_tp": 3}, "business.value_per_tp", "Extra inputs"),
    ("churn_telco", {**GOOD_BINARY, "currency": "euro"}, "business.currency", "pattern"),
    ("churn_telco", {**GOOD_BINARY, "adoption": {"directory": "../outside"}}, "business.adoption.directory", ""),
])
def test_a_business_block_that_does_not_fit_names_the_file_and_field(tmp_path, source, business, field, words):
    path = _with_business(tmp_path, source, business)
    with pytest.raises(EngagementConfigError) as caught:
        load_engagement(path)
    assert (caught.value.path, caught.value.field) == (str(path), field), caught.value
    assert words in caught.value.reason


def test_a_multiclass_engagement_cannot_price_true_positives_and_the_others_still_load(tmp_path):
    governance = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())["governance"]
    governance.pop("fairness")  # selection-rate fairness needs binary classification too
    bad = _with_business(tmp_path, "churn_telco", GOOD_BINARY, problem_type="multiclass_classification",
                         performance={"metric": "accuracy", "threshold": 0.6}, governance=governance,
                         promotion={"metric": "accuracy", "min_improvement": 0.0})
    good = _with_business(tmp_path, "demand_retail", {"cost_per_unit_error": 1.0})
    engagements, errors = load_all(tmp_path)
    assert set(engagements) == {good.stem} and [(e.path, e.field) for e in errors] == [(str(bad), "business")]
