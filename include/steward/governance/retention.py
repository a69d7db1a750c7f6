"""Data residency and retention.

Residency: an engagement's `governance.region` must equal the region of the storage it writes to
(`STEWARD_STORAGE_REGION`; the embedded store under STEWARD_HOME declares `eu-west-1` by default).
Retention: raw batches (landed and quarantined) and run artifacts older than `retention_days` are deleted
by the maintenance DAG, which first appends a `purge` entry to the ledger naming every file and its
sha256. The ledger itself is never purged.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

from steward.config import Engagement
from steward.governance import ledger
from steward.settings import StewardPaths
from steward.sources.batches import sha256_file

DEFAULT_STORAGE_REGION = "eu-west-1"


class ResidencyError(RuntimeError):
    """The engagement's data may not be stored where this deployment stores it."""


def storage_region() -> str:
    return os.environ.get("STEWARD_STORAGE_REGION", DEFAULT_STORAGE_REGION)


def check_residency(eng: Engagement) -> None:
    region = storage_region()
    if eng.governance.region != region:
        raise ResidencyError(
            f"data residency: engagement {eng.id} requires region {eng.governance.region}, but this deployment "
            f"stores data in {region} (STEWARD_STORAGE_REGION); refusing to land or process its data"
        )


def expired_folders(eng: Engagement, paths: StewardPaths, today: dt.date) -> list[Path]:
    """Per-night folders (landed, quarantine, artifacts) whose night is older than the retention period."""
    cutoff = today - dt.timedelta(days=eng.governance.retention_days)
    out = []
    for root in (paths.landed, paths.quarantine, paths.artifacts):
        base = root / eng.id
        if not base.is_dir():
            continue
        for folder in sorted(base.iterdir()):
            try:
                night = dt.date.fromisoformat(folder.name)
            except ValueError:
                continue
            if folder.is_dir() and night < cutoff:
                out.append(folder)
    return out


def purge(eng: Engagement, paths: StewardPaths, today: dt.date, connect: Any = None) -> dict[str, Any]:
    """Record, then delete, everything past retention: the per-night folders, and for a SQL source the night
    snapshots and quarantine tables steward made in the client's database (`connect` opens it). Idempotent:
    nothing expired, nothing recorded."""
    folders = expired_folders(eng, paths, today)
    files = [f for folder in folders for f in sorted(folder.rglob("*")) if f.is_file()]
    snapshots: list[dict[str, Any]] = []
    engine = None
    if eng.data.source == "sql" and connect is not None:
        from steward.sources import sql_source

        engine = connect(eng.data.conn_id)
        snapshots = sql_source.expired_snapshots(eng, engine, today - dt.timedelta(days=eng.governance.retention_days))
    if not files and not snapshots:
        return {"engagement": eng.id, "purged_files": 0, "dropped_snapshots": 0, "ledger_seq": None}
    hashes = {ledger.artifact_key(paths, f): sha256_file(f) for f in files}
    entry = ledger.append(paths, eng.id, "purge", logical_date=today.isoformat(), artifacts=hashes, detail={
        "reason": f"retention: older than {eng.governance.retention_days} days before {today}",
        "folders": [ledger.artifact_key(paths, f) for f in folders],
        **({"snapshots": snapshots} if snapshots else {}),
    })
    for folder in folders:
        shutil.rmtree(folder)
    if snapshots:
        from steward.sources import sql_source

        sql_source.drop_snapshots(eng, engine, snapshots)
    return {"engagement": eng.id, "purged_files": len(files), "folders": len(folders),
            "dropped_snapshots": len(snapshots), "ledger_seq": entry["seq"]}
