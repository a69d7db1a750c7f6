"""The counterfactual baselines (ADR 0025): a periodic refit per 7 nights outside the registry, never trained
on the night it scores, and the served model compared with both baselines on the same labelled rows."""

from __future__ import annotations

import datetime as dt

import numpy as np

from steward import demo
from steward.models import baselines, predictions, training
from steward.sources import batches


def _land(churn, paths, nights: int, shifted_from: int | None = None) -> None:
    for n in range(nights):
        day = churn.start_date + dt.timedelta(days=n)
        shifted = shifted_from is not None and n >= shifted_from
        frame = demo._churn_frame(np.random.default_rng(n), 400, 3_000_000 + 1000 * n, 1.0 if shifted else 0.0,
                                  shifted)
        frame.to_csv(batches.incoming_path(churn, paths, day), index=False)
        batches.land_batch(churn, paths, day)


def test_the_periodic_refit_is_fitted_once_per_period_outside_the_registry_and_never_on_its_own_night(churn, paths):
    demo.generate("churn_telco", paths.data_root, nights=0)
    _land(churn, paths, 9)
    start = churn.start_date
    assert baselines.refit_day(churn, start + dt.timedelta(days=6)) == start
    assert baselines.refit_day(churn, start + dt.timedelta(days=8)) == start + dt.timedelta(days=7)
    first, meta = baselines.periodic_model(churn, paths, start + dt.timedelta(days=3))
    assert meta["refit_for"] == start.isoformat() and meta["nights"] == [] and meta["rows"] == 4000  # reference only
    week, meta7 = baselines.periodic_model(churn, paths, start + dt.timedelta(days=8))
    # the refit of night 7 learnt the reference and nights 0-6, never night 7's own rows
    assert meta7["nights"] == [(start + dt.timedelta(days=n)).isoformat() for n in range(7)]
    assert meta7["rows"] == 4000 + 7 * 400
    files = sorted(p.name for p in (paths.home / "baselines" / "churn_telco" / "periodic").iterdir())
    assert files == [f"{start}.json", f"{start}.skops", f"{start + dt.timedelta(days=7)}.json",
                     f"{start + dt.timedelta(days=7)}.skops"]
    again, same = baselines.periodic_model(churn, paths, start + dt.timedelta(days=9))  # reused, not refitted
    assert same == meta7
    # a file whose bytes changed is not trusted: it is fitted again (skops, reviewed types only)
    skops = paths.home / "baselines" / "churn_telco" / "periodic" / f"{start}.skops"
    skops.write_bytes(skops.read_bytes() + b"tampered")
    _, refitted = baselines.periodic_model(churn, paths, start + dt.timedelta(days=2))
    assert not skops.read_bytes().endswith(b"tampered") and batches.sha256_file(skops) == refitted["sha256"]


def test_served_and_baselines_are_compared_on_the_same_labelled_rows(churn, paths):
    demo.generate("churn_telco", paths.data_root, nights=0)
    _land(churn, paths, 9, shifted_from=8)  # night 8: the concept flips
    day = churn.start_date + dt.timedelta(days=8)
    batch = batches.read_for(churn, batches.landed_path(churn, paths, day))
    shifted = demo._churn_frame(np.random.default_rng(99), 1500, 9_000_000, 1.0, True)  # other rows, same concept
    served_model = training.train(churn, training.labelled(churn, shifted))
    served = predictions.served_frame(churn, batch, served_model, 7)
    predictions.write_frame(served, predictions.predictions_path(churn, paths, day))
    scored = baselines.score(churn, paths, day, batch)
    assert scored["rows"] == 400 and scored["periodic_refit"]["refit_for"] == (day - dt.timedelta(days=1)).isoformat()
    assert "never_retrained" not in scored  # no registry version yet: only the refit scores
    row = baselines.realise(churn, paths, day.isoformat(), day)
    assert row["labelled_rows"] == 400 and row["served_version"] == 7 and row["never_retrained_value"] is None
    # the served model learnt the flipped concept, the weekly refit did not
    assert row["served_value"] > row["periodic_refit_value"] + 0.2
    assert row["served_net"] is not None and row["served_net"] > row["periodic_refit_net"]
    summary = baselines.summarize(baselines.history(paths, "churn_telco"))
    assert summary["dates"] == 0  # a date where a baseline is missing is not averaged
    # one labelled date is no evidence for the refit trigger (ADR 0035): its variance has no night-to-night part
    evidence, why = baselines.refit_evidence(churn, paths, day, 7, churn.start_date.isoformat())
    assert evidence is None and "compared on 1 labelled date" in why, why
    # two dates are judged
    before = day - dt.timedelta(days=1)
    earlier = batches.read_for(churn, batches.landed_path(churn, paths, before))
    predictions.write_frame(predictions.served_frame(churn, earlier, served_model, 7),
                            predictions.predictions_path(churn, paths, before))
    baselines.score(churn, paths, before, earlier)
    baselines.realise(churn, paths, before.isoformat(), day)
    evidence, why = baselines.refit_evidence(churn, paths, day, 7, churn.start_date.isoformat())
    assert evidence is not None and evidence["rows"] == 800 and evidence["nights"] == 2, why
    assert evidence["gain"] < 0  # the served model learnt the flipped concept: no reason to refit


