"""The end of every night: the audit record built from the stage results, written atomically, appended to the
engagement's hash-chained ledger with every file it cites, emitted as OpenLineage, indexed in the store and
the status row. `export_audit` in the DAG only gathers the stage results and calls `export_night`.

A retry of an export that already reached the ledger (the worker died after appending) finds its own entry
by the Airflow run id: the ledger's record is the record, audit.json is restored from it byte for byte, and
nothing is appended twice (ADR 0006, ADR 0009).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from steward.config import Engagement
from steward.operations import faults
from steward.settings import StewardPaths

Record = dict[str, Any]
# the stage results (task id -> small JSON) and the task states of this run, read only when needed
Gather = Callable[[], tuple[dict[str, Any], dict[str, str]]]


def export_night(eng: Engagement, paths: StewardPaths, *, day: str, run: dict[str, Any], config_path: Path,
                 config_hash: str, gather: Gather, signing_key: Any | None = None,
                 unsigned_reason: str | None = None) -> dict[str, Any]:
    """Record the night once: returns the record, its path, the ledger entry (seq, hash, artifacts, and the
    signed checkpoint of the head, or why it is unsigned), the number of lineage events and whether an
    earlier attempt had already recorded it."""
    from steward import store
    from steward.governance import audit, ledger, lineage
    from steward.monitoring import outcomes
    from steward.operations import status

    store.engine(paths)  # fail (and retry) before writing anything if the metadata DB is down
    existing = recorded_run(eng, paths, day, run["run_id"])
    if existing is not None and (store.witnessed(paths, eng.id).get(existing["seq"]) or {}).get("hash") != existing["hash"]:
        # a run entry for this very run that steward never appended: written ahead by someone who can write the
        # state volume, so that tonight would count as recorded and its real outcome never be written
        _tampered(eng, paths, day, [f"ledger entry {existing['seq']} claims this run ({run['run_id']}) but was not "
                                    "appended by steward"])
    if existing is not None:
        record = existing["record"]
        path = audit.write_record(paths, eng, day, record)
        entry = {"seq": existing["seq"], "hash": existing["hash"], "artifacts": len(existing["artifacts"])}
    else:
        results, task_states = gather()
        champion_now, notes = None, []
        if not results.get("ensure_champion"):
            try:
                champion_now = current_champion(eng, paths)
            except Exception as exc:  # the registry is down: record the night anyway, say so
                first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
                notes.append(f"champion unknown: the model registry did not answer ({type(exc).__name__}: {first_line})")
        record = audit.build_record(eng, logical_date=day, run=run, config_path=config_path, config_hash=config_hash,
                                    results=results, task_states=task_states, champion_now=champion_now,
                                    notes=notes, sla_evaluations=outcomes.evaluations_of(eng, paths, day))
        record["approvals_answered"] = answered_since_last_night(paths, eng.id)
        path = audit.write_record(paths, eng, day, record)
        faults.maybe_die(eng.id, "export.after_record")
        entry = record_in_ledger(eng, paths, config_path, config_hash, record, path)
        faults.maybe_die(eng.id, "export.after_ledger")
    try:
        point = checkpoint_head(paths, eng.id, signing_key, unsigned_reason)  # idempotent: a retry signs once
    except ledger.LedgerTamperedError as exc:
        _tampered(eng, paths, day, exc.problems)
    entry["signed"] = "signature" in point
    entry["checkpoint"] = {"seq": point["seq"], "key": point.get("key"), "unsigned": point.get("unsigned")}
    events = lineage.emit(eng, paths, record)
    store.record_run(paths, record, entry["seq"], entry["hash"])
    status.update(paths, eng, record, entry)
    return {"record": record, "path": path, "entry": entry, "lineage_events": events,
            "already_recorded": existing is not None}


def answered_since_last_night(paths: StewardPaths, engagement_id: str) -> list[dict[str, Any]]:
    """Approval answers given between the last recorded night and this one (issue 35): who answered, when,
    with what comment, so the night's audit record names them beside the ledger entries that hold them."""
    from steward.governance import ledger

    entries = ledger.read_entries(paths, engagement_id)
    last_run = max((e["seq"] for e in entries if e["type"] == "run"), default=0)
    return [{"ledger_seq": e["seq"], **{k: e["detail"].get(k) for k in (
        "version", "outcome", "answered_by", "answered_at", "comment", "champion_before", "champion_after")}}
        for e in entries if e["type"] == "approval" and e["seq"] > last_run]


def _tampered(eng: Engagement, paths: StewardPaths, day: str, problems: list[str]) -> None:
    """Refuse loudly: an incident (notified), then the error that fails the export."""
    from steward.governance import ledger
    from steward.operations import incidents, notify

    incident, opened = incidents.open_or_continue(
        paths, eng.id, "ledger", day, response="notify",
        summary=f"ledger not signed on {day}: " + "; ".join(problems)[:1500])
    if opened:
        notify.enqueue(paths, eng, incident, "opened")
    raise ledger.LedgerTamperedError(eng.id, problems)


