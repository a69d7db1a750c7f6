"""The per-run audit record: one JSON document with everything a run saw and decided.

It is assembled from the stage results (never recomputed) and written atomically to
`<artifacts>/<engagement>/<logical date>/audit.json`; a rerun of the date replaces it.
"""

from __future__ import annotations

import datetime as dt
import functools
import subprocess
from pathlib import Path
from typing import Any

from steward import __version__, stages
from steward.config import Engagement
from steward.settings import PROJECT_ROOT, StewardPaths
from steward.sources import batches

SCHEMA_VERSION = "steward.governance.audit/1"
STAGES = stages.RECORDED  # the stages whose results the record holds, in DAG order (steward.stages)


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, str]:
    commit = "unknown"
    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        if out.returncode == 0:
            commit = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"steward": __version__, "git_commit": commit}


def outcome(results: dict[str, Any], task_states: dict[str, str]) -> str:
    """One word for the night: missing / quarantine / keep / retrain / promote / failed."""
    if any(s == "failed" or s == "upstream_failed" for s in task_states.values()):
        return "failed"
    if results.get("land_batch") is None:
        return "missing"
    if results.get("quarantine_batch") is not None:
        return "quarantine"
    gate = results.get("gate_and_promote")
    if gate is not None:
        return "promote" if gate["promoted"] else "retrain"
    shadow = results.get("judge_shadow")
    return "promote" if shadow is not None and shadow["promoted"] else "keep"


def config_reference(config_path: Path, config_hash: str) -> dict[str, Any]:
    """The record's pointer to its configuration; names the client files too when there are any."""
    from steward import clients

    *inherited, _ = clients.config_sources(config_path)
    ref: dict[str, Any] = {"path": str(config_path), "sha256": config_hash}
    if inherited:
        ref["client_files"] = [{"path": s.name, "sha256": s.sha256} for s in inherited]
    return ref


def build_record(
    eng: Engagement,
    *,
    logical_date: str,
    run: dict[str, Any],
    config_path: Path,
    config_hash: str,
    results: dict[str, Any],
    task_states: dict[str, str],
    champion_now: int | None = None,
    sla_evaluations: list[dict[str, Any]] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Assemble the record from stage results; `champion_now` covers nights that skipped the model stages."""
    land = results.get("land_batch") or {}
    quality = results.get("validate_batch")
    monitoring = results.get("detect_drift") or {}
    champion = results.get("ensure_champion") or {}
    retrained = results.get("retrain_candidate")
    gate = results.get("gate_and_promote") or results.get("judge_shadow")  # never both: a shadow blocks candidates
    before = (champion.get("champion") or {}).get("version") or champion_now
    after = gate["champion_after"] if gate else before
    return {
        "schema": SCHEMA_VERSION,
        "engagement": {"id": eng.id, "client": eng.client, "use_case": eng.use_case, "owner": eng.owner,
                       "region": eng.governance.region},
        "logical_date": logical_date,
        "run": run,
        "outcome": outcome(results, task_states),
        "config": config_reference(config_path, config_hash),
        "code_version": code_version(),
        "data": {
            "batch": land.get("batch"),
            "profile": land.get("profile"),
            "read_error": land.get("read_error"),
            "reference": land.get("reference"),
        },
        "quality": None if quality is None else {
            "success": quality["success"],
            "engine": quality["engine"],
            "evaluated": quality["evaluated"],
            "warnings": len(quality.get("warnings") or []),
            "checks": quality["checks"],
            "report_html": quality["report_html"],
        },
        "quarantine": results.get("quarantine_batch"),
        "drift": monitoring.get("drift"),
        "quality_drift": monitoring.get("quality_drift"),  # data-quality rates against the reference (ADR 0027)
        "performance": monitoring.get("performance"),
        "fairness": monitoring.get("fairness"),
        "decision": results.get("decide_retrain"),
        "retraining": retrained,
        "promotion": gate,
        # a promotion that waits for a person (issue 35): the request tonight's night made, if any
        "approval_request": results.get("request_approval"),
        "models": {
            "registered_model": eng.registered_model_name,
            "champion_before": before,
            "champion_after": after,
            "bootstrapped": champion.get("bootstrapped", False),
            "mlflow_run_ids": sorted(
                {r for r in ((champion.get("champion") or {}).get("run_id"),
                             ((retrained or {}).get("challenger") or {}).get("run_id")) if r}
            ),
        },
        "model_files": {k: v for k, v in (("champion", champion.get("model_file")),
                                          ("challenger", (retrained or {}).get("model_file"))) if v},
        "documents": [*(champion.get("documents") or []), *((retrained or {}).get("documents") or [])],
        "labels": results.get("join_labels"),
        "outcomes": results.get("check_outcomes"),
        "predictions": results.get("score_batch"),
        "baselines": results.get("score_baselines"),
        "alerts": _alerts_section(results.get("raise_alerts")),
        "sla_evaluations": sla_evaluations or [],
        "notes": notes or [],
        "task_states": task_states,
        "failed_tasks": sorted(t for t, state in task_states.items() if state in {"failed", "upstream_failed"}),
        "timings": {s: (results.get(s) or {}).get("timing") for s in STAGES if results.get(s)},
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(),
    }


VOLATILE_KEYS = frozenset({"run", "recorded_at", "timings", "timing", "notifications_sent", "notifications_failed"})


def content_digest(record: dict[str, Any]) -> str:
    """sha256 of the record without what changes from one attempt to the next (run ids, times, alert
    delivery attempts; all kept in the record itself): a rerun of a night that decided the same things
    has the same digest."""
    import hashlib
    import json

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return hashlib.sha256(json.dumps(strip(record), sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _alerts_section(alerts: dict[str, Any] | None) -> dict[str, Any] | None:
    """Conditions, SLA evaluations and what was sent; delivery attempt details stay in the outbox table
    (they vary between a run and its rerun, the decisions do not)."""
    if alerts is None:
        return None
    delivery = alerts.get("delivery") or {}
    return {"conditions": alerts["conditions"], "evaluations": alerts["evaluations"],
            "notifications_sent": len(delivery.get("sent") or []), "notifications_failed": delivery.get("failed") or []}


def write_record(paths: StewardPaths, eng: Engagement, logical_date: str, record: dict[str, Any]) -> Path:
    target = paths.run_dir(eng.id, logical_date[:10]) / "audit.json"
    batches.atomic_write_json(target, record)
    return target


def read_records(paths: StewardPaths, engagement_id: str) -> list[dict[str, Any]]:
    """All audit records of an engagement, by logical date."""
    import json

    root = paths.artifacts / engagement_id
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/audit.json"))]
