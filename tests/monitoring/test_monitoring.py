"""The statistics and rules behind the alarm budget (ADR 0012), without a DAG: multiple-testing correction,
effect size AND significance, when a candidate is not trained, persistence, pooled SLA windows."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from steward import demo, policy
from steward.config import Engagement
from steward.monitoring import drift, outcomes
from steward.monitoring import windows as monitoring

DAY = dt.date(2026, 3, 20)


def test_benjamini_hochberg_and_bonferroni_match_the_textbook():
    p = [0.01, 0.04, 0.03, 0.005]
    # BH: sorted 0.005, 0.01, 0.03, 0.04 -> *4/1, *4/2, *4/3, *4/4 = 0.02, 0.02, 0.04, 0.04 (step-up minimum)
    assert drift.correct(p, "benjamini_hochberg") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert drift.correct(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert drift.correct(p, "none") == p
    assert drift.correct([0.3], "bonferroni") == [0.3]
    assert max(drift.correct([0.9, 0.95, 0.99], "benjamini_hochberg")) <= 1.0


def _frames(rows: int, shift: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    ref = demo._churn_frame(np.random.default_rng(1), 3000, 0, 0.0, False)
    cur = demo._churn_frame(np.random.default_rng(seed), rows, 10_000, shift, False)
    for f in (ref, cur):
        f["prediction"] = 0.5
    return ref, cur


def test_small_nights_do_not_drift_on_noise_but_a_real_shift_does(churn, tmp_path):
    """24 rows from the reference's own distribution: the distances are large (noise), the test is not
    significant, so nothing drifts. A real shift on the same 24 rows size is caught."""
    false_alarms = distance_alone = 0
    for seed in range(8):
        ref, cur = _frames(24, 0.0, 100 + seed)
        result = drift.detect_drift(churn, ref, cur, tmp_path / str(seed))
        false_alarms += result["dataset_drift"]
        distance_alone += sum(e["score"] >= e["threshold"] for e in result["features"].values())
    assert false_alarms == 0
    assert distance_alone >= 8  # the distance alone would have raised alarms on pure noise
    ref, cur = _frames(300, 1.0, 7)
    shifted = drift.detect_drift(churn, ref, cur, tmp_path / "shift")
    assert shifted["dataset_drift"] and shifted["correction"] == "benjamini_hochberg"
    entry = shifted["features"]["monthly_charges"]
    assert entry["drifted"] and entry["p_value_corrected"] < entry["significance"] == 0.01
    assert entry["score"] >= entry["threshold"]


def test_a_huge_night_does_not_drift_on_trivia(churn, tmp_path):
    """100,000 rows: a tiny shift is significant, but its effect is below the minimum: no drift."""
    ref = demo._churn_frame(np.random.default_rng(1), 20_000, 0, 0.0, False)
    cur = demo._churn_frame(np.random.default_rng(2), 20_000, 100_000, 0.0, False)
    cur["monthly_charges"] = cur["monthly_charges"] + 1.0  # 1 unit on a 20-unit spread
    for f in (ref, cur):
        f["prediction"] = 0.5
    entry = drift.detect_drift(churn, ref, cur, tmp_path)["features"]["monthly_charges"]
    assert entry["p_value_corrected"] < 0.01 and entry["score"] < entry["threshold"] and not entry["drifted"]


def _history(**kw) -> policy.TrainingHistory:
    last = policy.Candidate(version=4, day=DAY - dt.timedelta(days=kw.pop("days_ago", 1)),
                            triggers=tuple(kw.pop("triggers", ("drift",))), fingerprint=kw.pop("fingerprint", "old"))
    return policy.TrainingHistory(last_candidate=last, candidates_last_30_days=kw.pop("recent", 1))


def test_no_candidate_without_new_information(churn: Engagement):
    assert policy.why_no_candidate(churn, DAY, ["drift"], "new", policy.TrainingHistory()) == []
    same_data = policy.why_no_candidate(churn, DAY, ["drift"], "old", _history(days_ago=10))
    assert len(same_data) == 1 and "no new labelled rows since candidate v4" in same_data[0]
    cooling = policy.why_no_candidate(churn, DAY, ["drift"], "new", _history(days_ago=1))
    assert len(cooling) == 1 and cooling[0].startswith("cooldown: candidate v4 was trained 1 day(s) ago")
    # a trigger that was not firing at the last candidate is new information: no cooldown for it
    assert policy.why_no_candidate(churn, DAY, ["drift", "performance"], "new", _history(days_ago=1)) == []
    assert policy.why_no_candidate(churn, DAY, ["drift"], "new", _history(days_ago=churn.retraining.min_days_between)) == []
    spent = policy.why_no_candidate(churn, DAY, ["performance"], "new", _history(days_ago=9, recent=4))
    assert len(spent) == 1 and spent[0].startswith("budget spent: 4 candidates in the last 30 days")


def test_drift_that_has_not_persisted_does_not_retrain(churn: Engagement):
    base = {"drift_share": 0.67, "share_threshold": 0.5, "dataset_drift": True, "drifted_features": ["a", "b"]}
    blip = policy.decide_retrain(churn, drift={**base, "persistent": False, "persistence": {
        "nights_drifted": 1, "of_last": 3, "needs": 2}}, performance=None, champion_age_days=1)
    assert blip.action == "keep" and "it must hold on 2 before it retrains" in blip.reasons[0]
    held = policy.decide_retrain(churn, drift={**base, "persistent": True, "persistence": {
        "nights_drifted": 2, "of_last": 3, "needs": 2}}, performance=None, champion_age_days=1)
    assert held.triggers == ["drift"] and "on 2 of the last 3 nights" in held.reasons[0]
    waiting = policy.decide_retrain(churn, drift={**base, "state": "not_enough_data", "dataset_drift": False,
                                                  "reason": "not enough data yet: 20 rows"},
                                    performance=None, champion_age_days=1)
    assert waiting.action == "keep" and "not enough data yet" in waiting.reasons[0]


def test_persistence_counts_judged_nights_against_the_same_reference(churn: Engagement, paths):
    window = {"rows": 1500, "nights": ["x"]}
    ref_a = {"kind": "reference_file", "model_version": 1, "sha256": "a" * 64}
    ref_b = {"kind": "champion_training_data", "model_version": 2, "sha256": "b" * 64}
    nights = [(1, True, ref_a, "judged"), (2, True, ref_a, "judged"), (3, True, ref_b, "judged"),
              (4, False, ref_b, "not_enough_data"), (5, True, ref_b, "judged")]
    for day, drifted, ref, state in nights:
        monitoring.record_night(churn, paths, DAY + dt.timedelta(days=day),
                                {"state": state, "dataset_drift": drifted, "drift_share": 0.6}, window, ref)
    on_b = monitoring.persistence(churn, paths, DAY + dt.timedelta(days=5), ref_b["sha256"])
    assert on_b["drifted_nights"] == ["2026-03-23", "2026-03-25"] and on_b["persistent"]  # night 4 not judged
    on_b_before = monitoring.persistence(churn, paths, DAY + dt.timedelta(days=3), ref_b["sha256"])
    assert on_b_before["nights_drifted"] == 1 and not on_b_before["persistent"]  # a new reference starts over


def test_small_label_days_are_pooled_for_the_sla():
    known = [{"prediction_date": f"2026-03-{d:02d}", "labelled_rows": 25, "realised_value": 0.8} for d in range(1, 11)]
    window = outcomes.pooled_window(known, days=3, max_days=30, min_rows=100)
    assert [r["prediction_date"] for r in window] == ["2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10"]
    assert len(outcomes.pooled_window(known, days=3, max_days=5, min_rows=1000)) == 5  # capped
    big = [{**r, "labelled_rows": 500} for r in known]
    assert len(outcomes.pooled_window(big, days=3, max_days=30, min_rows=100)) == 3


def test_the_ui_says_not_enough_data_yet_and_what_drift_was_judged_against():
    from steward.airflow import ui

    assert "not enough data yet" in ui._drift_cell({"drift_state": "not_enough_data", "drift_share": 0.0})
    cell = ui._drift_cell({"drift_state": "judged", "drift_share": 0.67, "dataset_drift": True,
                           "drift_persistent": False, "drift_reference": "v4 training data (1500 rows)"})
    assert "DRIFT" not in cell and "drift (1 night)" in cell and "vs v4 training data (1500 rows)" in cell
    assert "DRIFT" in ui._drift_cell({"drift_state": "judged", "drift_share": 0.67, "dataset_drift": True,
                                      "drift_persistent": True})


def test_drift_already_acted_on_is_not_new_information():
    last = policy.Candidate(version=7, day=DAY - dt.timedelta(days=9), triggers=("drift",), fingerprint="f",
                            drift_reference="a" * 64)
    drift_only = policy.Decision("retrain", ["dataset drift ..."], ["drift"])
    kept = policy.without_acted_drift(drift_only, last, "a" * 64)
    assert kept.action == "keep" and kept.deferred == ["drift"] and "drift already acted on: candidate v7" in kept.reasons[-1]
    both = policy.without_acted_drift(policy.Decision("retrain", [], ["drift", "performance"]), last, "a" * 64)
    assert both.action == "retrain" and both.triggers == ["performance"] and both.deferred == ["drift"]
    assert policy.without_acted_drift(drift_only, last, "b" * 64) == drift_only  # a new champion: new reference
    schedule = policy.Candidate(version=7, day=last.day, triggers=("schedule",), fingerprint="f", drift_reference="a" * 64)
    assert policy.without_acted_drift(drift_only, schedule, "a" * 64) == drift_only
    retired = policy.Candidate(version=7, day=last.day, triggers=("drift",), fingerprint="f", drift_reference="a" * 64,
                               retired_in_shadow=(DAY - dt.timedelta(days=6)).isoformat())
    assert policy.without_acted_drift(drift_only, retired, "a" * 64) == drift_only  # refuted by newer nights (ADR 0015)


def _batches(sizes: list[int]) -> dict[dt.date, pd.DataFrame]:
    out = {}
    for i, size in enumerate(sizes):
        day = DAY - dt.timedelta(days=len(sizes) - 1 - i)
        out[day] = pd.DataFrame({"customer_id": [f"{day}-{r}" for r in range(size)], "churned": [r % 2 for r in range(size)]})
    return out


def test_the_gate_holdout_is_out_of_time_by_default(churn):
    """The newest batches judge a candidate trained on the older ones: no holdout row shares a day with a
    training row, the holdout holds at least holdout_fraction of the rows, the oldest batch always trains."""
    from steward.models import training

    frames = _batches([100, 100, 100, 100, 100, 100, 100])
    train, holdout, held = training.split_window(churn, frames)
    assert held == sorted(frames)[-3:]  # 3 newest of 7 equal batches: 300 rows >= 30% of 700
    assert len(train) == 400 and len(holdout) == 300
    assert max(train["customer_id"].str[:10]) < min(holdout["customer_id"].str[:10])

    # at least two nights judge, however big the newest; the oldest batch is never held out
    big_last = _batches([10, 10, 10, 500])
    assert training.split_window(churn, big_last)[2] == sorted(big_last)[-2:]
    big_first = _batches([500, 10, 10])
    assert training.split_window(churn, big_first)[2] == sorted(big_first)[1:]


def test_a_sampled_holdout_and_a_one_batch_window_share_the_days(churn):
    from steward.models import training

    sampled = churn.model_copy(update={"retraining": churn.retraining.model_copy(update={"holdout": "sample"})})
    frames = _batches([200, 200, 200])
    train, holdout, held = training.split_window(sampled, frames)
    assert held == sorted(frames) and len(train) + len(holdout) == 600
    assert set(holdout["customer_id"].str[:10]) == {d.isoformat() for d in frames}  # every day in both
    one = _batches([300])
    train, holdout, held = training.split_window(churn, one)
    assert held == list(one) and 0 < len(holdout) < 300
    two = _batches([300, 300])  # two batches: the newest judges alone, out of time
    assert training.split_window(churn, two)[2] == [max(two)]

    # a one-class newest night cannot measure ROC AUC: an older night joins the holdout, still out of time ...
    four = _batches([100, 100, 100, 100])
    for day in sorted(four)[-2:]:  # the two newest nights: churners only
        four[day] = four[day].assign(churned=1)
    assert training.split_window(churn, four)[2] == sorted(four)[1:]
    # ... and where no older night can join, the window falls back to a share of every batch
    two[max(two)] = two[max(two)].assign(churned=1)
    train, holdout, held = training.split_window(churn, two)
    assert held == sorted(two) and holdout["churned"].nunique() == 2


def _nights(shifted: bool, count: int = 10, rows: int = 80) -> list[pd.DataFrame]:
    return [demo._churn_frame(np.random.default_rng(100 + i), rows, 20_000 + i * rows, 0.0, shifted)
            for i in range(count)]


def test_retrain_ceiling_finds_a_recoverable_concept_shift_and_none_where_nothing_changed(churn):
    """The budget's "what a retrain could recover after the shift": large after a concept shift (the
    champion's rules are reversed), near zero when the nights come from the champion's own population."""
    from steward.models import training
    from tests.realdata import budget

    kept = training.labelled(churn, demo._churn_frame(np.random.default_rng(7), 1500, 0, 0.0, False))
    champion = training.train(churn, kept)
    after_shift = budget.retrain_ceiling(churn, champion, kept, _nights(shifted=True))
    unchanged = budget.retrain_ceiling(churn, champion, kept, _nights(shifted=False))
    assert after_shift["folds"] == 5 and after_shift["champion"] < 0.5 < after_shift["shifted_only"]
    assert after_shift["best_gain"] > 0.2
    assert abs(unchanged["best_gain"]) < 0.05 and unchanged["champion"] > 0.7


def test_an_expanding_window_starts_from_the_champions_rows_weighs_by_recency_and_says_what_it_left_out(churn, paths):
    """ADR 0024: a candidate learns from the champion's own rows (the reference for the bootstrap) plus every
    accepted labelled night since; the newest nights are held out; recency weights reach the estimator; a night
    whose landed batch retention deleted is recorded as left out."""
    import datetime as dt

    from steward import demo, store
    from steward.models import training
    from steward.models.training_set import TrainingSet
    from steward.sources import batches

    demo.generate("churn_telco", paths.data_root, nights=0)  # the reference file (4000 rows)
    start = churn.start_date
    for n, day in enumerate(_land_nights(churn, paths, 5, rows=300, first_id=1_000_000)):
        store.replace_rows(paths, store.runs, {"engagement": churn.id, "logical_date": day.isoformat()}, [{
            "engagement": churn.id, "logical_date": day.isoformat(), "ledger_seq": n + 1, "airflow_run_id": f"r{n}",
            "outcome": "keep", "champion_before": 1, "champion_after": 1, "ledger_hash": "0" * 64,
            "recorded_at": dt.datetime.now(dt.UTC)}])
    batches.landed_path(churn, paths, start + dt.timedelta(days=1)).unlink()  # retention purged night 1
    night = start + dt.timedelta(days=4)
    champion = {"version": 1, "tags": {"steward.trained_for": start.isoformat()}}
    weighted = churn.model_copy(update={"retraining": churn.retraining.model_copy(
        update={"recency_half_life_days": 2.0})})
    ts = TrainingSet(weighted, paths, night, ["drift"], champion)
    assert ts.problems == [] and ts.mode == "expanding"
    assert [d for d, _ in ts.window] == [start, start + dt.timedelta(days=2), start + dt.timedelta(days=3), night]
    assert ts.holdout_days == [start + dt.timedelta(days=3), night] and len(ts.holdout) == 600
    assert len(ts.champion_rows) == 4000 and len(ts.train) == 4000 + 2 * 300
    assert ts.left_out == {(start + dt.timedelta(days=1)).isoformat(): "its landed batch is gone (purged by "
                           "retention): left out of the window"}
    # the champion's rows are as old as the champion (5 nights: weight 0.5 ** 2.5); the newest trained night's 0.5 ** 1
    assert ts.weights[0] == pytest.approx(0.5 ** 2.5) and ts.weights[-1] == pytest.approx(0.5 ** (2 / 2))
    assert ts.describe()["champion_source"]["kind"] == "reference file" and ts.describe()["left_out"]
    # ADR 0026: the version itself learns the holdout nights too; the newest night weighs 1 (age 0)
    assert len(ts.final_rows) == 4000 + 4 * 300 and len(ts.final_weights) == len(ts.final_rows)
    assert ts.final_weights[-1] == pytest.approx(1.0) and ts.final_weights[-301] == pytest.approx(0.5 ** 0.5)
    assert ts.describe()["served_fit"] == {"on": "window", "rows": 4000 + 4 * 300}
    capped = weighted.model_copy(update={"retraining": weighted.retraining.model_copy(update={"window_rows": 1000})})
    small = TrainingSet(capped, paths, night, ["drift"], champion)  # the cap keeps the newest rows of both fits
    assert len(small.train) == 1000 and len(small.final_rows) == 1000
    assert small.final_rows.iloc[-300:].reset_index(drop=True).equals(ts.final_rows.iloc[-300:].reset_index(drop=True))
    model = training.train(weighted, ts.train, ts.weights)  # the weights reach the estimator without error
    assert training.score(weighted, model, ts.holdout, "roc_auc") > 0.6
    # a sliding window without window_rows is the old behaviour: the newest window_days nights only
    sliding = churn.model_copy(update={"retraining": churn.retraining.model_copy(update={"window": "sliding"})})
    old = TrainingSet(sliding, paths, night, ["drift"], champion)
    assert old.champion_rows is None and len(old.window) == churn.retraining.window_days


def _land_nights(churn: Engagement, paths, nights: int, *, rows: int, first_id: int) -> list[dt.date]:
    """Land `nights` stable churn_telco batches from the engagement's start date (night n seeded n)."""
    from steward.sources import batches

    days = [churn.start_date + dt.timedelta(days=n) for n in range(nights)]
    for n, day in enumerate(days):
        demo._churn_frame(np.random.default_rng(n), rows, first_id + 1000 * n, 0.0, False).to_csv(
            batches.incoming_path(churn, paths, day), index=False)
        batches.land_batch(churn, paths, day)
    return days


