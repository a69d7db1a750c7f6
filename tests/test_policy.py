from __future__ import annotations

import datetime as dt

from steward import policy


def _drift(share, flagged):
    return {"drift_share": share, "share_threshold": 0.5, "dataset_drift": flagged, "drifted_features": ["a"]}


def _perf(value, rows=1000, metric="roc_auc"):
    return {"metrics": {metric: value}, "rows": rows}


def test_keep_when_nothing_fires(churn):
    d = policy.decide_retrain(churn, drift=_drift(0.1, False), performance=_perf(0.85), champion_age_days=1)
    assert d.action == "keep" and d.triggers == []


def test_each_trigger_fires_with_a_reason(churn):
    d = policy.decide_retrain(churn, drift=_drift(0.67, True), performance=_perf(0.5), champion_age_days=9)
    assert d.action == "retrain"
    assert d.triggers == ["drift", "performance", "schedule"]
    assert any("roc_auc=0.5000 vs floor 0.7" in r for r in d.reasons)


def test_too_few_labels_is_not_judged(churn):
    d = policy.decide_retrain(churn, drift=None, performance=_perf(0.1, rows=5), champion_age_days=0)
    assert d.action == "keep" and "not judged" in d.reasons[0]


def test_error_metric_threshold_is_a_ceiling(demand):
    high = policy.decide_retrain(demand, drift=None, performance=_perf(30.0, metric="rmse"), champion_age_days=0)
    low = policy.decide_retrain(demand, drift=None, performance=_perf(5.0, metric="rmse"), champion_age_days=0)
    assert high.triggers == ["performance"] and low.action == "keep"


def _ev(eng, gain, se, champion=0.70, rows=500, nights=3):
    """A judged evidence dict (steward.models.evidence.judged) for a gain of `gain` with standard error `se`."""
    from steward.config import lower_is_better
    from steward.models import evidence

    metric = eng.promotion.metric
    challenger = champion - gain if lower_is_better(metric) else champion + gain
    return evidence.judged(eng, evidence.Evidence(metric=metric, rows=rows, nights=nights, challenger=challenger,
                                                  champion=champion, gain=gain, se=se, method="test"))


def test_gate_promotes_only_when_the_lower_bound_clears_the_margin(churn):
    kw = dict(champion_version=1, challenger_version=2)
    zero = churn.model_copy(update={"promotion": churn.promotion.model_copy(update={"shadow_nights": 0})})
    # margin 0.01, alpha 0.1 over 15 looks: z = 2.47; a gain of +0.05 with se 0.01 has lower bound +0.025
    clear = policy.gate(zero, evidence=_ev(zero, 0.05, 0.01), **kw)
    assert clear.action == "promote" and "clears the margin, promoted" in clear.reasons[0]
    assert "minimum detectable effect on these rows 0.0332" in clear.reasons[0]
    # the same gain on fewer rows (se 0.02): lower bound -0.0044, not conclusive: wait in shadow
    assert policy.gate(zero, evidence=_ev(zero, 0.05, 0.02), **kw).action == "wait"
    # with shadow_nights 2 even a conclusive holdout waits for two labelled nights after the gate
    two = churn.model_copy(update={"promotion": churn.promotion.model_copy(update={"shadow_nights": 2})})
    waits = policy.gate(two, evidence=_ev(two, 0.05, 0.01), **kw)
    assert waits.action == "wait" and "0 of the 2 labelled nights" in waits.reasons[0]


def test_gate_lower_is_better(demand):
    kw = dict(champion_version=3, challenger_version=4)
    demand = demand.model_copy(update={"promotion": demand.promotion.model_copy(update={"shadow_nights": 0})})
    assert policy.gate(demand, evidence=_ev(demand, 2.0, 0.3, champion=10.0), **kw).action == "promote"
    # an RMSE 0.1 lower on rows that could see 0.2 (2% of 10): the gain worth finding is ruled out
    ruled_out = policy.gate(demand, evidence=_ev(demand, 0.1, 0.01, champion=10.0), **kw)
    assert ruled_out.action == "refuse" and "rules out a gain of 0.2000" in ruled_out.reasons[0]


def test_gate_retires_what_the_rows_rule_out_and_what_they_could_see_but_do_not(churn):
    kw = dict(champion_version=1, challenger_version=2)
    worse = policy.gate(churn, evidence=_ev(churn, -0.03, 0.005), **kw)
    assert worse.action == "refuse" and "rules out a gain of 0.0200 over the margin" in worse.reasons[0]
    # +0.02 with se 0.006: bounds [+0.005, +0.035] neither clear the margin 0.01 nor rule out 0.01 + 0.02, but
    # the rows could detect +0.02 (minimum detectable effect 0.0199)
    seen = policy.gate(churn, evidence=_ev(churn, 0.02, 0.006), **kw)
    assert seen.action == "refuse" and "could detect a gain of 0.0200 and do not show one" in seen.reasons[0]


