"""The nightly stage graph, declared once (issue 33): every task of an engagement's DAG, the tasks it waits
for and its trigger rule. The DAG builder wires the dependencies and trigger rules from this table; the audit
record's stages (`audit.STAGES`), the task states the record keeps and the timings are derived from it. No
Airflow import, so the domain reads it too; tests/dags compares every built DAG with it.

A new stage is one row here, one task body in the DAG builder and, when its result belongs in the record,
nothing else."""

from __future__ import annotations

from dataclasses import dataclass

ALL_SUCCESS, ALL_DONE, ONE_FAILED = "all_success", "all_done", "one_failed"


@dataclass(frozen=True)
class Stage:
    task_id: str
    upstream: tuple[str, ...] = ()
    trigger_rule: str = ALL_SUCCESS
    recorded: bool = True  # its result (one XCom) goes into the night's audit record
    work: bool = True  # the night's work: its state is kept in the record, and its failure fails the run
    optional: bool = False  # only some engagements have it (a sensor for late batches)


# Every work stage before the alerts: they run whatever happened upstream and see all of it.
_BEFORE_ALERTS = ("join_labels", "check_outcomes", "wait_for_batch", "land_batch", "validate_batch", "route_on_quality",
                  "quarantine_batch", "ensure_champion", "score_batch", "score_baselines", "detect_drift",
                  "decide_retrain", "route_on_decision", "keep_champion", "retrain_candidate", "gate_and_promote",
                  "judge_shadow", "request_approval")

NIGHTLY: tuple[Stage, ...] = (
    Stage("join_labels"),
    # judged on the labels stored so far if tonight's join failed
    Stage("check_outcomes", ("join_labels",), ALL_DONE),
    # labels and outcome checks never stop tonight's landing, validation and scoring: the champion waits for
    # them to finish (an automatic rollback must happen first), not for them to succeed
    Stage("outcomes_settled", ("check_outcomes",), ALL_DONE, recorded=False, work=False),
    Stage("wait_for_batch", (), recorded=False, optional=True),
    Stage("land_batch", ("wait_for_batch",)),
    Stage("validate_batch", ("land_batch",)),
    Stage("route_on_quality", ("validate_batch",), recorded=False),
    Stage("quarantine_batch", ("land_batch", "validate_batch", "route_on_quality")),
    Stage("ensure_champion", ("route_on_quality", "outcomes_settled")),
    Stage("score_batch", ("land_batch", "ensure_champion")),
    Stage("score_baselines", ("land_batch", "score_batch")),
    Stage("detect_drift", ("land_batch", "ensure_champion", "score_batch")),
    # the refit trigger reads tonight's comparison of the baselines (ADR 0025)
    Stage("decide_retrain", ("detect_drift", "ensure_champion", "score_baselines")),
    # the decision is an XCom of its own; the branch only routes on it
    Stage("route_on_decision", ("decide_retrain",), recorded=False),
    Stage("keep_champion", ("route_on_decision",), recorded=False),
    Stage("retrain_candidate", ("ensure_champion", "decide_retrain", "route_on_decision")),
    Stage("gate_and_promote", ("retrain_candidate", "ensure_champion")),
    Stage("judge_shadow", ("ensure_champion", "route_on_decision")),
    # a promotion that needs a person: the event starts the engagement's approval DAG; the night never waits
    Stage("request_approval", ("gate_and_promote", "judge_shadow"), ALL_DONE, optional=True),
    Stage("raise_alerts", _BEFORE_ALERTS, ALL_DONE),
    Stage("export_audit", ("raise_alerts",), ALL_DONE, recorded=False, work=False),
    # export_audit always succeeds: this leaf keeps a failed stage visible as a failed run
    Stage("fail_run_on_error", (*_BEFORE_ALERTS, "raise_alerts"), ONE_FAILED, recorded=False, work=False),
)
BY_ID = {s.task_id: s for s in NIGHTLY}
RECORDED: tuple[str, ...] = tuple(s.task_id for s in NIGHTLY if s.recorded)  # results in the audit record
WORK: tuple[str, ...] = tuple(s.task_id for s in NIGHTLY if s.work)  # task states in the audit record


def trigger_rule(task_id: str) -> str:
    return BY_ID[task_id].trigger_rule
