"""The maintenance DAGs: one task per engagement, mapped over the valid engagement files (retention purge,
weekly outcome report)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable

from steward.airflow.task_helpers import (
    DEFAULT_RETRIES,
    connect,
    json_task,
    logical_day,
    retry_delay,
    state_paths,
)

log = logging.getLogger(__name__)


RETENTION_DAG_ID = "steward_retention"
REPORT_DAG_ID = "steward_outcome_reports"


def _per_engagement_dag(dag_id: str, cron: str, tag: str, doc: str, body: Any, engagement_ids: list[str]) -> DAG:
    """A maintenance DAG: one task, `body(engagement_id)`, mapped over every valid engagement."""
    with DAG(
        dag_id=dag_id,
        schedule=CronTriggerTimetable(cron, timezone="UTC"),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["steward", tag],
        doc_md=doc,
        default_args={"owner": "steward", "retries": DEFAULT_RETRIES, "retry_delay": retry_delay()},
    ) as dag:
        json_task(body).expand(engagement_id=engagement_ids)
    return dag


def purge_expired(engagement_id: str) -> dict[str, Any]:
    """Record, then delete, what is past the engagement's retention; sign the ledger head at once."""
    from steward.airflow.signing_key import ledger_signing_key
    from steward.config import load_engagement
    from steward.governance import export, retention
    from steward.settings import engagements_dir

    eng = load_engagement(engagements_dir() / f"{engagement_id}.yaml")
    result = retention.purge(eng, state_paths(), dt.date.fromisoformat(logical_day()), connect=connect)
    if result["ledger_seq"] is not None:  # signed now, like a night: a purge is evidence deleted
        key, unsigned_reason = ledger_signing_key()
        export.checkpoint_head(state_paths(), engagement_id, key, unsigned_reason)
    log.info("retention %s: purged %d files and %d night snapshots (ledger entry %s)", engagement_id,
             result["purged_files"], result["dropped_snapshots"], result["ledger_seq"])
    return result


def outcome_report(engagement_id: str) -> dict[str, Any]:
    """The week's outcome report, cited in the ledger."""
    from steward.config import load_engagement
    from steward.governance import ledger
    from steward.operations import report
    from steward.settings import engagements_dir

    eng = load_engagement(engagements_dir() / f"{engagement_id}.yaml")
    end = dt.date.fromisoformat(logical_day()) - dt.timedelta(days=1)
    if report.latest_night(state_paths(), eng.id) is None:
        log.info("%s: no recorded nights yet; no report", engagement_id)
        return {"engagement": engagement_id, "html": None}
    result = report.build(eng, state_paths(), days=7, end=end)
    entry = ledger.append(state_paths(), eng.id, "report", logical_date=end.isoformat(),
                          artifacts=ledger.hash_artifacts(state_paths(), [result["html"], result["json"]]),
                          detail={"period_days": 7, "start": result["data"]["start"], "end": end.isoformat(),
                                  "counts": result["data"]["counts"],
                                  "business": (result["data"].get("business") or {}).get("total")})
    log.info("%s: report %s (ledger entry %s)", engagement_id, result["html"], entry["seq"])
    return {"engagement": engagement_id, "html": result["html"], "ledger_seq": entry["seq"]}


def build_retention_dag(engagement_ids: list[str]) -> DAG:
    """Daily maintenance: purge raw batches and artifacts past each engagement's retention period."""
    return _per_engagement_dag(
        RETENTION_DAG_ID, "0 5 * * *", "maintenance",
        "Deletes landed/quarantined batches and run artifacts older than each engagement's "
        "`governance.retention_days`, after recording every purged file and its sha256 in the engagement's "
        "ledger (and signing it). The ledger is never purged.", purge_expired, engagement_ids)


def build_report_dag(engagement_ids: list[str]) -> DAG:
    """Weekly outcome report per engagement (HTML with plots, from the stored history), cited in the ledger."""
    return _per_engagement_dag(
        REPORT_DAG_ID, "0 6 * * 1", "reports",  # Mondays 06:00 UTC: the week to Sunday
        "Every Monday, the client's outcome report for the last 7 nights of each engagement: realised "
        "performance against the SLA, business value (value delivered, cost of errors, time saved, adoption), "
        "drift, batches and quarantines, retrains/promotions/rollbacks, incidents and time to recovery. Written to "
        "`<artifacts>/<engagement>/reports/` and cited (sha256) in the engagement's ledger. The same report on "
        "demand: `steward report ENGAGEMENT --period 30d`.", outcome_report, engagement_ids)
