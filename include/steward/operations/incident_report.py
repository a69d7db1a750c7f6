"""`steward incident report ID`: an incident report drafted from the stored facts, with a regulatory clock
(issue 35).

EU AI Act Art. 73 asks for a report of a serious incident within 15 days of becoming aware of it, 10 where a
person died, 2 for a widespread infringement or a serious and irreversible disruption of critical
infrastructure. steward cannot know which applies: a person picks the clock (`--deadline-days 2|10|15`) and
decides whether the incident is serious (`steward incident classify`). Both the drafted report (its files cited
with their sha256) and the decision are `incident_report` entries of the engagement's ledger.

The draft is built only from what steward recorded: the incident (opened, acknowledged, resolved, its actions),
the audit records of the nights around it (what each night saw and decided, the version that served, the
realised metric, the rows scored) and the ledger's rollbacks, promotions and approvals in that period.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from pathlib import Path
from typing import Any

from steward.config import Engagement
from steward.governance import ledger
from steward.settings import StewardPaths, inside

DEADLINES = {2: "Art. 73(3): widespread infringement, or a serious and irreversible disruption of critical "
                "infrastructure",
             10: "Art. 73(4): the death of a person",
             15: "Art. 73(2): any other serious incident"}
CONTEXT_NIGHTS = 7  # nights before the first signal and after recovery that show "before" and "after"


class IncidentReportError(ValueError):
    """The report cannot be drafted as asked; nothing was written."""


def reports_dir(paths: StewardPaths, engagement_id: str) -> Path:
    return inside(paths.artifacts, f"{engagement_id}/incident_reports")


def _records(paths: StewardPaths, engagement_id: str, first: dt.date, last: dt.date) -> dict[str, dict[str, Any]]:
    out = {}
    day = first
    while day <= last:
        path = paths.run_dir(engagement_id, day.isoformat()) / "audit.json"
        if path.exists():
            out[day.isoformat()] = json.loads(path.read_text())
        day += dt.timedelta(days=1)
    return out


def _nights_recorded(paths: StewardPaths, engagement_id: str) -> list[dt.date]:
    """The nights with an audit record, from the folder names (no record is read)."""
    base = inside(paths.artifacts, engagement_id)
    nights = []
    for folder in base.iterdir() if base.is_dir() else []:
        try:
            night = dt.date.fromisoformat(folder.name)
        except ValueError:
            continue
        if (folder / "audit.json").exists():
            nights.append(night)
    return nights


def _metric(record: dict[str, Any], metric: str) -> float | None:
    return ((record.get("performance") or {}).get("metrics") or {}).get(metric)


def _mean(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return round(statistics.fmean(found), 4) if found else None


def facts(eng: Engagement, paths: StewardPaths, incident: dict[str, Any]) -> dict[str, Any]:
    """Everything the report says, as data (also written as JSON beside the report)."""
    opened = dt.date.fromisoformat(incident["opened_on"])
    resolved = dt.date.fromisoformat(incident["resolved_on"]) if incident.get("resolved_on") else None
    end = resolved or max((d for d in _nights_recorded(paths, eng.id) if d >= opened), default=opened)
    records = _records(paths, eng.id, opened - dt.timedelta(days=CONTEXT_NIGHTS), end + dt.timedelta(days=CONTEXT_NIGHTS))
    metric = eng.performance.metric
    during = {d: r for d, r in records.items() if opened.isoformat() <= d <= end.isoformat()}
    timeline = [{"night": d, "outcome": r.get("outcome"),
                 "served": (r.get("models") or {}).get("champion_before"),
                 "champion_after": (r.get("models") or {}).get("champion_after"),
                 metric: _metric(r, metric),
                 "drift_share": (r.get("drift") or {}).get("drift_share"),
                 "quality": None if r.get("quality") is None else ("pass" if r["quality"]["success"] else "fail"),
                 "rows": ((r.get("data") or {}).get("profile") or {}).get("rows"),
                 "decision": (r.get("decision") or {}).get("action")} for d, r in sorted(records.items())]
    changes = [e for e in ledger.read_entries(paths, eng.id)
               if e["type"] in ("rollback", "approval") and e.get("logical_date")
               and opened.isoformat() <= e["logical_date"] <= end.isoformat()]
    return {
        "engagement": eng.id, "client": eng.client, "use_case": eng.use_case,
        "incident": {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in incident.items()},
        "first_signal": incident["opened_on"], "recovered": incident.get("resolved_on"),
        "recovery_nights": incident.get("recovery_nights"),
        "versions_served": sorted({t["served"] for t in timeline if t["night"] in during and t["served"]}),
        "metric": metric,
        "metric_before": _mean([t[metric] for t in timeline if t["night"] < opened.isoformat()]),
        "metric_during": _mean([t[metric] for t in timeline if t["night"] in during]),
        "metric_after": _mean([t[metric] for t in timeline if t["night"] > end.isoformat()]),
        "affected_dates": sorted(during),
        "affected_rows": sum(t["rows"] or 0 for t in timeline if t["night"] in during),
        "actions": list(incident.get("actions") or []),
        "promotions": [{"night": t["night"], "from": t["served"], "to": t["champion_after"]} for t in timeline
                       if t["night"] in during and t["champion_after"] != t["served"]],
        "changes": [{"seq": e["seq"], "type": e["type"], "night": e["logical_date"], **e["detail"]} for e in changes],
        "timeline": timeline,
    }


def render(f: dict[str, Any], deadline_days: int, due: dt.date, drafted_by: str) -> str:
    inc = f["incident"]
    m = f["metric"]
    lines = [
        f"# Incident report (draft): {f['engagement']} incident #{inc['id']}",
        "",
        f"- System: **{f['client']}**, {f['use_case']} (engagement `{f['engagement']}`)",
        f"- Condition: **{inc['condition']}**{' (' + inc['subject'] + ')' if inc.get('subject') else ''}; "
        f"state {inc['state']}; {inc.get('summary') or ''}",
        f"- First signal: night {f['first_signal']} (opened {inc.get('opened_at')}); recovery: "
        + (f"night {f['recovered']} after {f['recovery_nights']} night(s)" if f["recovered"] else "**not recovered**"),
        f"- Regulatory clock chosen: **{deadline_days} days** ({DEADLINES[deadline_days]}); report due "
        f"**{due.isoformat()}** if a person decides the incident is serious",
        f"- Drafted by {drafted_by} on {dt.date.today().isoformat()} from steward's records; to be completed and "
        "classified by a person (`steward incident classify`)",
        "",
        "## Impact",
        "",
        f"- Versions served during the incident: {', '.join(f'v{v}' for v in f['versions_served']) or 'none recorded'}",
        f"- {m} before (up to {CONTEXT_NIGHTS} nights): {f['metric_before']}; during: {f['metric_during']}; "
        f"after recovery: {f['metric_after']}",
        f"- Affected prediction dates: {', '.join(f['affected_dates']) or 'none recorded'} "
        f"({f['affected_rows']} rows scored)",
        "",
        "## Actions taken",
        "",
        *([f"- {json.dumps(a, sort_keys=True)}" for a in f["actions"]] or ["- none recorded on the incident"]),
        *[f"- night {p['night']}: champion v{p['from']} -> v{p['to']}" for p in f["promotions"]],
        *[f"- ledger entry {c['seq']} ({c['type']}, night {c['night']}): "
          + ", ".join(f"{k} {v}" for k, v in c.items() if k in ("outcome", "from_version", "to_version", "reason",
                                                                  "answered_by", "version")) for c in f["changes"]],
        "",
        "## Timeline",
        "",
        f"| night | outcome | served | {m} | drift share | quality | rows | decision |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| {t['night']} | {t['outcome']} | v{t['served']} | {t[m]} | {t['drift_share']} | {t['quality']} | "
          f"{t['rows']} | {t['decision']} |" for t in f["timeline"]),
        "",
        "## To be completed by a person",
        "",
        "- Whether the incident is serious (Art. 3(49)), and why",
        "- Who was affected and how; corrective measures beyond the ones above",
        "",
    ]
    return "\n".join(lines)


def draft(eng: Engagement, paths: StewardPaths, incident_id: int, *, deadline_days: int, drafted_by: str
          ) -> dict[str, Any]:
    """Write the report (Markdown, HTML, JSON) and cite it in the ledger; nothing is written on an error."""
    from steward.models.model_card import render_html
    from steward.operations import incidents
    from steward.sources.batches import atomic_write_bytes, atomic_write_json

    if deadline_days not in DEADLINES:
        raise IncidentReportError(f"--deadline-days {deadline_days}: Art. 73 sets 2, 10 or 15 days")
    try:
        incident = incidents.get(paths, incident_id)
    except incidents.IncidentError as exc:
        raise IncidentReportError(str(exc)) from None
    if incident["engagement"] != eng.id:
        raise IncidentReportError(f"incident {incident_id} belongs to {incident['engagement']}, not {eng.id}")
    f = facts(eng, paths, incident)
    aware = incident.get("opened_at")
    start = aware.date() if isinstance(aware, dt.datetime) else dt.date.fromisoformat(incident["opened_on"])
    due = start + dt.timedelta(days=deadline_days)
    text = render(f, deadline_days, due, drafted_by)
    seq = len(ledger.read_entries(paths, eng.id)) + 1
    folder = reports_dir(paths, eng.id)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"incident_{incident_id}_{seq}"
    files = [stem.with_suffix(".md"), stem.with_suffix(".html"), stem.with_suffix(".json")]
    atomic_write_bytes(files[0], text.encode())
    atomic_write_bytes(files[1], render_html(text, f"Incident {incident_id} {eng.id}").encode())
    atomic_write_json(files[2], {**f, "deadline_days": deadline_days, "due": due.isoformat()})
    entry = ledger.append(paths, eng.id, "incident_report", logical_date=incident["opened_on"],
                          artifacts=ledger.hash_artifacts(paths, files),
                          detail={"incident": incident_id, "deadline_days": deadline_days, "due": due.isoformat(),
                                  "drafted_by": drafted_by, "serious": None, "condition": incident["condition"]})
    return {"files": [str(p) for p in files], "due": due.isoformat(), "ledger_seq": entry["seq"], "facts": f}


def classify(eng: Engagement, paths: StewardPaths, incident_id: int, *, serious: bool, decided_by: str,
             reason: str) -> dict[str, Any]:
    """A person's decision on whether the incident is serious, as a ledger entry (after a drafted report)."""
    if not reason.strip():
        raise IncidentReportError("the decision needs a --reason (it goes into the ledger)")
    drafted = [e for e in ledger.read_entries(paths, eng.id)
               if e["type"] == "incident_report" and e["detail"].get("incident") == incident_id]
    if not drafted:
        raise IncidentReportError(f"no report of incident {incident_id} was drafted for {eng.id}: run "
                                  f"`steward incident report {incident_id} --deadline-days N` first")
    latest = next(e for e in reversed(drafted) if e["detail"].get("due"))
    entry = ledger.append(paths, eng.id, "incident_report", logical_date=latest.get("logical_date"), detail={
        "incident": incident_id, "serious": serious, "decided_by": decided_by, "reason": reason.strip(),
        "report_seq": latest["seq"], "due": latest["detail"]["due"] if serious else None})
    return {"ledger_seq": entry["seq"], "serious": serious, "due": entry["detail"]["due"]}
