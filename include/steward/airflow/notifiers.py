"""Sending alerts through Airflow notifiers: the SMTP and Slack-webhook providers (credentials from Airflow
connections), and a local incident-log notifier so the embedded mode alerts offline.

`steward.operations.notify` decides what to send and records what happened; this module only sends. Notifiers are
called with `.notify(context)` rather than `notifier(context)`: the latter logs and swallows failures,
and a failed alert must be recorded on the incident and retried.
"""

from __future__ import annotations

import html
from typing import Any

from airflow.sdk import BaseNotifier

from steward.config import Engagement
from steward.operations import notify
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

    # No client-side retries: the outbox retries, and the Slack SDK logs the webhook URL (it embeds the
    # token) before each retry.
    return SlackWebhookNotifier(slack_webhook_conn_id=spec.conn_id, text=f"*{subject}*\n```{body}```",
                                retry_handlers=[])


class NotificationFailedError(RuntimeError):
    """A channel failed; the message has the connection's secrets masked (it is stored and alerted on)."""


def _secrets_of(conn_id: str) -> list[str]:
    """Values of the connection that must never be written anywhere: password, and for webhooks the URL
    path that embeds the token.

    Fails closed: a connection that cannot be looked up (not defined, secrets backend down) raises
    NotificationFailedError, and nothing is sent: the notifier would look it up again, and whatever it
    then logged or raised would go out unmasked. The failure is recorded on the incident and retried."""
    from urllib.parse import quote

    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:
        first_line = (str(exc).splitlines() or [""])[0][:200]
        raise NotificationFailedError(f"connection '{conn_id}' could not be looked up ({type(exc).__name__}: "
                                      f"{first_line}): not sent, its secrets could not be masked") from None
    values = [v for v in (conn.password, *(str(x) for x in (conn.extra_dejson or {}).values())) if v and len(v) >= 4]
    if conn.host and "/" in conn.host.split("://", 1)[-1]:
        values.append(conn.host.split("://", 1)[-1].split("/", 1)[1])
    return sorted({*values, *(quote(v, safe="") for v in values)}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def sender(eng: Engagement, context: Any) -> notify.Sender:
    def send(channel: str, subject: str, body: str) -> None:
        from airflow.sdk.log import mask_secret

        conn_id = channel.partition(":")[2]
        secrets = _secrets_of(conn_id) if conn_id else []  # raises (nothing sent) when the lookup fails
        for secret in secrets:  # client libraries log request URLs (the Slack SDK logs the webhook on retry)
            mask_secret(secret)
        try:
            notifier_for(eng, channel, subject, body).notify(context)
        except Exception as exc:
            raise NotificationFailedError(redact(f"{type(exc).__name__}: {exc}", secrets)) from None

    return send


def deliver(eng: Engagement, context: Any) -> dict[str, Any]:
    return notify.deliver(StewardPaths.from_env(), eng, sender(eng, context))
