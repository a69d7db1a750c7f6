"""Counterfactual baselines (ADR 0025): every night, two models that are never served score the batch too,
so that what operating the model added can be measured on the same rows as what was served.

- `never_retrained`: the model trained on the reference at go-live (the bootstrap version), never replaced;
- `periodic_refit`: the policy a user could write in a cron job: every `baselines.refit_every_days` nights
  (counted from the start date) refit on the reference plus every label known so far, no gate.

Neither is a champion candidate: the periodic refits are skops files under `<home>/baselines/<engagement>/`,
never registered in MLflow, so they count neither as model versions nor in the monitoring budget. Each
night's baseline predictions are kept beside the served ones; as labels arrive, the realised metric and
business value of the served model and of both baselines are stored per prediction date, on the same
labelled rows, in `steward_counterfactuals`. The CPU time they cost is in the stage result.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward import store
from steward.config import Engagement, improvement
from steward.models import training_set
from steward.settings import StewardPaths, inside
from steward.sources import batches

if TYPE_CHECKING:
    import pandas as pd

NEVER_RETRAINED = "never_retrained"
PERIODIC_REFIT = "periodic_refit"
SERVED = "served"
POLICIES = (SERVED, NEVER_RETRAINED, PERIODIC_REFIT)


def folder(paths: StewardPaths, engagement_id: str) -> Path:
    return inside(paths.home / "baselines", engagement_id)


def predictions_path(eng: Engagement, paths: StewardPaths, day: dt.date | str) -> Path:
    return folder(paths, eng.id) / "predictions" / f"{str(day)[:10]}.parquet"


def refit_day(eng: Engagement, day: dt.date) -> dt.date:
    """The night of the periodic refit in force on `day`: the start date, then every `refit_every_days`."""
    every = eng.baselines.refit_every_days
    return eng.start_date + dt.timedelta(days=max((day - eng.start_date).days, 0) // every * every)


def periodic_model(eng: Engagement, paths: StewardPaths, day: dt.date) -> tuple[Any, dict[str, Any]]:
    """The periodic refit in force on `day` (fitted once, on its night, from the reference and every label
    known that night; kept as a skops file and reused by later nights and reruns)."""
    from steward.models import training
    from steward.models.training_set import labelled_batch, nights_since

    when = refit_day(eng, day)
    target = folder(paths, eng.id) / "periodic" / f"{when.isoformat()}.skops"
    sidecar = target.with_suffix(".json")
    if target.is_file() and sidecar.is_file():
        meta = json.loads(sidecar.read_text())
        if meta["sha256"] == batches.sha256_file(target):
            return training.load_model(str(target)), meta
    import pandas as pd

    started = time.process_time()
    reference = training.labelled(eng, batches.read_for(eng, batches.reference_path(eng, paths)))
    nights = [(d, p) for d, p in nights_since(eng, paths, when, set()) if d < when]  # never tonight's own rows
    frames = [reference, *(labelled_batch(eng, paths, d, p, when) for d, p in nights)]
    rows = pd.concat(frames, ignore_index=True)
    model = training.train(eng, rows)
    target.parent.mkdir(parents=True, exist_ok=True)
    with batches.atomic_target(target) as tmp:
        training.save_model(model, str(tmp))
    meta = {"refit_for": when.isoformat(), "rows": int(len(rows)), "nights": [d.isoformat() for d, _ in nights],
            "cpu_seconds": round(time.process_time() - started, 3), "sha256": batches.sha256_file(target)}
    batches.atomic_write_json(sidecar, meta)
    return model, meta


def never_retrained_model(eng: Engagement, paths: StewardPaths) -> tuple[Any, int] | None:
    """The bootstrap version (trained on the reference at go-live), from the registry."""
    from steward.models import registry

    c = registry.client(paths)
    first = registry.bootstrap_version(c, eng)
    return None if first is None else (registry.load(c, first), first.version)


def score(eng: Engagement, paths: StewardPaths, day: dt.date, batch: pd.DataFrame) -> dict[str, Any]:
    """Score tonight's batch with both baselines (never served); keep their predictions beside the served
    ones. Returns what was scored and the CPU seconds it cost (the refit included, on a refit night)."""
    import pandas as pd

    from steward.models import predictions

    started = time.process_time()
    out = pd.DataFrame({eng.id_column: batch[eng.id_column].astype(str).to_numpy()})
    result: dict[str, Any] = {"rows": int(len(batch)), "path": None}
    never = never_retrained_model(eng, paths)
    if never is not None:
        frame = predictions.served_frame(eng, batch, never[0], never[1])
        out[f"{NEVER_RETRAINED}_prediction"] = frame[predictions.PREDICTION].to_numpy()
        if predictions.SCORE in frame:
            out[f"{NEVER_RETRAINED}_score"] = frame[predictions.SCORE].to_numpy()
        result[NEVER_RETRAINED] = {"version": never[1]}
    model, meta = periodic_model(eng, paths, day)
    frame = predictions.served_frame(eng, batch, model, 0)
    out[f"{PERIODIC_REFIT}_prediction"] = frame[predictions.PREDICTION].to_numpy()
    if predictions.SCORE in frame:
        out[f"{PERIODIC_REFIT}_score"] = frame[predictions.SCORE].to_numpy()
    result[PERIODIC_REFIT] = {"refit_for": meta["refit_for"], "rows": meta["rows"], "sha256": meta["sha256"]}
    path = predictions_path(eng, paths, day)
    predictions.write_frame(out, path)
    result.update(path=str(path), sha256=batches.sha256_file(path),
                  cpu_seconds=round(time.process_time() - started, 3))
    return result


def labelled_rows(eng: Engagement, paths: StewardPaths, pdate: str, day: dt.date) -> pd.DataFrame | None:
    """Served and baseline predictions of `pdate` with the labels known on `day` (the target encoded), on
    the rows all three scored; None when the baselines did not score that date."""
    import pandas as pd

    from steward.models import predictions, training
    from steward.sources import labels

    mine, served = predictions_path(eng, paths, pdate), predictions.predictions_path(eng, paths, pdate)
    if not mine.is_file() or not served.is_file():
        return None
    frame = pd.read_parquet(served).merge(pd.read_parquet(mine), on=eng.id_column, how="inner")
    frame[eng.id_column] = frame[eng.id_column].astype(str)
    if eng.labels is None:  # the labels came inside the batch
        batch = batches.read_for(eng, batches.landed_path(eng, paths, dt.date.fromisoformat(pdate)))
        truth = batch[[eng.id_column, eng.target]].assign(**{eng.id_column: batch[eng.id_column].astype(str)})
    else:
        truth = labels.labels_known_by(eng, paths, pdate, day)
    return training.labelled(eng, frame.merge(truth, on=eng.id_column, how="inner"))


def realise(eng: Engagement, paths: StewardPaths, pdate: str, day: dt.date) -> dict[str, Any] | None:
    """The realised metric (and business value) of the served model and both baselines on the labelled rows
    of `pdate` known on `day`, stored per (prediction date, labels through). None when not scored."""
    from steward.models import metrics, predictions
    from steward.operations import value

    frame = labelled_rows(eng, paths, pdate, day)
    if frame is None:
        return None
    metric = eng.performance.metric
    row: dict[str, Any] = {"engagement": eng.id, "prediction_date": pdate, "labels_through": day.isoformat(),
                           "metric": metric, "labelled_rows": int(len(frame)),
                           "served_version": int(frame[predictions.VERSION].iloc[0]) if len(frame) else None,
                           "currency": eng.business.currency if eng.business else None}
    y = frame[eng.target].to_numpy()
    for policy, prefix in ((SERVED, ""), (NEVER_RETRAINED, f"{NEVER_RETRAINED}_"), (PERIODIC_REFIT, f"{PERIODIC_REFIT}_")):
        column = f"{prefix}{predictions.PREDICTION}"
        if column not in frame:
            row[f"{policy}_value"] = row[f"{policy}_net"] = None
            continue
        score = frame.get(f"{prefix}{predictions.SCORE}")
        row[f"{policy}_value"], _ = metrics.compute(eng, metric, y, frame[column].to_numpy(),
                                                    None if score is None else score.to_numpy())
        if eng.business is not None and len(frame):
            from steward.monitoring import drift

            priced = value.price(eng, value.outcome_counts(eng, frame.assign(**{drift.PREDICTION: frame[column]})))
            row[f"{policy}_net"] = round(priced["value_delivered"] - priced["cost_of_errors"], 2)
        else:
            row[f"{policy}_net"] = None
    store.replace_rows(paths, store.counterfactuals, {"engagement": eng.id, "prediction_date": pdate,
                                                      "labels_through": day.isoformat()}, [row])
    return row


def history(paths: StewardPaths, engagement_id: str, through: dt.date | None = None) -> list[dict[str, Any]]:
    """Per prediction date, the latest comparison known on `through`."""
    return store.latest_by_prediction_date(paths, store.counterfactuals, engagement_id, through)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean per-date metric of each policy over the dates where all three are computable, summed business
    value over the same dates, and what operating the model added against never retraining."""
    both = [r for r in rows if None not in (r["served_value"], r["never_retrained_value"], r["periodic_refit_value"])]
    out: dict[str, Any] = {"metric": rows[0]["metric"] if rows else None, "dates": len(both),
                           "labelled_rows": sum(r["labelled_rows"] for r in both)}
    for policy in POLICIES:
        values = [r[f"{policy}_value"] for r in both]
        out[policy] = round(sum(values) / len(values), 4) if values else None
        nets = [r[f"{policy}_net"] for r in both if r[f"{policy}_net"] is not None]
        out[f"{policy}_net"] = round(sum(nets), 2) if nets and len(nets) == len(both) else None
    if out[SERVED] is not None:
        out["added_vs_never_retrained"] = round(improvement(out["metric"], out[SERVED], out[NEVER_RETRAINED]), 4)
        out["vs_periodic_refit"] = round(improvement(out["metric"], out[SERVED], out[PERIODIC_REFIT]), 4)
        out["vs_periodic_refit_se"] = paired_standard_error(
            [improvement(out["metric"], r[f"{SERVED}_value"], r[f"{PERIODIC_REFIT}_value"]) for r in both])
    if out[f"{SERVED}_net"] is not None and out[f"{NEVER_RETRAINED}_net"] is not None:
        out["value_added_vs_never_retrained"] = round(out[f"{SERVED}_net"] - out[f"{NEVER_RETRAINED}_net"], 2)
    out["currency"] = next((r["currency"] for r in rows if r.get("currency")), None)
    return out


