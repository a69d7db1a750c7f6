"""Sending alerts through Airflow notifiers: the SMTP and Slack-webhook providers (credentials from Airflow
connections), and a local incident-log notifier so the embedded mode alerts offline.

`steward.notify` decides what to send and records what happened; this module only sends. Notifiers are
called with `.notify(context)` rather than `notifier(context)`: the latter logs and swallows failures,
and a failed alert must be recorded on the incident and retried.
"""

from __future__ import annotations

import html
from typing import Any

from airflow.sdk import BaseNotifier

from steward import notify
from steward.config import Engagement
from steward.settings import StewardPaths


class IncidentLogNotifier(BaseNotifier):
    """Appends the alert to `<STEWARD_HOME>/incidents/<engagement>.jsonl`."""

    template_fields = ()

    def __init__(self, *, engagement_id: str, subject: str, body: str):
        super().__init__()
        self.engagement_id = engagement_id
        self.subject = subject
        self.body = body

    def notify(self, context: Any) -> None:
        notify.append_incident_log(StewardPaths.from_env(), self.engagement_id, self.subject, self.body)


class ChannelNotConfiguredError(LookupError):
    """A queued alert names a channel the engagement file no longer declares."""


def notifier_for(eng: Engagement, channel: str, subject: str, body: str) -> BaseNotifier:
    if channel == notify.INCIDENT_LOG:
        return IncidentLogNotifier(engagement_id=eng.id, subject=subject, body=body)
    kind, _, conn_id = channel.partition(":")
    spec = next((c for c in eng.alerts.channels if c.type == kind and c.conn_id == conn_id), None)
    if spec is None:
        raise ChannelNotConfiguredError(f"channel {channel} is no longer in {eng.id}'s alerts.channels")
    if spec.type == "smtp":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(to=spec.to, from_email=spec.from_email, smtp_conn_id=spec.conn_id, subject=subject,
                            html_content=f"<pre>{html.escape(body)}</pre>")
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    return SlackWebhookNotifier(slack_webhook_conn_id=spec.conn_id, text=f"*{subject}*\n```{body}```")


def sender(eng: Engagement, context: Any) -> notify.Sender:
    def send(channel: str, subject: str, body: str) -> None:
        notifier_for(eng, channel, subject, body).notify(context)

    return send


def deliver(eng: Engagement, context: Any) -> dict[str, Any]:
    return notify.deliver(StewardPaths.from_env(), eng, sender(eng, context))
