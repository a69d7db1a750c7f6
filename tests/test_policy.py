from __future__ import annotations

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


def test_gate_promotes_only_with_margin(churn):
    kw = dict(champion_version=1, champion_score=0.80, challenger_version=2, holdout_rows=400)
    assert policy.gate(churn, challenger_score=0.82, **kw).action == "promote"
    refused = policy.gate(churn, challenger_score=0.805, **kw)
    assert refused.action == "refuse" and "not better enough" in refused.reasons[0]


def test_gate_lower_is_better(demand):
    kw = dict(champion_version=3, champion_score=10.0, challenger_version=4, holdout_rows=400)
    assert policy.gate(demand, challenger_score=9.0, **kw).action == "promote"
    assert policy.gate(demand, challenger_score=9.8, **kw).action == "refuse"


def test_champion_never_moves_backwards(churn):
    d = policy.gate(churn, champion_version=5, champion_score=0.5, challenger_version=3, challenger_score=0.99,
                    holdout_rows=10)
    assert d.action == "refuse" and "never moves backwards" in d.reasons[0]


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


def test_gate_refuses_a_gain_the_holdout_cannot_confirm(churn):
    kw = dict(champion_version=1, champion_score=0.80, challenger_version=2, challenger_score=0.84, holdout_rows=60)
    noise = policy.gate(churn, win_share=0.7, **kw)
    assert noise.action == "refuse" and "wins on only 70% of paired bootstrap resamples" in noise.reasons[0]
    confirmed = policy.gate(churn, win_share=0.97, **kw)
    assert confirmed.action == "promote" and "wins on 97%" in confirmed.reasons[0]


def test_gate_refuses_a_challenger_that_loses_one_night_of_an_out_of_time_holdout(churn, demand):
    kw = dict(champion_version=1, champion_score=0.70, challenger_version=2, challenger_score=0.76, holdout_rows=900,
              win_share=1.0)
    nights = {"2013-02-25": {"challenger": 0.80, "champion": 0.70}, "2013-02-26": {"challenger": 0.69, "champion": 0.71}}
    split = policy.gate(churn, scores_by_batch=nights, **kw)
    assert split.action == "refuse" and "2013-02-26 (0.6900 vs 0.7100)" in split.reasons[0]
    assert "2013-02-25" not in split.reasons[0]
    nights["2013-02-26"] = {"challenger": 0.72, "champion": 0.71}
    assert policy.gate(churn, scores_by_batch=nights, **kw).action == "promote"
    nights["2013-02-26"] = {"challenger": None, "champion": 0.71}  # not computable that night: not a loss
    assert policy.gate(churn, scores_by_batch=nights, **kw).action == "promote"
    # lower is better: a night with a higher error is a lost night
    kw = dict(champion_version=1, champion_score=30.0, challenger_version=2, challenger_score=20.0, holdout_rows=900,
              win_share=1.0)
    lost = {"d1": {"challenger": 18.0, "champion": 30.0}, "d2": {"challenger": 31.0, "champion": 30.0}}
    assert policy.gate(demand, scores_by_batch=lost, **kw).action == "refuse"


def test_win_share_is_a_paired_bootstrap(churn):
    import numpy as np

    from steward import demo, metrics, training

    rng = np.random.default_rng(3)
    train = training.labelled(churn, demo._churn_frame(rng, 1500, 0, 0.0, False))
    holdout = training.labelled(churn, demo._churn_frame(rng, 400, 5000, 0.0, False))
    good = training.train(churn, train)
    shuffled = train.assign(churned=rng.permutation(train["churned"].to_numpy()))
    bad = training.train(churn, shuffled)  # learnt nothing: labels shuffled
    assert metrics.win_share(churn, "roc_auc", good, bad, holdout) > 0.99
    assert metrics.win_share(churn, "roc_auc", bad, good, holdout) < 0.01
    assert metrics.win_share(churn, "roc_auc", good, good, holdout) == 0.0  # a tie is not a win
    assert metrics.win_share(churn, "roc_auc", good, bad, holdout.iloc[:0]) is None


def _shadow(eng, nights, pooled, day="2026-03-14", needed=2, max_days=14):
    import datetime as dt

    eng = eng.model_copy(update={"promotion": eng.promotion.model_copy(
        update={"shadow_nights": needed, "shadow_max_days": max_days})})
    return policy.shadow_verdict(eng, challenger_version=3, champion_version=2, since=dt.date(2026, 3, 10),
                                 day=dt.date.fromisoformat(day), nights=nights, pooled=pooled)


def _night(challenger, champion, rows=100):
    return {"challenger": challenger, "champion": champion, "rows": rows}


def test_shadow_promotes_only_after_winning_every_unseen_night_by_the_margin(churn):
    both = {"2026-03-11": _night(0.80, 0.70), "2026-03-12": _night(0.78, 0.72)}
    promoted = _shadow(churn, both, _night(0.79, 0.71, 200))
    assert promoted.action == "promote" and "2026-03-11 0.8000 vs 0.7000" in promoted.reasons[0]
    waiting = _shadow(churn, {"2026-03-11": _night(0.80, 0.70)}, None)  # one of two nights so far
    assert waiting.action == "wait" and "1 of 2 nights judged" in waiting.reasons[0]
    small = _shadow(churn, both, _night(0.715, 0.71, 200))  # won both nights, but +0.005 < margin 0.01
    assert small.action == "refuse" and "not better enough" in small.reasons[0]


def test_shadow_retires_on_the_first_lost_night_and_skips_nights_it_cannot_judge(churn, demand):
    lost = _shadow(churn, {"2026-03-11": _night(0.65, 0.70)}, None)
    assert lost.action == "refuse" and "it lost 2026-03-11" in lost.reasons[0]
    one_class = {"2026-03-11": _night(None, None), "2026-03-12": _night(0.8, 0.7)}  # a one-class label day
    assert _shadow(churn, one_class, None).action == "wait"
    # lower is better for an error metric: a higher RMSE on an unseen night is a loss
    rmse = _shadow(demand, {"2026-03-11": _night(12.0, 10.0)}, None)
    assert rmse.action == "refuse"
    # only the first `shadow_nights` judged nights count: a later loss does not reopen a settled verdict
    later = {"2026-03-11": _night(0.8, 0.7), "2026-03-12": _night(0.8, 0.7), "2026-03-13": _night(0.5, 0.9)}
    assert _shadow(churn, later, _night(0.8, 0.7, 200)).action == "promote"


def test_a_shadow_without_labels_expires(churn):
    assert _shadow(churn, {}, None, day="2026-03-23").action == "wait"
    expired = _shadow(churn, {}, None, day="2026-03-24")  # 14 days after 03-10
    assert expired.action == "refuse" and "0 of 2 nights judged after 14 days" in expired.reasons[0]


def test_a_shadow_period_switched_off_lets_the_gate_verdict_stand(churn):
    promoted = _shadow(churn, {"2026-03-11": _night(0.5, 0.9)}, None, needed=0)
    assert promoted.action == "promote" and "shadow_nights is now 0" in promoted.reasons[0]
