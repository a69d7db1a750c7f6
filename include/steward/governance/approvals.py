"""A person approves each promotion where a client requires it (issue 35, `promotion.approval`).

The night never waits: when the gate (or the shadow period) would promote, the challenger is tagged and aliased
`awaiting_approval`, its evidence is written to `<home>/approvals/<id>.json`, and the night emits an asset event.
The engagement's approval DAG (`<id>__approval`, steward.airflow.approval_dag) asks the named approvers in
Airflow's Required Actions (the standard provider's ApprovalOperator) and calls `answer` with what they said. Only
an approval promotes; a rejection, a timeout or a request that a newer one superseded leaves the champion as it
is. Every answer is a signed-ledger entry (`approval`), the version's tags and the status row say it, and the
version gains an `approval.md` beside its model card (the card itself, cited by the night, is never rewritten).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

from steward import mlflow_tags
from steward.config import Engagement
from steward.governance import ledger
from steward.settings import StewardPaths, inside
from steward.sources.batches import atomic_write_json

Outcome = Literal["approved", "rejected", "timed_out", "superseded"]


def request_path(paths: StewardPaths, engagement_id: str) -> Path:
    return inside(paths.home, f"approvals/{engagement_id}.json")


def request(c: Any, eng: Engagement, paths: StewardPaths, version: int, day: dt.date, *, reasons: list[str],
            evidence: dict[str, Any] | None, champion: int | None) -> dict[str, Any]:
    """Ask for an approval of `version` (idempotent: a rerun of the night asks the same)."""
    from steward.models import registry

    tags = registry.get_version(c, eng, version).tags
    if mlflow_tags.APPROVAL in tags:  # already answered: a rerun of the requesting night asks nothing again
        return read(paths, eng.id) or {}
    registry.tag_version(c, eng, version, {mlflow_tags.APPROVAL_REQUESTED: day.isoformat()})
    registry.set_alias(c, eng, registry.AWAITING_APPROVAL, version)
    card = paths.run_dir(eng.id, day.isoformat()) / f"model_v{version}" / "model_card.md"
    pending = {"engagement": eng.id, "version": version, "champion": champion, "requested_for": day.isoformat(),
               "approvers": list(eng.promotion.approval.approvers),
               "timeout_hours": eng.promotion.approval.timeout_hours, "reasons": reasons, "evidence": evidence,
               "model_card": str(card) if card.exists() else None, "fairness": _fairness(paths, eng.id, day, version)}
    atomic_write_json(request_path(paths, eng.id), pending)
    return pending


def _fairness(paths: StewardPaths, engagement_id: str, day: dt.date, version: int) -> dict[str, Any] | None:
    found = paths.run_dir(engagement_id, day.isoformat()) / f"model_v{version}" / "fairness.json"
    return json.loads(found.read_text()) if found.exists() else None


def read(paths: StewardPaths, engagement_id: str) -> dict[str, Any] | None:
    path = request_path(paths, engagement_id)
    return json.loads(path.read_text()) if path.exists() else None


def body(pending: dict[str, Any]) -> str:
    """The evidence an approver reads in Required Actions (Markdown)."""
    ev = pending.get("evidence") or {}
    lines = [f"**{pending['engagement']}**: promote **v{pending['version']}** over champion "
             f"v{pending['champion']} (requested on the night of {pending['requested_for']}).", "", "Why:"]
    lines += [f"- {r}" for r in pending.get("reasons") or []]
    if ev:
        bound = ev.get("lower_bound")
        lines += ["", f"Evidence: gain {ev.get('gain')} over {ev.get('rows')} labelled rows of {ev.get('nights')} "
                  f"night(s)" + (f", lower bound {bound}" if bound is not None else "") + "."]
    fairness = pending.get("fairness") or {}
    for attribute, data in fairness.items():
        gaps = ", ".join(f"{m} {v:.3f}" for m, v in (data.get("gap") or {}).items() if v is not None)
        lines.append(f"Fairness by `{attribute}`: largest gap {gaps or 'n/a'}.")
    if pending.get("model_card"):
        lines += ["", f"Model card: `{pending['model_card']}`"]
    lines += ["", f"No answer within {pending['timeout_hours']:g} h counts as a rejection; only an approval promotes."]
    return "\n".join(lines)


def answer(eng: Engagement, paths: StewardPaths, version: int, outcome: Outcome, *, by: str | None, comment: str,
           answered_at: str) -> dict[str, Any]:
    """Record the answer for `version`; on an approval, make it champion from the next night on."""
    from steward.models import registry

    c = registry.client(paths)
    pending = read(paths, eng.id) or {}
    waiting = registry.get_alias(c, eng, registry.AWAITING_APPROVAL)
    if waiting is None or waiting.version != version:
        outcome = "superseded" if outcome == "approved" else outcome
    current = registry.get_alias(c, eng, registry.CHAMPION)
    as_of = _latest_night(paths, eng.id, pending.get("requested_for"))
    promoted = False
    if outcome == "approved":
        if current is not None and current.version >= version:
            outcome = "superseded"
        else:
            registry.tag_version(c, eng, version, {registry.PROMOTED_FOR_TAG: as_of,
                                                   registry.REPLACED_TAG: str(current.version) if current else ""})
            if current is not None:
                registry.set_alias(c, eng, registry.PREVIOUS_CHAMPION, current.version)
            registry.set_alias(c, eng, registry.CHAMPION, version)
            promoted = True
    registry.tag_version(c, eng, version, {mlflow_tags.APPROVAL: outcome})
    if waiting is not None and waiting.version == version:
        registry.delete_alias(c, eng, registry.AWAITING_APPROVAL)
    note = _answer_note(paths, eng.id, pending, version, outcome, by, comment, answered_at)
    entry = ledger.append(paths, eng.id, "approval", logical_date=as_of,
                          artifacts=ledger.hash_artifacts(paths, [note]) if note else None, detail={
        "version": version, "outcome": outcome, "answered_by": by, "comment": comment, "answered_at": answered_at,
        "requested_for": pending.get("requested_for"), "approvers": list(eng.promotion.approval.approvers),
        "champion_before": current.version if current else None,
        "champion_after": version if promoted else (current.version if current else None)})
    if pending.get("version") == version:
        atomic_write_json(request_path(paths, eng.id), {**pending, "answer": {
            "outcome": outcome, "by": by, "comment": comment, "at": answered_at, "ledger_seq": entry["seq"]}})
    from steward.operations import status

    status.amend_row(paths, eng.id, awaiting_approval=None,
                     **({"champion_version": version, "champion_promoted_at": as_of} if promoted else {}))
    return {"version": version, "outcome": outcome, "promoted": promoted, "as_of": as_of,
            "ledger_seq": entry["seq"], "ledger_hash": entry["hash"]}


def _latest_night(paths: StewardPaths, engagement_id: str, requested_for: str | None) -> str:
    """The newest night that has run: an approval holds from the night after it (a promotion at the end of
    night D serves from D+1, as at the gate)."""
    from steward.operations import status

    row = (status.read(paths, engagement_id) or {}).get("row") or {}
    nights = [d for d in (row.get("last_night"), requested_for) if d]
    return max(nights) if nights else dt.date.today().isoformat()


def _answer_note(paths: StewardPaths, engagement_id: str, pending: dict[str, Any], version: int, outcome: str,
                 by: str | None, comment: str, at: str) -> Path | None:
    """`approval.md` beside the version's model card (a file of its own: the card is already cited, with its
    hash, by the night that asked, and is never rewritten)."""
    if pending.get("version") != version or not pending.get("requested_for"):
        return None
    folder = paths.run_dir(engagement_id, pending["requested_for"]) / f"model_v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "approval.md"
    path.write_text(f"# Approval of {engagement_id} v{version}\n\n- Outcome: **{outcome}**, by "
                    f"{by or 'nobody (timeout)'} at {at}\n- Comment: {comment or '-'}\n- Approvers named: "
                    f"{', '.join(pending.get('approvers') or [])}\n- Requested on the night of "
                    f"{pending['requested_for']}\n")
    return path
