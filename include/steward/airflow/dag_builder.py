"""Build one Airflow 3 DAG per engagement file: the nightly tasks, wired from the stage table (steward.stages).
With the rest of steward.airflow (task helpers, DAG docs, maintenance DAGs) and plugins/, the only code that
imports Airflow.

Parse-time cost is kept to pydantic + yaml: every heavy library is imported inside the task
bodies, via the domain functions in `steward.pipeline`.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import (
    DAG,
    Asset,
    CronTriggerTimetable,
    DeadlineAlert,
    DeadlineReference,
    PokeReturnValue,
    SyncCallback,
    get_current_context,
    task,
)

from steward import stages
from steward.airflow.dag_docs import render_doc
from steward.airflow.task_helpers import (
    DEFAULT_RETRIES,
    connect,
    json_task,
    logical_day,
    opener,
    pull,
    retry_delay,
    run_tags,
    state_paths,
)
from steward.config import Engagement, EngagementConfigError, config_hash

log = logging.getLogger(__name__)

WORK_TASKS = stages.WORK  # the tasks whose states the audit record keeps (steward.stages)
DEADLINE_CALLBACK = "steward.airflow.deadlines.deadline_missed"


def deadline_alerts(eng: Engagement) -> list[DeadlineAlert]:
    """Freshness and completion SLAs as Airflow Deadline Alerts, counted from the scheduled time."""
    alerts = []
    for name, sla in (("freshness", eng.sla.freshness), ("completion", eng.sla.completion)):
        if sla is not None:
            alerts.append(DeadlineAlert(
                reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
                interval=dt.timedelta(minutes=sla.minutes_after_schedule),
                callback=SyncCallback(DEADLINE_CALLBACK, kwargs={"engagement_id": eng.id, "sla": name,
                                                                 "minutes": sla.minutes_after_schedule}),
                name=f"{eng.id}:{name}",
            ))
    return alerts


def approval_dag_id(engagement_id: str) -> str:
    return f"{engagement_id}__approval"


def approval_asset_of(eng: Engagement) -> Asset:
    return Asset(f"steward://{eng.id}/approval", group="steward")


def build_dag(eng: Engagement, config_path: Path) -> DAG:
    digest = config_hash(config_path)
    audit_asset = Asset(f"steward://{eng.id}/audit", group="steward")
    quarantine_asset = Asset(f"steward://{eng.id}/quarantine", group="steward")
    approval_asset = approval_asset_of(eng)

    with DAG(
        dag_id=eng.id,
        # The run that fires on night D has logical date D and processes D's batch.
        schedule=CronTriggerTimetable(eng.schedule, timezone="UTC"),
        start_date=pendulum.datetime(eng.start_date.year, eng.start_date.month, eng.start_date.day, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=[eng.client, eng.use_case],
        doc_md=render_doc(eng, config_path),
        default_args={
            "owner": eng.owner,
            "retries": DEFAULT_RETRIES,
            "retry_delay": retry_delay(),
            **({"queue": eng.execution.queue} if eng.execution.queue else {}),
            **({"pool": eng.execution.pool} if eng.execution.pool else {}),
        },
        params={},
        deadline=deadline_alerts(eng) or None,
    ) as dag:

        @json_task
        def join_labels() -> dict[str, Any]:
            """Join the labels that arrived tonight to the predictions they belong to; realised performance."""
            from steward import pipeline

            result = pipeline.join_labels(eng, state_paths(), logical_day(), connect=connect)
            if result.get("arrived"):
                log.info("labels %s: %s rows, %s joined to %s, %s unknown ids, %s duplicates, %s for quarantined "
                         "batches%s", result["file"], result.get("rows"), result.get("joined"),
                         result.get("prediction_dates"), result.get("unknown_ids"), result.get("duplicates"),
                         result.get("for_quarantined"), f"; REJECTED: {result['rejected']}" if result.get("rejected") else "")
            for p in result.get("performance") or []:
                log.info("realised %s for %s: %s on %d rows (v%s; estimated %s)", p["metric"], p["prediction_date"],
                         p["realised_value"], p["labelled_rows"], p["model_version"], p["estimated_value"])
            for a in result["adoption"]["recorded"]:
                log.info("adoption %s: the client acted on %d of %d rows served (v%s; %d feedback ids never served)",
                         a["prediction_date"], a["acted_rows"], a["scored_rows"], a["model_version"], a["unknown_ids"])
            for r in result["adoption"]["rejected"]:
                log.warning("feedback REJECTED %s: %s (kept as it is; adoption unknown for that date)", r["file"], r["reason"])
            return result

        @json_task(trigger_rule=stages.trigger_rule("check_outcomes"))
        def check_outcomes() -> dict[str, Any]:
            """Performance SLA on realised outcomes; the configured response (incident, rollback, retrain)."""
            from steward import pipeline

            result = pipeline.check_outcomes(eng, state_paths(), logical_day())
            if result["performance_sla"]:
                log.info("performance SLA: met=%s: %s", result["performance_sla"]["met"], result["performance_sla"]["detail"])
                response = result["response"]
                if response.get("rollback"):
                    log.warning("AUTO-ROLLBACK v%s -> v%s", response["rollback"]["from_version"],
                                response["rollback"]["to_version"])
                for note in response.get("notes") or []:
                    log.info("%s", note)
            return result

        @json_task
        def land_batch() -> dict[str, Any]:
            """Copy the night's file into the landed area and fingerprint it (sha256, rows, schema)."""
            from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

            from steward import pipeline
            from steward.governance.retention import ResidencyError
            from steward.sources.batches import BatchMissingError

            try:
                result = pipeline.land(eng, state_paths(), logical_day(), connect=connect, open_path=opener(eng))
            except BatchMissingError as exc:
                log.warning("SKIPPED: %s", exc)
                raise AirflowSkipException(f"missing batch: {exc}") from None
            except ResidencyError as exc:  # retrying cannot fix a residency conflict
                log.error("REFUSED: %s", exc)
                raise AirflowFailException(str(exc)) from None
            b = result["batch"]
            log.info("landed %s sha256=%s rows=%s", b["path"], b["sha256"],
                     (result["profile"] or {}).get("rows"))
            return result

        @json_task
        def validate_batch(landed: dict[str, Any]) -> dict[str, Any]:
            """Great Expectations suite built from the config; HTML report kept per run."""
            from steward import pipeline

            result = pipeline.validate(eng, state_paths(), logical_day(), landed, connect=connect)
            log.info("quality %s: %d/%d checks failed; report %s", "PASSED" if result["success"] else "FAILED",
                     len(result["failed"]), result["evaluated"], result["report_html"])
            return result

        @task.branch
        def route_on_quality(quality: dict[str, Any]) -> str:
            return "ensure_champion" if quality["success"] else "quarantine_batch"

        @json_task(outlets=[quarantine_asset])
        def quarantine_batch(landed: dict[str, Any], quality: dict[str, Any]) -> dict[str, Any]:
            """Move the batch to quarantine with a reason file; monitoring and training are skipped."""
            from steward import pipeline

            result = pipeline.quarantine(eng, state_paths(), logical_day(), landed, quality, connect=connect)
            failed = "; ".join(f"{c['expectation']}({c['column'] or ''})" for c in quality["failed"])
            log.warning("QUARANTINED batch %s -> %s. Failed checks: %s", landed["batch"]["path"],
                        result["quarantine_path"], failed)
            get_current_context()["outlet_events"][quarantine_asset].extra = {
                "logical_date": logical_day(), "failed_checks": result["failed_checks"], "sha256": result["sha256"]}
            return result

        @json_task
        def ensure_champion() -> dict[str, Any]:
            """The current champion; bootstrap one from the reference data on the first run."""
            from steward import pipeline

            result = pipeline.ensure_champion(eng, state_paths(), logical_day(), config_hash=digest, run_tags=run_tags())
            log.info("champion %s v%s%s", eng.registered_model_name, result["champion"]["version"],
                     " (bootstrapped)" if result["bootstrapped"] else "")
            return result

        @json_task
        def detect_drift(landed: dict[str, Any], champion: dict[str, Any]) -> dict[str, Any]:
            """Evidently: per-feature and prediction drift vs reference; performance on labelled rows."""
            from steward import pipeline

            result = pipeline.monitor(eng, state_paths(), logical_day(), landed, champion)
            d, p = result["drift"], result["performance"]
            log.info("drift share %.2f (dataset drift: %s); performance %s on %d rows", d["drift_share"],
                     d["dataset_drift"], p["metrics"].get(eng.performance.metric), p["rows"])
            return result

        @json_task
        def decide_retrain(monitoring: dict[str, Any], champion: dict[str, Any]) -> dict[str, Any]:
            """Policy: retrain on drift, performance breach, the scheduled refresh, the refit's evidence or
            grown data, or keep; every reason recorded (steward.policy)."""
            from steward import pipeline

            outcome = pull(get_current_context()["ti"], "check_outcomes")
            decision = pipeline.decide(eng, state_paths(), logical_day(), monitoring, champion, outcome)
            log.info("decision: %s: %s", decision["action"], " | ".join(decision["reasons"]))
            return dict(decision)

        @task.branch
        def route_on_decision(decision: dict[str, Any]) -> str:
            return {"retrain": "retrain_candidate", "shadow": "judge_shadow"}.get(decision["action"], "keep_champion")

        @json_task
        def score_batch(landed: dict[str, Any], champion: dict[str, Any]) -> dict[str, Any]:
            """Predictions the client consumes, stored with the model version; CBPE estimate while labels are pending."""
            from steward import pipeline

            result = pipeline.score(eng, state_paths(), logical_day(), landed, champion, connect=connect)
            log.info("scored %d rows with v%s -> %s%s", result["rows"], result["model_version"], result["path"],
                     f"; estimated {result['estimate']['metric']} {result['estimate']['value']}" if result["estimate"] else "")
            return result

        @json_task
        def score_baselines(landed: dict[str, Any]) -> dict[str, Any]:
            """Never served: the never-retrained model and a periodic refit score the batch too, so what
            operating the model added is measured on the same rows as labels arrive (ADR 0025)."""
            from steward import pipeline

            result = pipeline.score_baselines(eng, state_paths(), logical_day(), landed)
            if result.get("error"):
                log.warning("baselines NOT scored tonight (recorded; the night goes on): %s", result["error"])
            elif result["enabled"]:
                log.info("baselines scored %d rows (never retrained v%s, periodic refit of %s) in %.2f CPU s",
                         result["rows"], (result.get("never_retrained") or {}).get("version"),
                         result["periodic_refit"]["refit_for"], result["cpu_seconds"])
            return result

        keep_champion = EmptyOperator(task_id="keep_champion")

        @json_task
        def retrain_candidate(champion: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
            """Train a challenger on the window, log it to MLflow, register it with alias `challenger`."""
            from steward import pipeline

            result = pipeline.retrain(eng, state_paths(), logical_day(), champion, decision, config_hash=digest,
                                      run_tags=run_tags())
            log.info("challenger v%s (%s): %s", result["challenger"]["version"],
                     "reused" if result["reused_existing_version"] else "new", result["scores"])
            return result

        @json_task
        def gate_and_promote(retrained: dict[str, Any], champion: dict[str, Any]) -> dict[str, Any]:
            """Move alias `champion` only when the challenger beats it on the same holdout."""
            from steward import pipeline

            result = pipeline.promote(eng, state_paths(), logical_day(), retrained, champion)
            log.info("gate: %s (champion v%s -> v%s): %s", result["action"], result["champion_before"],
                     result["champion_after"], " | ".join(result["reasons"]))
            return result

        @json_task
        def judge_shadow(champion: dict[str, Any]) -> dict[str, Any]:
            """The challenger in shadow against the champion on the labelled nights it never saw: promote,
            retire or wait (ADR 0015)."""
            from steward import pipeline

            result = pipeline.judge_shadow(eng, state_paths(), logical_day(), champion)
            log.info("shadow: %s (champion v%s -> v%s): %s", result["action"], result["champion_before"],
                     result["champion_after"], " | ".join(result["reasons"]))
            return result

        @json_task(trigger_rule=stages.trigger_rule("request_approval"), outlets=[approval_asset])
        def request_approval() -> dict[str, Any]:
            """A challenger the evidence would promote waits for a person (issue 35): the asset event starts
            `<id>__approval`, which asks in Required Actions. Skipped (no event) when nothing waits."""
            from airflow.sdk.exceptions import AirflowSkipException

            from steward.governance import approvals

            ctx = get_current_context()
            asked = [r for r in (pull(ctx["ti"], t) for t in ("gate_and_promote", "judge_shadow"))
                     if r and r.get("action") == "approval"]
            pending = approvals.read(state_paths(), eng.id)
            if not asked or pending is None or "answer" in pending:
                raise AirflowSkipException("no challenger waits for an approval tonight")
            ctx["outlet_events"][approval_asset].extra = {"engagement": eng.id, "version": pending["version"],
                                                          "requested_for": pending["requested_for"]}
            log.info("v%s waits for an approval by %s", pending["version"], ", ".join(pending["approvers"]))
            return {"version": pending["version"], "approvers": pending["approvers"],
                    "requested_for": pending["requested_for"], "approval_dag": approval_dag_id(eng.id)}

        @json_task(trigger_rule=stages.trigger_rule("raise_alerts"))
        def raise_alerts() -> dict[str, Any]:
            """Always runs: quality, drift and SLA conditions open or resolve incidents; alerts are sent
            through Airflow notifiers (failures recorded on the incident and retried)."""
            from steward import pipeline
            from steward.airflow import notifiers

            ctx = get_current_context()
            results = {t: pull(ctx["ti"], t) for t in ("land_batch", "validate_batch", "detect_drift", "score_batch")}
            result = pipeline.raise_alerts(eng, state_paths(), logical_day(), results)
            result["delivery"] = notifiers.deliver(eng, ctx)
            for c in result["conditions"]:
                log.info("condition %s: %s", c["condition"], c)
            for f in result["delivery"]["failed"]:
                log.error("ALERT NOT SENT via %s (attempt %d, retried later: %s): %s", f["channel"], f["attempt"],
                          f["will_retry"], f["error"])
            return result

        @json_task(trigger_rule=stages.trigger_rule("export_audit"), outlets=[audit_asset])
        def export_audit() -> dict[str, Any]:
            """Always runs: one JSON record of what the night saw and decided, written atomically."""
            from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

            from steward.governance import audit, export, lineage

            ctx = get_current_context()
            ti = ctx["ti"]

            def gather() -> tuple[dict[str, Any], dict[str, str]]:
                results = {t: pull(ti, t) for t in audit.STAGES}
                states = RuntimeTaskInstance.get_task_states(dag_id=eng.id, task_ids=list(WORK_TASKS),
                                                             run_ids=[ctx["run_id"]])
                return results, {k: str(v) for k, v in (states.get(ctx["run_id"]) or {}).items()}

            bundle = getattr(ti, "bundle_instance", None)
            # the Airflow DAG version that ran (Airflow 3 DAG versioning: `GET /api/v2/dags/<id>/dagVersions`
            # maps the id to the number the UI shows), beside the config hash and the code version (issue 35)
            run = {"dag_id": eng.id, "run_id": ctx["run_id"], "try_number": ti.try_number,
                   "logical_date": str(ctx["dag_run"].logical_date),
                   "dag_version_id": str(ti.dag_version_id) if getattr(ti, "dag_version_id", None) else None,
                   "dag_bundle": None if bundle is None else {"name": bundle.name, "version": bundle.version}}
            from steward.airflow.signing_key import ledger_signing_key

            key, unsigned_reason = ledger_signing_key()
            done = export.export_night(eng, state_paths(), day=logical_day(), run=run, config_path=config_path,
                                       config_hash=digest, gather=gather, signing_key=key,
                                       unsigned_reason=unsigned_reason)
            record, path, entry = done["record"], done["path"], done["entry"]
            if done["already_recorded"]:
                log.info("this run's record is already in the ledger (entry %s): kept as it is", entry["seq"])
            log.info("emitted %d OpenLineage events to %s", done["lineage_events"],
                     lineage.lineage_path(state_paths(), eng.id))
            ctx["outlet_events"][audit_asset].extra = {"logical_date": logical_day(), "outcome": record["outcome"],
                                                       "ledger_seq": entry["seq"], "ledger_hash": entry["hash"]}
            log.info("audit record %s: outcome=%s; ledger entry %s (%s...) citing %d artifacts; %s", path,
                     record["outcome"], entry["seq"], entry["hash"][:12], entry["artifacts"],
                     f"head signed by {entry['checkpoint']['key']}" if entry["signed"]
                     else f"head UNSIGNED: {entry['checkpoint']['unsigned']}")
            return {"path": str(path), "outcome": record["outcome"], "ledger_seq": entry["seq"],
                    "ledger_hash": entry["hash"]}

        @task(trigger_rule=stages.trigger_rule("fail_run_on_error"))
        def fail_run_on_error() -> None:
            """Leaf watcher: export_audit always succeeds, so this keeps a failed stage visible as a failed run."""
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException("a pipeline stage failed; see the failed task and the audit record")

        tasks: dict[str, Any] = {}
        tasks["join_labels"] = join_labels()
        tasks["check_outcomes"] = check_outcomes()
        tasks["outcomes_settled"] = EmptyOperator(task_id="outcomes_settled",
                                                  trigger_rule=stages.trigger_rule("outcomes_settled"))
        if eng.data.wait_minutes:  # the sensor module is imported only for engagements that wait
            @task.sensor(poke_interval=max(5.0, min(60.0, eng.data.wait_minutes * 15)), timeout=eng.data.wait_minutes * 60, mode="reschedule", soft_fail=True)
            def wait_for_batch() -> PokeReturnValue:
                """Wait (up to data.wait_minutes) for a late batch; the freshness Deadline Alert fires meanwhile."""
                from steward import pipeline

                return PokeReturnValue(is_done=pipeline.batch_arrived(
                    eng, state_paths(), dt.date.fromisoformat(logical_day()), connect=connect, open_path=opener(eng)))

            tasks["wait_for_batch"] = wait_for_batch()
        landed = tasks["land_batch"] = land_batch()
        quality = tasks["validate_batch"] = validate_batch(landed)
        tasks["route_on_quality"] = route_on_quality(quality)
        tasks["quarantine_batch"] = quarantine_batch(landed, quality)
        champion = tasks["ensure_champion"] = ensure_champion()
        tasks["score_batch"] = score_batch(landed, champion)
        monitoring = tasks["detect_drift"] = detect_drift(landed, champion)
        tasks["score_baselines"] = score_baselines(landed)
        decision = tasks["decide_retrain"] = decide_retrain(monitoring, champion)
        tasks["route_on_decision"] = route_on_decision(decision)
        tasks["keep_champion"] = keep_champion
        retrained = tasks["retrain_candidate"] = retrain_candidate(champion, decision)
        tasks["judge_shadow"] = judge_shadow(champion)
        tasks["gate_and_promote"] = gate_and_promote(retrained, champion)
        if eng.promotion.approval.required:
            tasks["request_approval"] = request_approval()
        tasks["raise_alerts"] = raise_alerts()
        tasks["export_audit"] = export_audit()
        tasks["fail_run_on_error"] = fail_run_on_error()
        for stage in stages.NIGHTLY:  # the order between stages comes from the one table (steward.stages)
            for up in stage.upstream:
                if up in tasks and stage.task_id in tasks:
                    tasks[up] >> tasks[stage.task_id]
    return dag


class InvalidEngagementFiles(ValueError):
    """One or more engagement files failed validation; the message lists each file and field."""


class BrokenEngagementDAG(DAG):
    """Stands in for engagement files that failed validation.

    The DAG processor calls `validate()` on every DAG it finds and records an import error for the
    file when it raises, while still bagging the other DAGs of the file. So the good engagements load
    and the UI shows one import error naming each bad file and field.
    """

    config_errors: tuple[EngagementConfigError, ...] = ()

    def validate(self) -> None:  # type: ignore[override]
        details = "\n".join(f"- {e}" for e in self.config_errors)
        raise InvalidEngagementFiles(f"{len(self.config_errors)} invalid engagement file(s):\n{details}")


def broken_placeholder(errors: list[EngagementConfigError]) -> DAG:
    dag = BrokenEngagementDAG(dag_id="steward_invalid_engagements", schedule=None)
    dag.config_errors = tuple(errors)
    return dag