def paired_standard_error(differences: list[float]) -> float | None:
    """The standard error of the mean of per-date differences (None under two dates): how far apart two
    policies' means can land by the luck of which rows each date labelled. On a feed of about 37 labelled rows
    a date (`credit_channel`), the served model and the weekly refit differ by 0.042 from date to date (standard
    deviation of the ROC AUC difference), and 55 dates leave the difference of the means uncertain by 0.006."""
    import statistics

    if len(differences) < 2:
        return None
    return round(statistics.stdev(differences) / len(differences) ** 0.5, 4)


REFIT_OWN_DATES = 5  # the champion's own labelled dates that replace the earlier champions' in the trigger
REFIT_EVIDENCE_PERIODS = 2  # the refit trigger pools the newest dates of this many refit periods (ADR 0028)
# Evidence pooled by night needs two nights at least: one night's variance is its rows' only, and a day unlike the
# others looks conclusive (`flights_nyc` 2013-03-06: +0.142 [+0.120, +0.165] on 903 rows of one date, v10 promoted,
# -0.008 on the next 7 nights; ADR 0035).
REFIT_MIN_DATES = 2


def refit_evidence_dates(eng: Engagement) -> int:
    """How many of the newest labelled dates the refit trigger pools: two refit periods (14 by default). The
    question is whether a refit would serve better *now*; a month of dates let the weeks a champion was fresh
    outvote the weeks it went stale (`flights_nyc` on 2013-03-05: the refit beat the champion on 10 of the 14
    newest dates, by +0.037 ROC AUC a date on average, while the 30-date pool still put it 0.010 behind)."""
    return REFIT_EVIDENCE_PERIODS * eng.baselines.refit_every_days