def test_champion_never_moves_backwards(churn):
    d = policy.gate(churn, champion_version=5, challenger_version=3, evidence=_ev(churn, 0.3, 0.001))
    assert d.action == "refuse" and "never moves backwards" in d.reasons[0]


def test_a_gate_without_evidence_refuses_with_the_reason(churn):
    d = policy.gate(churn, champion_version=1, challenger_version=2, evidence=None, holdout_rows=40,
                    why_not_comparable="one class only (0: 40)")
    assert d.action == "refuse" and "one class only (0: 40)" in d.reasons[0]


def test_drift_response_retrain_adds_the_drift_trigger(churn):
    from steward.config import Engagement

    raw = churn.model_dump()
    raw["retraining"]["triggers"] = ["schedule"]
    quiet = Engagement.model_validate(raw)
    raw["responses"] = {"drift": "retrain"}
    responsive = Engagement.model_validate(raw)
    drift = {"drift_share": 0.67, "share_threshold": 0.5, "dataset_drift": True, "drifted_features": ["a", "b"]}
    assert policy.decide_retrain(quiet, drift=drift, performance=None, champion_age_days=0).action == "keep"
    decision = policy.decide_retrain(responsive, drift=drift, performance=None, champion_age_days=0)
    assert (decision.action, decision.triggers) == ("retrain", ["drift"])


def _shadow(eng, evidence, unseen, day="2026-03-14", needed=2, max_days=14):
    import datetime as dt

    eng = eng.model_copy(update={"promotion": eng.promotion.model_copy(
        update={"shadow_nights": needed, "shadow_max_days": max_days})})
    return policy.shadow_verdict(eng, challenger_version=3, champion_version=2, since=dt.date(2026, 3, 10),
                                 day=dt.date.fromisoformat(day), evidence=None if evidence is None else
                                 {**evidence, "looks": 1}, unseen_nights=unseen)


def test_shadow_promotes_on_pooled_evidence_after_its_nights(churn):
    promoted = _shadow(churn, _ev(churn, 0.06, 0.01, rows=900, nights=4), unseen=2)
    assert promoted.action == "promote" and "in shadow since 2026-03-10" in promoted.reasons[0]
    assert "900 labelled rows of 4 night(s)" in promoted.reasons[0]
    assert _shadow(churn, _ev(churn, 0.06, 0.01), unseen=1).action == "wait"  # 1 of 2 nights after the gate
    assert _shadow(churn, _ev(churn, 0.03, 0.02), unseen=3).action == "wait"  # not conclusive yet


def test_shadow_retires_when_the_evidence_rules_the_gain_out_not_on_one_lost_night(churn, demand):
    assert _shadow(churn, _ev(churn, -0.04, 0.01), unseen=1).action == "refuse"
    assert _shadow(demand, _ev(demand, -1.0, 0.2, champion=10.0), unseen=1).action == "refuse"  # RMSE 1 higher


def test_a_shadow_without_labels_expires(churn):
    assert _shadow(churn, None, 0, day="2026-03-23").action == "wait"
    expired = _shadow(churn, None, 0, day="2026-03-24")  # 14 days after 03-10
    assert expired.action == "refuse" and "14 days after the gate" in expired.reasons[0]
    inconclusive = _shadow(churn, _ev(churn, 0.03, 0.02), unseen=5, day="2026-03-24")
    assert inconclusive.action == "refuse" and "not conclusive 14 days after the gate" in inconclusive.reasons[0]


def test_the_refit_baseline_beating_the_champion_trains_a_candidate(churn):
    refit = churn.model_copy(update={"retraining": churn.retraining.model_copy(update={"triggers": ["refit"]})})
    beats = policy.decide_retrain(refit, drift=None, performance=None, champion_age_days=8,
                                  refit_evidence=_ev(refit, 0.05, 0.01, rows=800, nights=10))
    assert beats.triggers == ["refit"] and "a refit on the labels known beats the champion" in beats.reasons[-1]
    # at most as often as the periodic refit itself: a model trained 3 days ago is not refitted yet
    recent = policy.decide_retrain(refit, drift=None, performance=None, champion_age_days=3,
                                   refit_evidence=_ev(refit, 0.05, 0.01, rows=800, nights=10))
    assert recent.action == "keep" and "at most every 7 days" in recent.reasons[-1]
    # counted from the champion, not from a candidate trained since for another trigger
    assert policy.decide_retrain(refit, drift=None, performance=None, champion_age_days=2, champion_days=9,
                                 refit_evidence=_ev(refit, 0.05, 0.01, rows=800, nights=10)).triggers == ["refit"]
    noise = policy.decide_retrain(refit, drift=None, performance=None, champion_age_days=1,
                                  refit_evidence=_ev(refit, 0.01, 0.01))
    assert noise.action == "keep" and "no evidence yet" in noise.reasons[-1]
    # an engagement that does not list the trigger is not retrained by it
    quiet = churn.model_copy(update={"retraining": churn.retraining.model_copy(update={"triggers": ["schedule"]})})
    assert policy.decide_retrain(quiet, drift=None, performance=None, champion_age_days=1,
                                 refit_evidence=_ev(quiet, 0.05, 0.01)).action == "keep"


