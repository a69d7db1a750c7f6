"""`<id>__approval`: a person approves a promotion in Airflow's Required Actions (issue 35).

Built for engagements with `promotion.approval.required`. The nightly DAG's `request_approval` emits an event on
`steward://<id>/approval` when a challenger the evidence would promote waits; this DAG runs on that event, shows
the evidence to the named approvers (the standard provider's ApprovalOperator, `assigned_users`: only they may
answer), and records the answer. Approve promotes (from the night after the newest night run); Reject, or no
answer within `timeout_hours` (the default option is Reject), leaves the champion untouched. Each answer, with
who gave it, when and the comment, is a signed ledger entry.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, Param, get_current_context

from steward.airflow.dag_builder import approval_asset_of, approval_dag_id
from steward.airflow.task_helpers import json_task, state_paths
from steward.config import Engagement

log = logging.getLogger(__name__)

ASK_TASK = "approve_promotion"
ANSWER_KEY = "answer"


class RecordedApproval(ApprovalOperator):
    """Airflow's ApprovalOperator, keeping the answer as an XCom on both paths: on Reject the operator skips
    its downstream tasks before its return value would be pushed, and the rejection must be recorded too."""

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        at = event.get("responded_at")
        context["ti"].xcom_push(key=ANSWER_KEY, value={
            "chosen_options": list(event.get("chosen_options") or []),
            "params_input": dict(event.get("params_input") or {}),
            "responded_by_user": event.get("responded_by_user"),
            "responded_at": at.isoformat() if hasattr(at, "isoformat") else at})
        return super().execute_complete(context, event)


def build_approval_dag(eng: Engagement) -> DAG:
    rules = eng.promotion.approval
    with DAG(
        dag_id=approval_dag_id(eng.id),
        schedule=[approval_asset_of(eng)],
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["steward", "approval", eng.client],
        doc_md=f"Approval of each promotion of **{eng.id}** ({eng.client}: {eng.use_case}) by "
               f"{', '.join(rules.approvers)}. {__doc__}",
        default_args={"owner": eng.owner},
    ) as dag:

        @json_task
        def prepare() -> dict[str, Any]:
            """The pending request and the evidence the approvers read."""
            from airflow.sdk.exceptions import AirflowSkipException

            from steward.governance import approvals

            pending = approvals.read(state_paths(), eng.id)
            if pending is None or "answer" in pending:
                raise AirflowSkipException("no request waits for an answer")
            return {"version": pending["version"], "subject": f"Promote {eng.id} v{pending['version']}?",
                    "body": approvals.body(pending)}

        ask = RecordedApproval(
            task_id=ASK_TASK,
            subject="{{ ti.xcom_pull(task_ids='prepare')['subject'] }}",
            body="{{ ti.xcom_pull(task_ids='prepare')['body'] }}",
            defaults="Reject",
            assigned_users=[{"id": user, "name": user} for user in rules.approvers],
            response_timeout=dt.timedelta(hours=rules.timeout_hours),
            params={"comment": Param("", type="string", title="Comment (written to the ledger)")},
            notifiers=_notifiers(eng),
        )

        @json_task
        def promote_approved() -> dict[str, Any]:
            """Runs only on Approve (the operator skips it otherwise)."""
            return _record(eng, approved=True)

        @json_task(trigger_rule="all_done")
        def record_refusal() -> dict[str, Any]:
            """A rejection or a timeout, recorded; nothing to do after an approval."""
            ctx = get_current_context()
            if ctx["ti"].xcom_pull(task_ids="promote_approved"):
                return {"recorded": "approved"}
            return _record(eng, approved=False)

        prepared = prepare()
        promoted = promote_approved()
        prepared >> ask >> promoted >> record_refusal()
    return dag


def _notifiers(eng: Engagement) -> list[Any]:
    """The engagement's alert channels and its incident log tell the approvers a request waits."""
    from steward.airflow.notifiers import notifier_for
    from steward.operations import notify

    subject = f"[steward] {eng.id}: a promotion waits for your approval"
    body = (f"A challenger of {eng.id} ({eng.client}: {eng.use_case}) passed the gate and waits for "
            f"{', '.join(eng.promotion.approval.approvers)} in Airflow's Required Actions (DAG "
            f"{approval_dag_id(eng.id)}). Without an answer within {eng.promotion.approval.timeout_hours:g} h it "
            "is rejected.")
    return [notifier_for(eng, channel, subject, body) for channel in notify.channels(eng)]


def _record(eng: Engagement, *, approved: bool) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowSkipException

    from steward.airflow.signing_key import ledger_signing_key
    from steward.governance import approvals, export

    ctx = get_current_context()
    prepared = ctx["ti"].xcom_pull(task_ids="prepare")
    answer = ctx["ti"].xcom_pull(task_ids=ASK_TASK, key=ANSWER_KEY)
    if not prepared or not answer:
        raise AirflowSkipException("no request was asked")
    by = _user(answer.get("responded_by_user"))
    outcome = "approved" if approved else ("rejected" if by else "timed_out")
    comment = str((answer.get("params_input") or {}).get("comment") or "")
    result = approvals.answer(eng, state_paths(), int(prepared["version"]), outcome, by=by, comment=comment,
                              answered_at=str(answer.get("responded_at")))
    key, unsigned_reason = ledger_signing_key()
    export.checkpoint_head(state_paths(), eng.id, key, unsigned_reason)  # signed now, like a night
    log.info("%s v%s: %s by %s (ledger entry %s)", eng.id, result["version"], result["outcome"], by or "nobody",
             result["ledger_seq"])
    return result


def _user(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("id") or "") or None
    return str(value) if value else None