def refit_dates(eng: Engagement, rows: list[dict[str, Any]], day: dt.date, trained_for: dict[int, str]) -> list[str]:
    """The prediction dates (through `day`) on which the refit in force had been fitted after the model that
    served them was trained (`trained_for`: version -> the night it was trained for)."""
    def newer(r: dict[str, Any]) -> bool:
        served = trained_for.get(int(r["served_version"])) or eng.start_date.isoformat()
        return refit_day(eng, dt.date.fromisoformat(r["prediction_date"])).isoformat() > served[:10]

    return [r["prediction_date"] for r in rows if r["prediction_date"] <= day.isoformat() and newer(r)]


def unflagged(eng: Engagement, paths: StewardPaths, dates: list[str]) -> list[str]:
    """The prediction dates no data-quality alarm flagged (or the user accepted, `retraining.accept_flagged_nights`):
    what the refit trigger may judge on (ADR 0034). A flagged night says how the fault scores, not whether learning
    the labels since pays; with them left out, an alarm need not hold the trigger (`credit_faults`: five faults of
    seven nights held it on 14 of 60 nights while its evidence said the refit beat the champion by 0.03 to 0.05)."""
    from steward.checks import quality_rates

    flagged = quality_rates.unaccepted_alarm_nights(eng, paths)
    return [d for d in dates if d not in flagged]