def test_a_candidate_of_the_refit_trigger_needs_no_shadow_nights_and_a_holdout_that_does_not_contradict(churn):
    """ADR 0026: the refit trigger already showed the recipe beats the champion on nights neither had seen; the
    candidate's holdout only has to not show it is no better."""
    two = churn.model_copy(update={"promotion": churn.promotion.model_copy(update={"shadow_nights": 2})})
    kw = dict(champion_version=1, challenger_version=2, evidence=_ev(two, 0.05, 0.01))
    assert policy.gate(two, **kw).action == "wait"
    proven = policy.gate(two, refit_proven=True, **kw)
    assert proven.action == "promote" and "trained on the refit trigger" in proven.reasons[0]
    vague = dict(champion_version=1, challenger_version=2, evidence=_ev(two, 0.02, 0.03))
    assert policy.gate(two, **vague).action == "wait"  # any other trigger: not conclusive, into shadow
    assert policy.gate(two, refit_proven=True, **vague).action == "promote"  # not contradicted
    worse = policy.gate(two, refit_proven=True, champion_version=1, challenger_version=2,
                        evidence=_ev(two, -0.004, 0.03))  # wide bounds, but the champion did better on it
    assert worse.action == "refuse" and "points the other way" in worse.reasons[0]
    # fairness is checked first, whatever the trigger
    assert policy.gate(two, refit_proven=True, fairness_gap=("payment_method", 0.9), **kw).action == "refuse"


def test_a_holdout_under_the_labelled_rows_floor_cannot_wave_a_candidate_through(churn):
    """ADR 0035: "not contradicted" needs rows that could contradict. Under `performance.min_labelled_rows` (200
    for churn_telco) a refit or growth candidate is judged like any challenger: into shadow when inconclusive,
    promoted when conclusive, refused when its upper bound rules out the gain."""
    assert churn.performance.min_labelled_rows == 200
    kw = dict(champion_version=1, challenger_version=2)
    for fast in ({"refit_proven": True}, {"grown": True}):
        at_floor = policy.gate(churn, evidence=_ev(churn, 0.002, 0.03, rows=200), **fast, **kw)
        assert at_floor.action == "promote" and "does not contradict it" in at_floor.reasons[0]
        small = policy.gate(churn, evidence=_ev(churn, 0.002, 0.03, rows=199), **fast, **kw)
        assert small.action == "wait", small.reasons
        assert "199 labelled rows, under the 200" in small.reasons[0] and "judged like any challenger" in small.reasons[0]
        clear = policy.gate(churn, evidence=_ev(churn, 0.06, 0.01, rows=82), **fast, **kw)
        assert clear.action == "promote" and "judged like any challenger" in clear.reasons[0]


def test_labelled_data_that_doubled_trains_a_candidate_at_most_once_per_refit_period(churn):
    """ADR 0028: the champion learnt from 1,200 rows; 1,300 labelled rows it never saw fire `growth`."""
    grow = churn.model_copy(update={"retraining": churn.retraining.model_copy(update={"triggers": ["growth"]})})
    grown = {"new_rows": 1300, "nights": 7, "champion_rows": 1200}
    fired = policy.decide_retrain(grow, drift=None, performance=None, champion_age_days=8, champion_days=8,
                                  growth=grown)
    assert fired.triggers == ["growth"] and "1300 labelled rows of 7 night(s)" in fired.reasons[-1]
    short = policy.decide_retrain(grow, drift=None, performance=None, champion_age_days=8, champion_days=8,
                                  growth={**grown, "new_rows": 1100})
    assert short.action == "keep"
    recent = policy.decide_retrain(grow, drift=None, performance=None, champion_age_days=3, champion_days=3,
                                   growth=grown)
    assert recent.action == "keep" and "at most every 7 days" in recent.reasons[-1]
    half = grow.model_copy(update={"retraining": grow.retraining.model_copy(update={"growth_factor": 0.5})})
    assert policy.decide_retrain(half, drift=None, performance=None, champion_age_days=8, champion_days=8,
                                 growth={**grown, "new_rows": 700}).triggers == ["growth"]
    assert policy.decide_retrain(churn.model_copy(update={"retraining": churn.retraining.model_copy(
        update={"triggers": ["schedule"]})}), drift=None, performance=None, champion_age_days=1,
        growth=grown).action == "keep"