def test_refit_evidence_counts_the_dates_a_later_refit_met_whichever_model_served(churn):
    """ADR 0026: the refit in force on a date counts as evidence when it was fitted after the model that served
    that date was trained, whichever champion it was; never the refit of the go-live night against the bootstrap,
    nor a refit older than the model it is compared with."""
    import datetime as dt

    from steward.models import baselines

    start = churn.start_date  # refits on start, start+7, start+14, ...
    rows = [{"prediction_date": (start + dt.timedelta(days=n)).isoformat(), "served_version": 1 if n < 10 else 2}
            for n in range(20)]
    trained = {1: start.isoformat(), 2: (start + dt.timedelta(days=9)).isoformat()}
    dates = baselines.refit_dates(churn, rows, start + dt.timedelta(days=19), trained)
    # v1 (trained on start): dates 7..9 met the refit of start+7; v2 (trained on start+9): dates 14..19 met the
    # refit of start+14; dates 10..13 were served by v2 with the older refit of start+7
    assert dates == [(start + dt.timedelta(days=n)).isoformat() for n in (7, 8, 9, 14, 15, 16, 17, 18, 19)]
    assert baselines.refit_dates(churn, rows, start + dt.timedelta(days=8), trained)[-1] == \
        (start + dt.timedelta(days=8)).isoformat()  # nothing after `day`


def test_the_refit_trigger_judges_on_dates_no_quality_alarm_flagged_unless_accepted(churn, paths):
    """ADR 0034: a flagged night says how the fault scores, not whether learning the labels since pays."""
    import datetime as dt

    from steward import store
    from steward.models import baselines

    start = churn.start_date
    dates = [(start + dt.timedelta(days=n)).isoformat() for n in range(5)]
    row = {"engagement": churn.id, "column_name": "monthly_charges", "kind": "null", "events": 9, "rows": 30,
           "rate": 0.3, "reference_rate": 0.0, "bound": 0.02, "p_value": 1e-6, "window_nights": 1}
    for n, alarm in ((1, False), (2, True), (3, True)):  # flagged on night 1 only: not an alarm yet
        store.replace_rows(paths, store.quality_rates, {"engagement": churn.id, "logical_date": dates[n]},
                           [{**row, "logical_date": dates[n], "flagged": True, "alarm": alarm}])
    assert baselines.unflagged(churn, paths, dates) == [dates[0], dates[1], dates[4]]
    accepted = churn.model_copy(update={"retraining": churn.retraining.model_copy(
        update={"accept_flagged_nights": [start + dt.timedelta(days=3)]})})
    assert baselines.unflagged(accepted, paths, dates) == [dates[0], dates[1], dates[3], dates[4]]


def test_the_refit_trigger_leaves_out_the_dates_the_champion_learnt(churn, paths):
    """ADR 0035: evidence from a date in the champion's own training rows is about the model that served it then."""
    import datetime as dt

    import pandas as pd

    from steward.models import baselines, training_set
    from steward.monitoring import reference

    start = churn.start_date
    dates = [(start + dt.timedelta(days=n)).isoformat() for n in range(6)]
    frame = pd.DataFrame({c: [0] for c in churn.modelled_columns})
    reference.keep_training_data(churn, paths, 3, frame, window=["champion:v2", dates[0], dates[1], dates[2]])
    assert training_set.learnt_by(churn, paths, 3) == {start + dt.timedelta(days=n) for n in range(3)}
    assert baselines.unlearnt(churn, paths, 3, dates) == dates[3:]
    assert baselines.unlearnt(churn, paths, 1, dates) == dates  # the bootstrap learnt the reference file only


def test_the_served_gap_to_the_refit_comes_with_its_standard_error_over_dates():
    """The docs' table sets the served-vs-refit gap beside how much the luck of each date's labelled rows moves it:
    the sample standard deviation of the per-date differences over the root of the dates, in the metric's
    direction (an error metric's gap is the refit's error minus the served one's)."""
    from steward.models import baselines

    def date(n: int, served: float, refit: float, metric: str = "roc_auc") -> dict:
        return {"prediction_date": f"2026-01-{n:02d}", "metric": metric, "labelled_rows": 10, "served_value": served,
                "never_retrained_value": 0.5, "periodic_refit_value": refit, "served_net": None,
                "never_retrained_net": None, "periodic_refit_net": None, "currency": None}

    rows = [date(1, 0.80, 0.70), date(2, 0.70, 0.80), date(3, 0.90, 0.80), date(4, 0.80, 0.90)]
    summary = baselines.summarize(rows)
    assert summary["vs_periodic_refit"] == 0.0 and summary["vs_periodic_refit_se"] == 0.0577  # 0.1155 / 2
    lopsided = baselines.summarize([date(1, 0.80, 0.70), date(2, 0.81, 0.70), date(3, 0.82, 0.70)])
    assert lopsided["vs_periodic_refit"] == 0.11 and lopsided["vs_periodic_refit_se"] == 0.0058
    rmse = baselines.summarize([date(1, 20.0, 22.0, "rmse"), date(2, 21.0, 22.0, "rmse")])
    assert rmse["vs_periodic_refit"] == 1.5 and rmse["vs_periodic_refit_se"] == 0.5
    assert baselines.summarize([date(1, 0.8, 0.7)])["vs_periodic_refit_se"] is None  # one date: no spread
