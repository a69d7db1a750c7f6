"""SLAs tied to outcomes, and what the system does by itself when one breaks.

Evaluated in the pipeline (the deadline SLAs, freshness and completion, are Airflow Deadline Alerts,
see `steward.airflow.deadlines`). Every evaluation, met or not, is a row in `steward_sla_evaluations`
and part of the night's audit record.

- performance: realised performance over the last `window_days` prediction dates whose labels have
  arrived (labelled-row-weighted mean of the daily metric), against the floor (or ceiling);
- quarantine: share of quarantined nights among the last `window_days` nights.

Responses to a performance breach (config `responses.performance`):
- notify: an incident and an alert, nothing else;
- retrain: also request a retrain tonight, if the *current* champion breaches on the window's rows;
- rollback: if the current champion breaches on the window's rows and the previous champion would not
  have (both scored on the same labelled rows), move the alias back through `steward.models.rollback` (the
  same code path as `steward model rollback`); otherwise fall back to a retrain request when
  'performance' is a retraining trigger.
The current-champion check matters because labels lag: for a few nights after a fix, the window still
holds predictions the old model made, and acting on them again would be acting twice.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from steward import policy, store
from steward.config import Engagement, threshold_kind
from steward.governance import ledger
from steward.operations import incidents, notify
from steward.settings import StewardPaths
from steward.sources import batches, labels

if TYPE_CHECKING:
    import pandas as pd

AUTO_ROLLBACK_ACTOR = "steward auto-rollback"


def record_evaluation(paths: StewardPaths, eng: Engagement, day: str, sla: str, *, met: bool | None,
                      value: float | None, target: float | None, detail: str) -> dict[str, Any]:
    row = {"engagement": eng.id, "logical_date": day, "sla": sla, "met": met, "value": value, "target": target,
           "detail": detail, "evaluated_at": dt.datetime.now(dt.UTC)}
    store.replace_rows(paths, store.sla_evaluations, {"engagement": eng.id, "logical_date": day, "sla": sla}, [row])
    return {"sla": sla, "met": met, "value": value, "target": target, "detail": detail}


def evaluations_of(eng: Engagement, paths: StewardPaths, day: str) -> list[dict[str, Any]]:
    """The night's SLA evaluations, for the audit record (the evaluation time is kept in the table only)."""
    rows = store.select_rows(paths, store.sla_evaluations, {"engagement": eng.id, "logical_date": day[:10]},
                             order_by="sla")
    return [{k: r[k] for k in ("sla", "met", "value", "target", "detail")} for r in rows]


def evaluate_performance(eng: Engagement, paths: StewardPaths, day: dt.date) -> dict[str, Any] | None:
    sla = eng.sla.performance
    if sla is None:
        return None
    metric = eng.performance.metric
    known = [r for r in labels.history(paths, eng.id, through=day)
             if r["realised_value"] is not None and r["prediction_date"] <= day.isoformat()]
    window = pooled_window(known, sla.window_days, sla.max_window_days, sla.min_labelled_rows)
    rows = sum(r["labelled_rows"] for r in window)
    kind = threshold_kind(metric)
    dates = [r["prediction_date"] for r in window]
    if rows < sla.min_labelled_rows:
        out = record_evaluation(paths, eng, day.isoformat(), "performance", met=None, value=None, target=sla.threshold,
                                detail=f"not enough data yet: {rows} labelled rows in {len(window)} prediction date(s) "
                                       f"< {sla.min_labelled_rows} (pooled up to {sla.max_window_days} dates)")
        return {**out, "window_dates": dates, "rows": rows}
    value = round(sum(r["realised_value"] * r["labelled_rows"] for r in window) / rows, 6)
    met = not policy.breaches(metric, value, sla.threshold)
    per_date = ", ".join(f"{r['prediction_date']} {r['realised_value']:.3f} (v{r['model_version']})" for r in window)
    detail = (f"realised {metric} {value:.4f} vs {kind} {sla.threshold} over {len(window)} prediction date(s), "
              f"{rows} labelled rows: {per_date}")
    out = record_evaluation(paths, eng, day.isoformat(), "performance", met=met, value=value, target=sla.threshold,
                            detail=detail)
    return {**out, "window_dates": dates, "rows": rows}


