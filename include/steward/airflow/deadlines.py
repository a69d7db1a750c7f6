"""Deadline Alert callbacks for the freshness and completion SLAs (Airflow 3 Deadline Alerts).

The scheduler notices a missed deadline and queues this callback on the executor (SyncCallback). It
records the SLA evaluation, opens (or continues) an incident and sends the alert through the same
outbox as every other alert. Freshness only counts as missed when the night's batch has not landed;
a run that is merely slow is the completion SLA's business.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

log = logging.getLogger(__name__)


def deadline_missed(context: dict[str, Any] | None = None, *, engagement_id: str, sla: str, minutes: float) -> dict[str, Any]:
    from steward.airflow import notifiers
    from steward.config import load_engagement
    from steward.governance import ledger
    from steward.monitoring import outcomes
    from steward.operations import alerts
    from steward.settings import StewardPaths, engagements_dir
    from steward.sources import batches

    paths = StewardPaths.from_env()
    eng = load_engagement(engagements_dir() / f"{engagement_id}.yaml")
    run = (context or {}).get("dag_run") or {}
    when = run.get("logical_date") or run.get("run_after") or dt.datetime.now(dt.UTC).isoformat()
    day = dt.date.fromisoformat(str(when)[:10])
    if sla == "freshness":
        landed = batches.landed_path(eng, paths, day).is_file() or \
            (batches.quarantine_dir(eng, paths, day) / eng.batch_filename(day)).is_file()
        if landed:
            return outcomes.record_evaluation(paths, eng, day.isoformat(), "freshness", met=True, value=None,
                                              target=minutes, detail="batch had landed when the deadline was checked")
        detail = f"batch of {day} not landed {minutes:g} min after the scheduled time"
    else:
        detail = f"run {run.get('run_id', '?')} of {day} not finished {minutes:g} min after the scheduled time"
    evaluation = outcomes.record_evaluation(paths, eng, day.isoformat(), sla, met=False, value=None, target=minutes,
                                            detail=detail)
    tracked = alerts.track(eng, paths, sla, day.isoformat(), True, f"{sla} SLA missed: {detail}")
    # The night's audit record may already be written (a completion deadline): the ledger gets its own entry.
    ledger.append(paths, eng.id, "sla", logical_date=day.isoformat(),
                  detail={**evaluation, "incident": (tracked or {}).get("incident"), "source": "airflow deadline alert"})
    delivery = notifiers.deliver(eng, context or {})
    log.warning("deadline missed for %s: %s; incident %s; alerts %s", engagement_id, detail,
                (tracked or {}).get("incident"), delivery)
    return {"evaluation": evaluation, "incident": tracked, "delivery": delivery}