def checkpoint_head(paths: StewardPaths, engagement_id: str, key: Any | None, unsigned_reason: str | None = None
                    ) -> dict[str, Any]:
    """Checkpoint the ledger head (signed with `key`, or why not) in the checkpoints file and in the history
    database: the two anchors `steward audit verify` compares (ADR 0017). Idempotent per head. Before it
    signs, every entry since the last signed checkpoint must be one the anchor saw appended, and none it saw
    may be missing (`ledger.unwitnessed`); otherwise LedgerTamperedError and nothing is signed."""
    from steward import store
    from steward.governance import ledger

    if key is not None:
        problems = ledger.unwitnessed(paths, engagement_id)
        if problems:
            raise ledger.LedgerTamperedError(engagement_id, problems)
    point = ledger.checkpoint(paths, engagement_id, key, unsigned_reason)
    store.record_head(paths, engagement_id, point)
    return point


def rotate_key(paths: StewardPaths, engagement_id: str, current_key: Any, next_public: str, *, reason: str,
               actor: str) -> dict[str, Any]:
    """Name the next signing key in the ledger and sign that entry with the current key: the old key vouches
    for its successor, so an auditor who trusts the old key trusts the new one from that entry on."""
    from steward.governance import ledger, signing

    entry = ledger.name_next_key(paths, engagement_id, signing.public_line(current_key), next_public,
                                 reason=reason, actor=actor)
    return {"entry": entry, "checkpoint": checkpoint_head(paths, engagement_id, current_key)}


def current_champion(eng: Engagement, paths: StewardPaths) -> int | None:
    """The champion version right now (for the audit record of nights that never loaded it)."""
    from steward.models import registry

    ref = registry.get_alias(registry.client(paths), eng, registry.CHAMPION)
    return ref.version if ref else None


def cited_files(record: Record, record_path: Path) -> list[str]:
    """Every file the audit record points to: the record, reports, reasons, the batch, model files."""
    files: list[str | None] = [str(record_path)]
    quality = record.get("quality") or {}
    files += [quality.get("report_html"), str(Path(quality["report_html"]).with_name("quality.json")) if quality else None]
    for section in ("drift", "performance"):
        part = record.get(section) or {}
        files += [part.get("report_html"), part.get("report_json")]
    files.append(((record.get("drift") or {}).get("sample") or {}).get("reference", {}).get("path"))
    quarantine = record.get("quarantine") or {}
    files += [quarantine.get("reasons_path"), quarantine.get("quarantine_path")]
    if not quarantine:
        files.append((record["data"].get("batch") or {}).get("path"))
    files += [record.get("model_files", {}).get(k) for k in ("champion", "challenger")]
    files += record.get("documents") or []
    return [f for f in files if f]


def recorded_run(eng: Engagement, paths: StewardPaths, day: str, airflow_run_id: str) -> Record | None:
    """The ledger's run entry for this Airflow run of the night, if an earlier attempt appended it."""
    from steward.governance import ledger

    for entry in reversed(ledger.read_entries(paths, eng.id)):
        record = entry.get("record") or {}
        if entry["type"] == "run" and entry["logical_date"] == day and (record.get("run") or {}).get("run_id") == airflow_run_id:
            return {**entry, "hash": ledger.sha256_bytes(ledger.canonical(entry))}
    return None


def config_detail(config_path: Path, config_hash: str) -> dict[str, Any]:
    """What the ledger keeps of a configuration: the engagement file's text and, when it inherits client
    defaults, each client file's (a change to a client file is a new configuration of every engagement
    that inherits it)."""
    from steward import clients

    *inherited, own = clients.config_sources(config_path)
    detail: dict[str, Any] = {"path": own.name, "sha256": config_hash, "text": own.text}
    if inherited:
        detail["client_files"] = [{"path": s.name, "sha256": s.sha256, "text": s.text} for s in inherited]
    return detail


def record_in_ledger(
    eng: Engagement, paths: StewardPaths, config_path: Path, config_hash: str, record: Record, record_path: Path
) -> dict[str, Any]:
    """Append the night to the engagement's hash-chained ledger (and the config, the first time it is seen)."""
    from steward.governance import ledger
    from steward.governance.audit import content_digest

    entries = ledger.read_entries(paths, eng.id)
    known = {e["detail"]["sha256"] for e in entries if e["type"] == "config"}
    if config_hash not in known:
        ledger.append(paths, eng.id, "config", detail=config_detail(config_path, config_hash))
    planned = [e["detail"]["config_sha256"] for e in entries if e["type"] == "plan"]
    if config_hash not in planned:  # a new configuration is a new version of the monitoring plan (issue 35)
        from steward.governance import monitoring_plan

        version = len(planned) + 1
        files = monitoring_plan.write(eng, paths, config_hash, version)
        ledger.append(paths, eng.id, "plan", logical_date=record["logical_date"],
                      artifacts=ledger.hash_artifacts(paths, files),
                      detail={"version": version, "config_sha256": config_hash, "risk_class": eng.governance.risk_class})
    entry = ledger.append(paths, eng.id, "run", logical_date=record["logical_date"], record=record,
                          artifacts=ledger.hash_artifacts(paths, cited_files(record, record_path)),
                          detail={"content_sha256": content_digest(record)})
    return {"seq": entry["seq"], "hash": entry["hash"], "artifacts": len(entry["artifacts"])}
