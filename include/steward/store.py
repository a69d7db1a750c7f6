"""steward's own metadata tables (SQLAlchemy): SQLite under STEWARD_HOME by default, Postgres in production.

`STEWARD_DB_URL` selects the database (e.g. postgresql+psycopg2://user:pass@host/steward). One table for
now, `steward_runs`: one row per recorded night attempt, the index a UI or a report queries instead of
reading files.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from functools import cache
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from steward.settings import StewardPaths

metadata = MetaData()
runs = Table(
    "steward_runs",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("logical_date", String(10), primary_key=True),
    Column("ledger_seq", Integer, primary_key=True),
    Column("airflow_run_id", String(250), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("champion_before", Integer),
    Column("champion_after", Integer),
    Column("ledger_hash", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)


class StoreUnavailableError(RuntimeError):
    """The metadata database cannot be reached; the task fails (and Airflow retries it)."""


def db_url(paths: StewardPaths | None = None) -> str:
    paths = paths or StewardPaths.from_env()
    return os.environ.get("STEWARD_DB_URL") or f"sqlite:///{paths.home / 'steward.db'}"


def redacted(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


@cache
def _engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    return create_engine(url, **kwargs)


def engine(paths: StewardPaths | None = None) -> Engine:
    url = db_url(paths)
    if url.startswith("sqlite:///"):
        (paths or StewardPaths.from_env()).home.mkdir(parents=True, exist_ok=True)
    eng = _engine(url)
    try:
        metadata.create_all(eng)
    except OperationalError as exc:
        raise StoreUnavailableError(
            f"steward metadata database unreachable at {redacted(url)}: {str(exc.orig).strip().splitlines()[0]}"
        ) from None
    return eng


def record_run(paths: StewardPaths, record: dict[str, Any], ledger_seq: int, ledger_hash: str) -> None:
    """Insert the night's row in one transaction (a retry of the same attempt is a no-op)."""
    eng = engine(paths)
    row = {
        "engagement": record["engagement"]["id"],
        "logical_date": record["logical_date"],
        "ledger_seq": ledger_seq,
        "airflow_run_id": record["run"]["run_id"],
        "outcome": record["outcome"],
        "champion_before": record["models"]["champion_before"],
        "champion_after": record["models"]["champion_after"],
        "ledger_hash": ledger_hash,
        "recorded_at": dt.datetime.fromisoformat(record["recorded_at"]),
    }
    try:
        with eng.begin() as conn:
            exists = conn.execute(select(runs.c.ledger_seq).where(
                runs.c.engagement == row["engagement"], runs.c.logical_date == row["logical_date"],
                runs.c.ledger_seq == ledger_seq)).first()
            if exists is None:
                conn.execute(runs.insert().values(**row))
    except OperationalError as exc:
        raise StoreUnavailableError(
            f"steward metadata database unreachable at {redacted(db_url(paths))}: {str(exc.orig).strip().splitlines()[0]}"
        ) from None


def runs_of(paths: StewardPaths, engagement_id: str) -> list[dict[str, Any]]:
    with engine(paths).connect() as conn:
        result = conn.execute(select(runs).where(runs.c.engagement == engagement_id).order_by(runs.c.ledger_seq))
        return [dict(r._mapping) for r in result]
