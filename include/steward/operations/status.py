"""One small status summary per engagement, rewritten after every night: what the UI page and
`steward status` show. Readers never recompute reports or walk the ledger; they read this file.

`<STEWARD_HOME>/status/<engagement>.json`:
    row      the facts of the latest night (outcome, quality, drift, metric vs threshold, champion,
             ledger head and chain verification, open incidents)
    history  per night: metric, drift share, outcome, champion (the trend plots), last 365 nights
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from steward.config import Engagement, within
from steward.settings import StewardPaths
from steward.sources.batches import atomic_write_json

HISTORY_LIMIT = 365


def status_path(paths: StewardPaths, engagement_id: str) -> Path:
    return paths.home / "status" / f"{engagement_id}.json"


def read(paths: StewardPaths, engagement_id: str) -> dict[str, Any] | None:
    p = status_path(paths, engagement_id)
    return json.loads(p.read_text()) if p.exists() else None


def _report(record: dict[str, Any], section: str, key: str = "report_html") -> str | None:
    part = record.get(section) or {}
    value = part.get(key)
    return Path(value).name if value else None


def _reference_label(reference: dict[str, Any] | None) -> str | None:
    if not reference:
        return None
    if reference["kind"] == "champion_training_data":
        return f"v{reference['model_version']} training data ({reference['rows']} rows)"
    return "reference file"


def update(paths: StewardPaths, eng: Engagement, record: dict[str, Any], ledger_entry: dict[str, Any]) -> dict[str, Any]:
    """Fold the night's audit record into the engagement's status file (idempotent per night)."""
    from steward import store
    from steward.governance import ledger
    from steward.operations import incidents
    from steward.sources import labels

    previous = read(paths, eng.id) or {"history": []}
    metric = eng.performance.metric
    perf = (record.get("performance") or {}).get("metrics") or {}
    value = perf.get(metric)
    threshold = eng.sla.performance.threshold if eng.sla.performance else eng.performance.threshold
    note = ((record.get("performance") or {}).get("not_computable") or {}).get(metric)
    if value is None and eng.labels is not None:  # late labels: the newest realised value known tonight
        history_rows = labels.history(paths, eng.id, through=dt.date.fromisoformat(record["logical_date"]))
        known = [h for h in history_rows if h["realised_value"] is not None]
        value = known[-1]["realised_value"] if known else None
        newest = history_rows[-1] if history_rows else None
        if newest is not None and newest["realised_value"] is None and newest.get("not_computable"):
            note = f"{newest['prediction_date']}: not computable: {newest['not_computable']}"
    active = [i for i in incidents.list_for(paths, eng.id) if i["state"] != incidents.RESOLVED]
    drift = record.get("drift") or {}
    quality = record.get("quality")
    night = record["logical_date"]
    models = record["models"]
    history = [h for h in previous["history"] if h["date"] != night]
    judged_share = None if drift.get("state") == "not_enough_data" else drift.get("drift_share")  # no point, not 0
    history.append({"date": night, "metric": value, "drift_share": judged_share,
                    "outcome": record["outcome"], "champion": models.get("champion_after")})
    history = sorted(history, key=lambda h: h["date"])[-HISTORY_LIMIT:]
    promoted_at = next((h["date"] for h in reversed(history) if h["outcome"] == "promote"), None)
    if promoted_at is None and models.get("bootstrapped"):
        promoted_at = night
    promoted_at = promoted_at or previous.get("row", {}).get("champion_promoted_at")
    chain = ledger.verify(paths, eng.id, check_artifacts=False, anchors=store.heads_of(paths, eng.id))
    latest_night = max(h["date"] for h in history)
    row = previous.get("row") if night < latest_night and previous.get("row") else {
        "engagement": eng.id,
        "client": eng.client,
        "use_case": eng.use_case,
        "owner": eng.owner,
        "last_night": night,
        "last_run_state": "failed" if record["outcome"] == "failed" else "success",
        "last_run_at": record["recorded_at"],
        "outcome": record["outcome"],
        "quality": None if quality is None else ("pass" if quality["success"] else "fail"),
        "failed_checks": 0 if quality is None else sum(1 for c in quality["checks"] if not c["success"]),
        "drift_share": drift.get("drift_share"),
        "dataset_drift": drift.get("dataset_drift"),
        # judged | not_enough_data (a small night whose window is still too small: a state, not an alarm)
        "drift_state": drift.get("state"),
        "drift_persistent": drift.get("persistent"),
        "drift_reference": _reference_label(drift.get("reference")),
        "metric": metric,
        "metric_value": value,
        "metric_note": note,
        "metric_threshold": threshold,
        "quality_warnings": 0 if quality is None else quality.get("warnings") or 0,
        # data-quality drift (ADR 0027): ok | flagged | alarm, the alarming columns and what moved
        "quality_drift": (record.get("quality_drift") or {}).get("state"),
        "quality_drift_columns": (record.get("quality_drift") or {}).get("alarm_columns") or [],
        "quality_drift_summary": (record.get("quality_drift") or {}).get("summary"),
        "metric_ok": None if value is None else within(metric, value, threshold),
        "champion_version": models.get("champion_after"),
        "champion_promoted_at": promoted_at,
        "shadow": _shadow(record),
        "awaiting_approval": _awaiting_approval(paths, eng.id),
        "registered_model": models.get("registered_model"),
        "reports": {k: v for k, v in (("quality", _report(record, "quality")), ("drift", _report(record, "drift")),
                                      ("performance", _report(record, "performance"))) if v},
    }
    row = {**row, "open_incidents": len(active), "ledger_seq": ledger_entry["seq"], "ledger_head": ledger_entry["hash"],
           "ledger_verified": chain.ok, "ledger_problem": None if chain.ok else chain.problems[0],
           # ADR 0017: the head is signed with the key outside the state volume, or says why not
           "ledger_signed": ledger_entry.get("signed"),
           "ledger_unsigned_reason": (ledger_entry.get("checkpoint") or {}).get("unsigned"),
           "value_30d": _value_30d(paths, eng, record["logical_date"]),
           "operating_added": _operating_added(paths, eng, record["logical_date"]),
           "updated_at": dt.datetime.now(dt.UTC).isoformat()}
    summary = {"row": row, "history": history}
    atomic_write_json(status_path(paths, eng.id), summary)
    return summary


def _operating_added(paths: StewardPaths, eng: Engagement, night: str) -> dict[str, Any] | None:
    """What operating the model added (ADR 0025): the served models against never retraining and the periodic
    refit, over the labelled prediction dates known tonight; None before the first comparison."""
    from steward.models import baselines

    rows = baselines.history(paths, eng.id, through=dt.date.fromisoformat(night[:10]))
    summary = baselines.summarize(rows)
    return summary if summary["dates"] else None


def _value_30d(paths: StewardPaths, eng: Engagement, night: str) -> dict[str, Any] | None:
    """Value delivered over the 30 prediction dates up to the night (steward.operations.value); None without `business:`."""
    if eng.business is None:
        return None
    from steward.operations import value

    end = dt.date.fromisoformat(night[:10])
    v = value.period(eng, paths, end - dt.timedelta(days=29), end)
    return {k: v[k] for k in ("currency", "value_delivered", "cost_of_errors", "net_value", "hours_saved",
                              "pending_rows")}


def _shadow(record: dict[str, Any]) -> str | None:
    """"v3 in shadow since 2026-03-10" while a challenger waits for the nights after its gate (ADR 0015)."""
    gate = record.get("promotion") or {}
    if gate.get("action") == "shadow":
        return f"v{record['retraining']['challenger']['version']} in shadow since {record['logical_date']}"
    if gate.get("action") == "wait":
        return f"v{gate['shadow']['version']} in shadow since {gate['shadow']['since']}"
    return None


def amend_row(paths: StewardPaths, engagement_id: str, **fields: Any) -> None:
    """Change fields of the status row between nights (a rollback, an approval's answer); nothing before the
    first night."""
    summary = read(paths, engagement_id)
    if summary is not None:
        summary["row"].update(fields)
        atomic_write_json(status_path(paths, engagement_id), summary)


def _awaiting_approval(paths: StewardPaths, engagement_id: str) -> str | None:
    """"v5 awaits approval by risk.officer since 2026-03-10" while a request is unanswered (issue 35)."""
    from steward.governance import approvals

    pending = approvals.read(paths, engagement_id)
    if pending is None or "answer" in pending:
        return None
    return (f"v{pending['version']} awaits approval by {', '.join(pending['approvers'])} since "
            f"{pending['requested_for']}")


def all_rows(paths: StewardPaths, engagement_ids: list[str]) -> list[dict[str, Any]]:
    """Status rows for the given engagements (a placeholder row for those that never ran)."""
    rows = []
    for eid in engagement_ids:
        s = read(paths, eid)
        rows.append(s["row"] if s else {"engagement": eid, "last_run_state": "never run"})
    return rows
