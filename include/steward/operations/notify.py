"""The alert outbox: every notification is a row before it is sent, so a failed send is never lost.

Each incident event (opened, resolved) is queued once per channel. Delivery tries every queued or
failed notification; a failure is recorded on the row (attempts, last error) and on the incident, and
the notification is tried again on the next delivery (the same night's later stage, or the next night)
until `alerts.max_attempts`. Sending itself is the Airflow layer's job (Airflow notifiers); this module
only decides what to send and remembers what happened, so it stays free of Airflow imports.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from steward import store
from steward.config import Engagement
from steward.operations import incidents
from steward.settings import StewardPaths, inside

log = logging.getLogger(__name__)

INCIDENT_LOG = "incident_log"
PENDING, SENT, FAILED, GAVE_UP = "pending", "sent", "failed", "gave_up"


def channels(eng: Engagement) -> list[str]:
    """Channel keys: the local incident log (always) and each configured channel as type:conn_id."""
    return [INCIDENT_LOG, *(f"{c.type}:{c.conn_id}" for c in eng.alerts.channels)]


def incident_log_path(paths: StewardPaths, engagement_id: str) -> Path:
    return inside(paths.home / "incidents", f"{engagement_id}.jsonl")


def append_incident_log(paths: StewardPaths, engagement_id: str, subject: str, body: str) -> Path:
    """The offline channel: one JSON line per alert, appended (readable with `tail -f`)."""
    path = incident_log_path(paths, engagement_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"at": dt.datetime.now(dt.UTC).isoformat(), "engagement": engagement_id, "subject": subject,
                       "body": body}, sort_keys=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return path


def message(eng: Engagement, incident: dict[str, Any], event: str) -> tuple[str, str]:
    verb = {"opened": "OPEN", "resolved": "RESOLVED"}.get(event, event.upper())
    subject = (f"[steward] {verb}: {eng.client} / {eng.id}: {incident['condition']} "
               f"(incident #{incident['id']}, {incident['opened_on']})")
    lines = [incident["summary"], "", f"response: {incident['response']}"]
    for action in incident.get("actions") or []:
        lines.append(f"action: {action.get('what')}: {action.get('detail', '')}")
    if event == "resolved":
        lines.append(f"resolved on {incident['resolved_on']} after {incident['recovery_nights']} night(s): "
                     f"{incident.get('resolution') or ''}")
    lines += ["", f"owner: {eng.owner}; acknowledge with: steward incident ack {incident['id']} --by NAME"]
    return subject, "\n".join(lines)


def enqueue(paths: StewardPaths, eng: Engagement, incident: dict[str, Any], event: str) -> int:
    """Queue the incident event on every channel (once per channel). Returns how many were queued now."""
    subject, body = message(eng, incident, event)
    t = store.notifications
    queued = 0
    with store.transaction(paths) as conn:
        for channel in channels(eng):
            exists = conn.execute(select(t.c.id).where(t.c.incident_id == incident["id"], t.c.event == event,
                                                       t.c.channel == channel)).first()
            if exists is None:
                conn.execute(t.insert().values(incident_id=incident["id"], engagement=eng.id, event=event,
                                               channel=channel, subject=subject, body=body, status=PENDING,
                                               attempts=0))
                queued += 1
    return queued


Sender = Callable[[str, str, str], None]


def deliver(paths: StewardPaths, eng: Engagement, send: Sender) -> dict[str, Any]:
    """Try every queued or failed notification of the engagement; record each outcome."""
    t = store.notifications
    due = [r for r in store.select_rows(paths, t, {"engagement": eng.id}, order_by="id")
           if r["status"] in (PENDING, FAILED)]
    sent, failed = [], []
    for row in due:
        attempts = row["attempts"] + 1
        try:
            send(row["channel"], row["subject"], row["body"])
        except Exception as exc:  # any channel failure is recorded, never allowed to stop the night
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            error = (text if type(exc).__name__ == "NotificationFailedError" else f"{type(exc).__name__}: {text}")[:500]
            status = GAVE_UP if attempts >= eng.alerts.max_attempts else FAILED
            log.warning("notification %s via %s failed (attempt %d/%d): %s", row["id"], row["channel"], attempts,
                        eng.alerts.max_attempts, error)
            _update(paths, row["id"], status=status, attempts=attempts, last_error=error)
            incidents.add_action(paths, row["incident_id"], {
                "what": "notification_failed", "channel": row["channel"], "event": row["event"],
                "attempt": attempts, "detail": error, "will_retry": status == FAILED})
            failed.append({"id": row["id"], "channel": row["channel"], "attempt": attempts, "error": error,
                           "will_retry": status == FAILED})
            continue
        _update(paths, row["id"], status=SENT, attempts=attempts, sent_at=dt.datetime.now(dt.UTC))
        sent.append({"id": row["id"], "channel": row["channel"], "attempt": attempts})
    return {"sent": sent, "failed": failed}


def _update(paths: StewardPaths, notification_id: int, **values: Any) -> None:
    with store.transaction(paths) as conn:
        conn.execute(update(store.notifications).where(store.notifications.c.id == notification_id).values(**values))


def of_incident(paths: StewardPaths, incident_id: int) -> list[dict[str, Any]]:
    return store.select_rows(paths, store.notifications, {"incident_id": incident_id}, order_by="id")