def pooled_window(known: list[dict[str, Any]], days: int, max_days: int, min_rows: int) -> list[dict[str, Any]]:
    """The newest `days` prediction dates with a realised value, and older ones pooled in (up to `max_days`)
    while their labelled rows are fewer than `min_rows`: small label days are judged together, not skipped."""
    window = known[-days:]
    while len(window) < min(max_days, len(known)) and sum(r["labelled_rows"] for r in window) < min_rows:
        window = known[-(len(window) + 1):]
    return window


def evaluate_quarantine(eng: Engagement, paths: StewardPaths, day: dt.date, quarantined_tonight: bool | None
                        ) -> dict[str, Any] | None:
    sla = eng.sla.quarantine
    if sla is None:
        return None
    first = (day - dt.timedelta(days=sla.window_days - 1)).isoformat()
    latest: dict[str, str] = {}
    for r in store.runs_of(paths, eng.id):  # in ledger order: the last record of a date wins
        if first <= r["logical_date"] < day.isoformat():
            latest[r["logical_date"]] = r["outcome"]
    outcomes = [o for o in latest.values() if o != "missing"]
    if quarantined_tonight is not None:
        outcomes.append("quarantine" if quarantined_tonight else "accepted")
    if not outcomes:
        return record_evaluation(paths, eng, day.isoformat(), "quarantine", met=None, value=None,
                                 target=sla.max_share, detail="not judged: no batch in the window")
    share = round(sum(o == "quarantine" for o in outcomes) / len(outcomes), 6)
    return record_evaluation(
        paths, eng, day.isoformat(), "quarantine", met=share <= sla.max_share, value=share, target=sla.max_share,
        detail=f"{sum(o == 'quarantine' for o in outcomes)} of {len(outcomes)} batches quarantined in the last "
               f"{sla.window_days} nights ({share:.0%}; limit {sla.max_share:.0%})")


# --- responses -----------------------------------------------------------------------------------


