"""Running it as a managed service: incidents and alerts, the notification outbox, status summaries for the
UI, the outcome report and the client portfolio, business value, the demo summary and fault injection."""