def test_a_version_records_every_night_it_holds_so_the_next_window_starts_after_them(churn, paths):
    """ADR 0034: the nights kept beside a version are its champion's and its own; recording only its own let the
    next candidate learn the older nights once more while their labels were within the lookback."""
    import datetime as dt

    from steward import demo
    from steward.models.training_set import TrainingSet
    from steward.monitoring import reference

    demo.generate("churn_telco", paths.data_root, nights=0)
    start = churn.start_date
    _land_nights(churn, paths, 6, rows=200, first_id=3_000_000)
    bootstrap = {"version": 1, "tags": {"steward.trained_for": start.isoformat()}}
    first = TrainingSet(churn, paths, start + dt.timedelta(days=2), ["drift"], bootstrap)
    assert first.learnt_nights() == [(start + dt.timedelta(days=n)).isoformat() for n in range(3)]
    reference.keep_training_data(churn, paths, 2, first.rows, ["champion:v1", *first.learnt_nights()])
    v2 = {"version": 2, "tags": {"steward.trained_for": (start + dt.timedelta(days=2)).isoformat()}}
    second = TrainingSet(churn, paths, start + dt.timedelta(days=5), ["drift"], v2)
    assert [d for d, _ in second.window] == [start + dt.timedelta(days=n) for n in (3, 4, 5)]
    assert second.learnt_nights() == [(start + dt.timedelta(days=n)).isoformat() for n in range(6)]
    reference.keep_training_data(churn, paths, 3, second.rows, ["champion:v2", *second.learnt_nights()])
    kept = reference.kept_path(paths, churn.id, 3).with_suffix(".json")
    assert len([n for n in json.loads(kept.read_text())["window"] if not n.startswith("champion")]) == 6


def test_an_expanding_window_whose_holdout_cannot_measure_the_metric_trains_nothing_and_says_why(churn, paths):
    """Bad input (issue 30): the newest nights hold one class only; the holdout takes older nights in, and when
    none can help the window falls back to a share of every night; a one-class window is no candidate."""
    import datetime as dt

    from steward import demo
    from steward.models.training_set import TrainingSet
    from steward.sources import batches

    demo.generate("churn_telco", paths.data_root, nights=0)
    start = churn.start_date
    for n in range(3):
        frame = demo._churn_frame(np.random.default_rng(n), 200, 2_000_000 + 1000 * n, 0.0, False).assign(churned=0)
        day = start + dt.timedelta(days=n)
        frame.to_csv(batches.incoming_path(churn, paths, day), index=False)
        batches.land_batch(churn, paths, day)
    champion = {"version": 1, "tags": {"steward.trained_for": start.isoformat()}}
    ts = TrainingSet(churn, paths, start + dt.timedelta(days=2), ["drift"], champion)
    assert any("cannot measure roc_auc: one class only" in p for p in ts.problems), ts.problems
    # the champion's rows hold both classes, so the training rows are not one class: only the holdout is
    assert ts.train["churned"].nunique() == 2
