"""The ledger's signing key, read from an Airflow connection at export time (ADR 0017).

The private key lives in the connection `steward_ledger_signing` (its password field: an unencrypted Ed25519
key in OpenSSH or PEM form), so it comes from wherever the deployment keeps connections: a secrets backend,
an environment variable `AIRFLOW_CONN_STEWARD_LEDGER_SIGNING`, the metadata DB. It is never written to the
state volume, a bundle or a log: it is registered with Airflow's secret masker as soon as it is read, and
every message below names the connection, never its value.

No key, or a key that cannot be read, does not stop the night: the export records it and its checkpoint
says "unsigned" and why, which the status row, the Engagements page and the bundle show.
"""

from __future__ import annotations

from typing import Any

SIGNING_CONN_ID = "steward_ledger_signing"


def ledger_signing_key() -> tuple[Any | None, str | None]:
    """(the private key, None), or (None, why the night's checkpoint is unsigned)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.log import mask_secret

    from steward.governance import signing

    try:
        conn = BaseHook.get_connection(SIGNING_CONN_ID)
    except AirflowNotFoundException:
        return None, f"no signing key: connection '{SIGNING_CONN_ID}' is not defined"
    except Exception as exc:  # a secrets backend that does not answer: record the night, unsigned, and why
        first_line = (str(exc).splitlines() or [""])[0][:200]
        return None, f"no signing key: connection '{SIGNING_CONN_ID}' could not be looked up ({type(exc).__name__}: {first_line})"
    secret = conn.password or ""
    if not secret.strip():
        return None, f"no signing key: connection '{SIGNING_CONN_ID}' has no password (the private key goes there)"
    mask_secret(secret)
    for line in secret.strip().splitlines()[1:-1]:  # the key body is logged line by line if at all
        if len(line) >= 8:
            mask_secret(line)
    try:
        return signing.load_private_key(secret), None
    except signing.SigningKeyError as exc:
        return None, f"no signing key: connection '{SIGNING_CONN_ID}': {exc}"
