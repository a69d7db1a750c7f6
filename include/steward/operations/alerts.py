"""End-of-night conditions: quality failure, drift, the quarantine-share SLA, an estimated-performance
early warning, and the deadline conditions that clear when the night completes.

Each condition opens (or continues) an incident while it holds and resolves it the first night it
has cleared; an incident event is queued on every channel once (see `steward.operations.notify`). Delivery is
done by the caller (the Airflow layer sends through Airflow notifiers).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from steward import policy
from steward.checks.quality_rates import describe
from steward.config import Engagement, threshold_kind
from steward.monitoring import outcomes
from steward.operations import incidents, notify
from steward.settings import StewardPaths


def track(eng: Engagement, paths: StewardPaths, condition: str, day: str, active: bool | None, summary: str, *,
          same_night: bool = False, subject: str | None = None) -> dict[str, Any] | None:
    """Open/continue the condition's incident when active, resolve it when not; None = no evidence tonight.
    With a `subject` (a column), one incident per subject."""
    if active is None:
        return None
    alert = condition in eng.alerts.conditions
    named = {"condition": condition, **({"subject": subject} if subject is not None else {})}
    if active:
        incident, opened = incidents.open_or_continue(paths, eng.id, condition, day, summary=summary,
                                                      response=getattr(eng.responses, condition), subject=subject)
        if opened and alert:
            notify.enqueue(paths, eng, incident, "opened")
        return {**named, "state": "active", "incident": incident["id"], "opened_tonight": opened}
    resolved = incidents.resolve(paths, eng.id, condition, day, summary, same_night=same_night, subject=subject)
    for inc in resolved:
        if alert:
            notify.enqueue(paths, eng, inc, "resolved")
    return {**named, "state": "clear", "resolved": [i["id"] for i in resolved]}


def quality_drift(eng: Engagement, paths: StewardPaths, day: str, judged: dict[str, Any]) -> list[dict[str, Any] | None]:
    """One incident per column whose data-quality rates alarm (ADR 0027); a column that no longer alarms is
    resolved the night it clears."""
    if judged.get("state") in (None, "off"):
        return []
    alarms = {c: [t for t in judged["rates"] if t["column"] == c and t.get("alarm")] for c in judged["alarm_columns"]}
    out: list[dict[str, Any] | None] = []
    for column, rates in alarms.items():
        out.append(track(eng, paths, "quality_drift", day, True,
                         f"data-quality drift on {day}: " + "; ".join(describe(t) for t in rates), subject=column))
    for column in incidents.active_subjects(paths, eng.id, "quality_drift"):
        if column not in alarms:
            out.append(track(eng, paths, "quality_drift", day, False,
                             f"{column}: every data-quality rate back within its reference bound on {day}",
                             subject=column))
    return out


def end_of_night(eng: Engagement, paths: StewardPaths, day: dt.date, *, landed: bool, quality: dict[str, Any] | None,
                 drift: dict[str, Any] | None, scored: dict[str, Any] | None,
                 quality_drift_judged: dict[str, Any] | None = None) -> dict[str, Any]:
    iso = day.isoformat()
    tracked: list[dict[str, Any] | None] = []
    if quality_drift_judged is not None:
        tracked += quality_drift(eng, paths, iso, quality_drift_judged)
    evaluations: list[dict[str, Any]] = []
    if quality is not None:
        failed = "; ".join(f"{c['expectation']}({c.get('column') or ''})" for c in quality["failed"])
        tracked.append(track(eng, paths, "quality", iso, not quality["success"],
                             f"batch of {iso} quarantined: {len(quality['failed'])} failed check(s): {failed}"
                             if not quality["success"] else f"batch of {iso} passed all checks"))
        warned = quality.get("warnings") or []
        tracked.append(track(eng, paths, "quality_warning", iso, bool(warned),
                             f"batch of {iso} accepted with {len(warned)} warning(s): " + "; ".join(
                                 f"{c['expectation']}({c.get('column') or ''}) {c.get('unexpected_count') or ''} rows"
                                 for c in warned) if warned else f"batch of {iso} passed without warnings"))
    if drift is not None and drift.get("state") != "not_enough_data":  # too little data is no evidence either way
        # The alarm is persistent drift (k of the last n nights), one incident per condition until it clears;
        # a one-night blip is in the record, not in anyone's inbox.
        active = bool(drift.get("persistent", drift["dataset_drift"]))
        held = drift.get("persistence") or {}
        tracked.append(track(eng, paths, "drift", iso, active,
                             f"dataset drift on {iso}, {held.get('nights_drifted', 1)} of the last "
                             f"{held.get('of_last', 1)} nights: {drift['drift_share']:.0%} of features drifted "
                             f"({', '.join(drift['drifted_features']) or 'none'})"
                             if active else f"no persistent dataset drift on {iso}"))
    quarantine = outcomes.evaluate_quarantine(eng, paths, day, None if quality is None else not quality["success"])
    if quarantine is not None:
        evaluations.append(quarantine)
        tracked.append(track(eng, paths, "quarantine", iso, None if quarantine["met"] is None else not quarantine["met"],
                             f"quarantine SLA: {quarantine['detail']}"))
    estimate = (scored or {}).get("estimate")
    if estimate is not None and eng.sla.performance is not None:
        threshold = eng.sla.performance.threshold
        low = policy.breaches(estimate["metric"], estimate["value"], threshold)
        kind = threshold_kind(estimate["metric"])
        detail = (f"estimated {estimate['metric']} {estimate['value']:.4f} ({estimate['method']}) for the predictions "
                  f"of {iso} vs {kind} {threshold}; labels pending. An estimate never triggers a retrain or rollback.")
        evaluations.append(outcomes.record_evaluation(paths, eng, iso, "estimated_performance", met=not low,
                                                      value=estimate["value"], target=threshold, detail=detail))
        tracked.append(track(eng, paths, "estimated_performance", iso, low, f"early warning: {detail}"))
    if landed:  # a late batch that landed after all clears tonight's freshness incident
        tracked.append(track(eng, paths, "freshness", iso, False, f"batch of {iso} landed", same_night=True))
    tracked.append(track(eng, paths, "completion", iso, False, f"run of {iso} completed", same_night=True))
    return {"evaluations": evaluations, "conditions": [t for t in tracked if t is not None]}
