"""Fault injection points for the resilience tests (inert unless STEWARD_FAULTS is set).

`STEWARD_FAULTS=churn_telco:retrain.after_register,churn_telco:export.after_record` makes the process that
reaches a listed point for that engagement kill itself with SIGKILL, once per point (a marker file under `STEWARD_HOME/faults/` remembers
it fired), so the Airflow retry that follows runs undisturbed. The tests use it to prove that a worker
dying at the worst moment leaves no duplicate model version and no half-written record. Nothing in
production sets it.
"""

from __future__ import annotations

import os
import signal

from steward.settings import StewardPaths

POINTS = ("retrain.after_register", "export.after_record", "export.after_ledger")


def maybe_die(engagement_id: str, point: str) -> None:
    wanted = os.environ.get("STEWARD_FAULTS", "")
    if not wanted or f"{engagement_id}:{point}" not in wanted.split(","):
        return
    marker = StewardPaths.from_env().home / "faults" / f"{engagement_id}.{point}"
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    os.kill(os.getpid(), signal.SIGKILL)