def unlearnt(eng: Engagement, paths: StewardPaths, version: int, dates: list[str]) -> list[str]:
    """The prediction dates version `version` did not learn from. A date in the champion's training rows says how
    the refit did against the model that served it then, nothing of the champion (ADR 0035: `flights_nyc`, labels a
    night late, promoted v10 on 2013-03-06 on evidence from dates v8 had learnt, every one, and lost 0.008 on the
    next 7 nights)."""
    learnt = {d.isoformat() for d in training_set.learnt_by(eng, paths, version)}
    return [d for d in dates if d not in learnt]


def refit_evidence(eng: Engagement, paths: StewardPaths, day: dt.date, champion_version: int,
                   champion_trained_for: str | None = None, trained_for: dict[int, str] | None = None,
                   ) -> tuple[dict[str, Any] | None, str | None]:
    """Does refitting pay? The periodic-refit baseline against the model that served, on the labelled rows of
    the prediction dates where the refit in force was fitted after that model was trained (so it knew labels
    the served model did not), the newest `refit_evidence_dates`, with the labels known on `day`: the gate's
    paired test (steward.models.evidence), clustered by date. The dates of earlier champions count (ADR 0026): on a
    shift that goes on, "a fit on newer labels beats the model in service" stays true after a promotion, and
    waiting for a refit newer than the new champion would put the champion a refit period behind every time.
    `trained_for`: when each version was trained (the champion's from `champion_trained_for`). Once the
    champion has REFIT_OWN_DATES labelled dates of its own, only those count: the earlier champions' dates
    bridge the weeks after a promotion, they must not keep firing against a champion that already learnt
    what they show. (None, why) when there is nothing to compare yet."""
    import numpy as np

    from steward.models import evidence, metrics, predictions

    known = {**(trained_for or {}), champion_version: champion_trained_for or eng.start_date.isoformat()}
    rows = history(paths, eng.id, through=day)
    dates = unlearnt(eng, paths, champion_version, unflagged(eng, paths, refit_dates(eng, rows, day, known)))
    served_by = {r["prediction_date"]: int(r["served_version"]) for r in rows}
    own = [d for d in dates if served_by.get(d) == champion_version]
    if len(own) >= REFIT_OWN_DATES:
        dates = own
    frames = [(d, labelled_rows(eng, paths, d, day)) for d in dates[-refit_evidence_dates(eng):]]
    frames = [(d, f) for d, f in frames if f is not None and len(f) and f"{PERIODIC_REFIT}_prediction" in f]
    if not frames:
        return None, "no labelled date served by the champion has been scored by the periodic refit yet"
    if len(frames) < REFIT_MIN_DATES:
        return None, (f"the periodic refit has been compared on {len(frames)} labelled date: one date cannot tell a "
                      "trend from that day (its variance has no night to night part)")
    import pandas as pd

    rows = pd.concat([f for _, f in frames], ignore_index=True)
    nights = np.concatenate([[d] * len(f) for d, f in frames])
    metric = eng.promotion.metric
    reason = metrics.unmeasurable(eng, metric, rows[eng.target])
    if reason is not None:
        return None, reason
    score = f"{PERIODIC_REFIT}_{predictions.SCORE}"
    refit = (rows[f"{PERIODIC_REFIT}_prediction"].to_numpy(), rows[score].to_numpy() if score in rows else None)
    served = (rows[predictions.PREDICTION].to_numpy(),
              rows[predictions.SCORE].to_numpy() if predictions.SCORE in rows else None)
    ev, why = evidence.paired(eng, metric, rows[eng.target].to_numpy(), refit, served, nights)
    # a trigger trains a candidate, it promotes nothing (the gate does, at its own level per look): the
    # engagement's alpha, once, is enough to ask for one
    return (None, why) if ev is None else (evidence.judged(eng, ev, alpha=eng.promotion.alpha), None)