def test_a_growth_candidate_is_promoted_at_the_gate_unless_its_holdout_contradicts_it(churn):
    """ADR 0034: the same recipe on more of the same feed; its holdout only has to not point the other way."""
    two = churn.model_copy(update={"promotion": churn.promotion.model_copy(update={"shadow_nights": 2})})
    kw = dict(champion_version=1, challenger_version=2)
    assert policy.grown_only(["growth", "schedule"]) and not policy.grown_only(["growth", "drift"])
    clear = policy.gate(two, grown=True, evidence=_ev(two, 0.05, 0.01), **kw)
    assert clear.action == "promote" and "labelled data grew" in clear.reasons[0]
    assert policy.gate(two, evidence=_ev(two, 0.05, 0.01), **kw).action == "wait"  # any other trigger: shadow
    vague = policy.gate(two, grown=True, evidence=_ev(two, 0.002, 0.03), **kw)
    assert vague.action == "promote" and "does not contradict it" in vague.reasons[0]
    assert policy.gate(two, evidence=_ev(two, 0.002, 0.03), **kw).action == "wait"
    worse = policy.gate(two, grown=True, evidence=_ev(two, -0.002, 0.03), **kw)
    assert worse.action == "refuse" and "points the other way" in worse.reasons[0]


def test_a_challenger_in_shadow_holds_every_trigger_but_the_refit_which_supersedes_it():
    shadow = policy.InShadow(version=4, since="2026-03-10")
    drift = policy.Decision("retrain", ["dataset drift"], ["drift"])
    held = policy.facing_shadow(drift, shadow)
    assert held.action == "shadow" and held.deferred == ["drift"] and "v4 is in shadow since 2026-03-10" in held.reasons[-1]
    refit = policy.Decision("retrain", ["the refit beats the champion"], ["refit"])
    assert policy.facing_shadow(refit, shadow) is refit and policy.supersedes(refit, shadow)
    trained = policy.with_training_problems(refit, [], shadow)
    assert trained.action == "retrain" and "supersedes challenger v4" in trained.reasons[-1]
    blocked = policy.with_training_problems(refit, ["cooldown: 1 day"], shadow)
    assert blocked.action == "shadow" and blocked.deferred == ["refit"] and blocked.reasons[-1].endswith("cooldown: 1 day")
    alone = policy.with_training_problems(drift, ["no labelled batch"], None)
    assert alone.action == "keep" and alone.deferred == ["drift"]
    assert policy.with_training_problems(drift, [], None) is drift


def test_quiet_nights_share_a_budget_of_candidates_and_an_alarm_lifts_it(churn):
    """ADR 0034: on nights nothing alarmed on, growth and the refit's evidence train at most
    `max_quiet_candidates_per_30_days` versions in any 30 days; drift, a breach or a data-quality alarm do not
    count against it, and are not held by it."""
    grew = policy.Decision("retrain", ["grew"], ["growth"])
    assert policy.is_quiet(grew, None) and policy.is_quiet(policy.Decision("retrain", [], ["refit"]), {})
    assert not policy.is_quiet(policy.Decision("retrain", [], ["drift", "refit"]), None)
    assert not policy.is_quiet(policy.Decision("keep", [], [], deferred=["drift"]), None)  # drift acted on: alarming
    assert not policy.is_quiet(grew, {"alarm_columns": ["income"]})
    day = churn.start_date + dt.timedelta(days=40)
    spent = policy.TrainingHistory(candidates_last_30_days=2, quiet_candidates_last_30_days=2)
    # unset (files written before ADR 0034): quiet nights share the candidate budget only
    assert churn.retraining.max_quiet_candidates_per_30_days is None
    assert policy.why_no_candidate(churn, day, ["growth"], "new", spent, quiet=True) == []
    two = churn.model_copy(update={"retraining": churn.retraining.model_copy(
        update={"max_quiet_candidates_per_30_days": 2})})
    held = policy.why_no_candidate(two, day, ["growth"], "new", spent, quiet=True)
    assert held and "quiet-night budget spent: 2 candidates" in held[0]
    assert policy.why_no_candidate(two, day, ["drift"], "new", spent, quiet=False) == []
    one = policy.TrainingHistory(candidates_last_30_days=3, quiet_candidates_last_30_days=1)
    assert policy.why_no_candidate(two, day, ["growth"], "new", one, quiet=True) == []