def window_frame(eng: Engagement, paths: StewardPaths, day: dt.date, dates: list[str]) -> pd.DataFrame:
    """Features of the served batches of `dates` joined to the labels known on `day`."""
    import pandas as pd

    frames = []
    for pdate in dates:
        landed = batches.landed_path(eng, paths, dt.date.fromisoformat(pdate))
        if not landed.is_file():
            continue
        batch = batches.read_for(eng, landed).drop(columns=[eng.target], errors="ignore")
        batch[eng.id_column] = batch[eng.id_column].astype(str)
        known = labels.labels_known_by(eng, paths, pdate, day) if eng.labels else None
        if known is None:  # labels came inside the batch
            known = batches.read_for(eng, landed)[[eng.id_column, eng.target]].dropna()
            known[eng.id_column] = known[eng.id_column].astype(str)
        frames.append(batch.merge(known, on=eng.id_column, how="inner"))
    from steward.models import training

    return training.labelled(eng, pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame()


def judge_champions(eng: Engagement, paths: StewardPaths, day: dt.date, dates: list[str]) -> dict[str, Any]:
    """Score the night's champion and its predecessor on the same labelled rows of the window."""
    from steward.models import registry, rollback, training

    c = registry.client(paths)
    current = registry.champion_for_night(c, eng, day.isoformat()) or registry.get_alias(c, eng, registry.CHAMPION)
    frame = window_frame(eng, paths, day, dates)
    if current is None or frame.empty:
        return {"current": None, "previous": None, "rows": int(len(frame))}
    metric = eng.performance.metric
    score = training.score(eng, registry.load(c, current), frame, metric)
    if score is None:  # e.g. every labelled row of the window has the same class: nothing to judge on
        return {"current": None, "previous": None, "rows": int(len(frame)), "metric": metric}
    out: dict[str, Any] = {"rows": int(len(frame)), "metric": metric,
                           "current": {"version": current.version, "score": score}, "previous": None}
    previous = rollback.previous_version(c, eng, current)
    if previous is not None:
        prev_score = training.score(eng, registry.load(c, registry.get_version(c, eng, previous)), frame, metric)
        out["previous"] = None if prev_score is None else {"version": previous, "score": prev_score}
    return out


def _auto_rollback_of(paths: StewardPaths, eng: Engagement, day: str) -> dict[str, Any] | None:
    for entry in ledger.read_entries(paths, eng.id):
        if entry["type"] == "rollback" and entry["logical_date"] == day and entry["detail"]["actor"] == AUTO_ROLLBACK_ACTOR:
            return entry["detail"]
    return None


def respond_to_performance(eng: Engagement, paths: StewardPaths, day: dt.date, evaluation: dict[str, Any]
                           ) -> dict[str, Any]:
    """Open/continue or resolve the performance incident, and carry out the configured response."""
    from steward.models import rollback

    iso = day.isoformat()
    response = eng.responses.performance
    out: dict[str, Any] = {"response": response, "incident": None, "retrain_requested": False, "rollback": None,
                           "resolved": [], "judged": None, "notes": []}
    if evaluation["met"] is True:
        for inc in incidents.resolve(paths, eng.id, "performance", iso, resolution=evaluation["detail"]):
            notify.enqueue(paths, eng, inc, "resolved")
            out["resolved"].append(inc["id"])
        return out
    if evaluation["met"] is None:
        return out
    incident, opened = incidents.open_or_continue(paths, eng.id, "performance", iso,
                                                  summary=f"performance SLA breached: {evaluation['detail']}",
                                                  response=response)
    out["incident"] = incident["id"]
    if opened:
        notify.enqueue(paths, eng, incident, "opened")
    done = _auto_rollback_of(paths, eng, iso)
    if done is not None:  # an earlier attempt of this night already rolled back
        out["rollback"] = done
        return out
    if response == "notify":
        return out
    judged = judge_champions(eng, paths, day, evaluation["window_dates"])
    metric, threshold = eng.performance.metric, eng.sla.performance.threshold  # type: ignore[union-attr]
    current, previous = judged["current"], judged["previous"]
    out["judged"] = judged
    if current is None or not policy.breaches(metric, current["score"], threshold):
        note = ("no action: the champion of tonight meets the SLA on the window's rows (the breach came from "
                "predictions of an earlier version; waiting for labels of its own predictions)") if current else \
            "no action: no champion or no labelled rows to judge it on"
        out["notes"].append(note)
        return out
    if response == "rollback":
        if previous is not None and not policy.breaches(metric, previous["score"], threshold):
            reason = (f"automatic: champion v{current['version']} {metric} {current['score']:.4f} breaches the SLA "
                      f"{threshold} on {judged['rows']} labelled rows of {', '.join(evaluation['window_dates'])}; "
                      f"v{previous['version']} scores {previous['score']:.4f} on the same rows "
                      f"(incident #{incident['id']})")
            done = rollback.rollback(eng, paths, reason=reason, to_version=previous["version"],
                                     actor=AUTO_ROLLBACK_ACTOR, today=day)
            # What a rerun of this night will read back: the ledger's words (the scores are in the reason).
            out["rollback"], out["judged"] = _auto_rollback_of(paths, eng, iso), None
            incidents.add_action(paths, incident["id"], {"what": "rollback", "night": iso,
                                                         "detail": f"v{done['from']} -> v{done['to']}: {reason}"})
            return out
        why = ("no previous champion" if previous is None else
               f"previous champion v{previous['version']} would breach too ({previous['score']:.4f})")
        out["notes"].append(f"rollback not possible: {why}")
        incidents.add_action(paths, incident["id"], {"what": "rollback_refused", "night": iso, "detail": why})
        if "performance" not in eng.retraining.triggers:
            return out
    out["retrain_requested"] = True
    incidents.add_action(paths, incident["id"], {"what": "retrain_requested", "night": iso,
                                                 "detail": f"champion v{current['version']} {metric} "
                                                           f"{current['score']:.4f} on the window's rows"})
    return out


def check(eng: Engagement, paths: StewardPaths, day: dt.date) -> dict[str, Any]:
    """The start-of-night outcome check: performance SLA and its response (before tonight's scoring, so a
    rollback already serves tonight's predictions)."""
    evaluation = evaluate_performance(eng, paths, day)
    if evaluation is None:
        return {"performance_sla": None, "response": None}
    return {"performance_sla": evaluation, "response": respond_to_performance(eng, paths, day, evaluation)}
