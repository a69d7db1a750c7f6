"""Incidents: one record per condition episode, with states open -> acknowledged -> resolved.

An incident opens on the night a condition (an SLA breach, a quality failure, drift ...) is first seen,
stays open while it persists (no new incident, no new alert every night), and is resolved on the first
night the condition has cleared. Time to recovery is counted in nights between the logical dates
(what reruns and backfills reproduce) and in hours between the wall-clock times it was opened and
resolved. A rerun of a night finds the incident that night opened instead of opening another.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from steward import store
from steward.settings import StewardPaths

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
ACTIVE = (OPEN, ACKNOWLEDGED)


class IncidentError(ValueError):
    pass


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _about(t: Any, subject: str | None) -> Any:
    """Incidents are one per condition, or per (condition, subject) where a subject is given (a column)."""
    return t.c.subject.is_(None) if subject is None else t.c.subject == subject


def open_or_continue(paths: StewardPaths, engagement_id: str, condition: str, day: str, *, summary: str,
                     response: str, subject: str | None = None) -> tuple[dict[str, Any], bool]:
    """The active incident for the condition (and subject), or a new one opened on `day`. Returns
    (incident, opened_now)."""
    t = store.incidents
    with store.transaction(paths) as conn:
        same_night = conn.execute(select(t).where(t.c.engagement == engagement_id, t.c.condition == condition,
                                                  _about(t, subject), t.c.opened_on == day)).first()
        if same_night is not None:
            return dict(same_night._mapping), False
        active = conn.execute(select(t).where(t.c.engagement == engagement_id, t.c.condition == condition,
                                              _about(t, subject), t.c.state.in_(ACTIVE), t.c.opened_on < day)
                              .order_by(t.c.id.desc())).first()
        if active is not None:
            return dict(active._mapping), False
        new_id = conn.execute(t.insert().values(
            engagement=engagement_id, condition=condition, subject=subject, state=OPEN, opened_on=day,
            opened_at=_now(), summary=summary, response=response, actions=[])).inserted_primary_key[0]
        return dict(conn.execute(select(t).where(t.c.id == new_id)).first()._mapping), True


def active_subjects(paths: StewardPaths, engagement_id: str, condition: str) -> list[str]:
    """The subjects of the condition's active incidents (the columns of the data-quality alarms)."""
    t = store.incidents
    with store.transaction(paths) as conn:
        return sorted({r.subject for r in conn.execute(select(t.c.subject).where(
            t.c.engagement == engagement_id, t.c.condition == condition, t.c.state.in_(ACTIVE),
            t.c.subject.is_not(None)))})


def resolve(paths: StewardPaths, engagement_id: str, condition: str, day: str, resolution: str, *,
            same_night: bool = False, subject: str | None = None) -> list[dict[str, Any]]:
    """Resolve the condition's active incidents opened before `day` (the night it cleared), or on it too
    for conditions that can clear within their night (a late batch that landed after all)."""
    t = store.incidents
    opened = t.c.opened_on <= day if same_night else t.c.opened_on < day
    with store.transaction(paths) as conn:
        active = [dict(r._mapping) for r in conn.execute(select(t).where(
            t.c.engagement == engagement_id, t.c.condition == condition, _about(t, subject), t.c.state.in_(ACTIVE),
            opened))]
        for inc in active:
            conn.execute(update(t).where(t.c.id == inc["id"]).values(
                state=RESOLVED, resolved_on=day, resolved_at=_now(), resolution=resolution))
    return [get(paths, inc["id"]) for inc in active]


def acknowledge(paths: StewardPaths, incident_id: int, by: str) -> dict[str, Any]:
    incident = get(paths, incident_id)
    if incident["state"] != OPEN:
        raise IncidentError(f"incident {incident_id} is {incident['state']}, not open")
    with store.transaction(paths) as conn:
        conn.execute(update(store.incidents).where(store.incidents.c.id == incident_id).values(
            state=ACKNOWLEDGED, acknowledged_at=_now(), acknowledged_by=by))
    return get(paths, incident_id)


def close(paths: StewardPaths, incident_id: int, day: str, resolution: str) -> dict[str, Any]:
    """Resolve by hand (`steward incident resolve`)."""
    incident = get(paths, incident_id)
    if incident["state"] == RESOLVED:
        raise IncidentError(f"incident {incident_id} is already resolved")
    with store.transaction(paths) as conn:
        conn.execute(update(store.incidents).where(store.incidents.c.id == incident_id).values(
            state=RESOLVED, resolved_on=day, resolved_at=_now(), resolution=resolution))
    return get(paths, incident_id)


def add_action(paths: StewardPaths, incident_id: int, action: dict[str, Any]) -> None:
    """Append what was done (a rollback, a retrain, a failed notification) unless the same action is there."""
    t = store.incidents
    with store.transaction(paths) as conn:
        actions = list(conn.execute(select(t.c.actions).where(t.c.id == incident_id)).scalar_one() or [])
        if action not in actions:
            conn.execute(update(t).where(t.c.id == incident_id).values(actions=[*actions, action]))


def get(paths: StewardPaths, incident_id: int) -> dict[str, Any]:
    rows = store.select_rows(paths, store.incidents, {"id": incident_id})
    if not rows:
        raise IncidentError(f"no incident {incident_id}")
    return with_recovery(rows[0])


def with_recovery(incident: dict[str, Any]) -> dict[str, Any]:
    """Add time to recovery: nights between logical dates, and hours between wall-clock times."""
    out = dict(incident)
    out["recovery_nights"] = None
    out["recovery_hours"] = None
    if incident.get("resolved_on"):
        out["recovery_nights"] = (dt.date.fromisoformat(incident["resolved_on"])
                                  - dt.date.fromisoformat(incident["opened_on"])).days
        opened, resolved = incident["opened_at"], incident["resolved_at"]
        if opened and resolved:
            if opened.tzinfo is None:  # SQLite returns naive datetimes
                opened, resolved = opened.replace(tzinfo=dt.UTC), resolved.replace(tzinfo=dt.UTC)
            out["recovery_hours"] = round((resolved - opened).total_seconds() / 3600, 3)
    return out


def list_for(paths: StewardPaths, engagement_id: str, *, since: str | None = None, until: str | None = None
             ) -> list[dict[str, Any]]:
    rows = store.select_rows(paths, store.incidents, {"engagement": engagement_id}, order_by="id")
    return [with_recovery(r) for r in rows
            if (since is None or (r["resolved_on"] or "9999") >= since) and (until is None or r["opened_on"] <= until)]


def public(incident: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe view for XCom and the audit record."""
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in incident.items()}
