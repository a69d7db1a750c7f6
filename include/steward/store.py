"""steward's own metadata tables (SQLAlchemy): SQLite under STEWARD_HOME by default, Postgres in production.

`STEWARD_DB_URL` selects the database (e.g. postgresql+psycopg2://user:pass@host/steward). The tables are the
history a UI or an outcome report queries instead of reading files:

- `steward_runs`: one row per recorded night attempt;
- `steward_predictions`: what was served each night, by which model version (+ the CBPE estimate);
- `steward_performance`: realised performance per prediction date, as labels arrive (+ estimate error);
- `steward_label_arrivals`: what each label file brought (joined, unknown ids, duplicates, set aside);
- `steward_drift`: per-feature drift scores per night;
- `steward_drift_nights`: each night's dataset-drift verdict, its window and reference (for persistence);
- `steward_sla_evaluations`: every SLA evaluation (met or not), per night;
- `steward_incidents` and `steward_notifications`: incidents with states and the alert outbox;
- `steward_ledger_heads`: every checkpoint of a ledger's head (signed or not, ADR 0017), the second anchor
  that `steward audit verify` compares with the ledger and its checkpoints file.

Rows keyed by (engagement, date, ...) are replaced on a rerun of the date, so reruns converge.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    select,
)
from sqlalchemy.engine import Connection, Engine
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


predictions = Table(
    "steward_predictions",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("prediction_date", String(10), primary_key=True),
    Column("model_version", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("estimated_metric", String(16)),
    Column("estimated_value", Float),
)
performance = Table(
    "steward_performance",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("prediction_date", String(10), primary_key=True),
    Column("metric", String(16), nullable=False),
    Column("realised_value", Float),
    Column("labelled_rows", Integer, nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("estimated_value", Float),
    Column("estimate_error", Float),
    Column("labels_through", String(10), primary_key=True),
    Column("report_html", Text),
    Column("not_computable", Text),  # why realised_value is null (one class on the day ...)
)
business_value = Table(  # what the served predictions were worth, per prediction date (steward.operations.value)
    "steward_business_value",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("prediction_date", String(10), primary_key=True),
    Column("labels_through", String(10), primary_key=True),
    Column("model_version", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("scored_rows", Integer, nullable=False),
    Column("labelled_rows", Integer, nullable=False),
    Column("true_positives", Integer),
    Column("false_positives", Integer),
    Column("false_negatives", Integer),
    Column("true_negatives", Integer),
    Column("absolute_error", Float),
    Column("value_delivered", Float, nullable=False),
    Column("cost_of_errors", Float, nullable=False),
    Column("minutes_saved", Float, nullable=False),
)
counterfactuals = Table(  # served model vs never retrained vs periodic refit, per prediction date (steward.models.baselines)
    "steward_counterfactuals",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("prediction_date", String(10), primary_key=True),
    Column("labels_through", String(10), primary_key=True),
    Column("metric", String(16), nullable=False),
    Column("labelled_rows", Integer, nullable=False),
    Column("served_version", Integer),
    Column("served_value", Float),
    Column("never_retrained_value", Float),
    Column("periodic_refit_value", Float),
    Column("currency", String(3)),
    Column("served_net", Float),
    Column("never_retrained_net", Float),
    Column("periodic_refit_net", Float),
)
adoption = Table(  # rows of a prediction date the client acted on, from its dated feedback file (steward.operations.value)
    "steward_adoption",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("prediction_date", String(10), primary_key=True),
    Column("recorded_on", String(10), primary_key=True),  # the night the feedback file was read
    Column("model_version", Integer, nullable=False),
    Column("scored_rows", Integer, nullable=False),
    Column("acted_rows", Integer, nullable=False),
    Column("feedback_rows", Integer, nullable=False),
    Column("unknown_ids", Integer, nullable=False),  # ids in the feedback that were never served that date
    Column("sha256", String(64), nullable=False),
)
label_arrivals = Table(
    "steward_label_arrivals",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("arrival_date", String(10), primary_key=True),
    Column("rows", Integer, nullable=False),
    Column("joined", Integer, nullable=False),
    Column("unknown_ids", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("for_quarantined", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("prediction_dates", JSON, nullable=False),
    Column("outside_classes", Integer),  # target values that are not one of the target's classes (set aside)
)
drift_scores = Table(
    "steward_drift",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("logical_date", String(10), primary_key=True),
    Column("feature", String(128), primary_key=True),
    Column("score", Float),
    Column("drifted", Boolean, nullable=False),
)
drift_nights = Table(
    "steward_drift_nights",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("logical_date", String(10), primary_key=True),
    Column("state", String(24), nullable=False),  # judged | not_enough_data
    Column("dataset_drift", Boolean, nullable=False),
    Column("drift_share", Float),
    Column("rows", Integer, nullable=False),
    Column("window_nights", Integer, nullable=False),
    Column("reference_kind", String(32), nullable=False),
    Column("reference_version", Integer),
    Column("reference_sha256", String(64), nullable=False),
)
quality_rates = Table(  # each night's data-quality rates against the reference (steward.checks.quality_rates)
    "steward_quality_rates",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("logical_date", String(10), primary_key=True),
    Column("column_name", String(250), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("events", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("rate", Float, nullable=False),
    Column("reference_rate", Float),
    Column("bound", Float, nullable=False),
    Column("p_value", Float, nullable=False),
    Column("flagged", Boolean, nullable=False),
    Column("alarm", Boolean, nullable=False),  # flagged, and on enough of the last nights (persistence)
    Column("window_nights", Integer, nullable=False),
)
sla_evaluations = Table(
    "steward_sla_evaluations",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("logical_date", String(10), primary_key=True),
    Column("sla", String(32), primary_key=True),
    Column("met", Boolean),
    Column("value", Float),
    Column("target", Float),
    Column("detail", Text, nullable=False),
    Column("evaluated_at", DateTime(timezone=True), nullable=False),
)
incidents = Table(
    "steward_incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("engagement", String(64), nullable=False, index=True),
    Column("condition", String(32), nullable=False),
    Column("subject", String(250)),  # what within the condition: the column of a data-quality alarm (ADR 0027)
    Column("state", String(16), nullable=False),
    Column("opened_on", String(10), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("summary", Text, nullable=False),
    Column("response", String(16), nullable=False),
    Column("actions", JSON, nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("acknowledged_by", String(250)),
    Column("resolved_on", String(10)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolution", Text),
)
notifications = Table(
    "steward_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, nullable=False, index=True),
    Column("engagement", String(64), nullable=False),
    Column("event", String(16), nullable=False),
    Column("channel", String(300), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("sent_at", DateTime(timezone=True)),
)


ledger_heads = Table(
    "steward_ledger_heads",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("key", String(64)),  # fingerprint of the signing key; null when unsigned
    Column("signature", Text),
    Column("unsigned", Text),  # why there is no signature
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)


ledger_appends = Table(  # every ledger entry as it is appended: what the signer checks before it signs (issue 32)
    "steward_ledger_appends",
    metadata,
    Column("engagement", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("type", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # appended | accepted (by `steward audit accept`)
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
    sqlite_file = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if sqlite_file is not None:
        (paths or StewardPaths.from_env()).home.mkdir(parents=True, exist_ok=True)
    eng = _engine(url)
    # Tables are created and migrated once per database and process: `create_all` asks the database about
    # every table, and a night calls this about 40 times (1 % of a night's CPU, py-spy, 2026-12-06). Every call
    # still reaches the database (a pinged connection), so a task fails and retries before it writes anything;
    # a SQLite file removed since is prepared again.
    prepared = url in _prepared and (sqlite_file is None or sqlite_file.exists())
    try:
        if prepared:
            with eng.connect():
                pass
        else:
            metadata.create_all(eng)
            _add_missing_columns(eng)
            _prepared.add(url)
    except OperationalError as exc:
        raise _unavailable(paths, exc) from None
    return eng


_prepared: set[str] = set()


def _add_missing_columns(eng: Engine) -> None:
    """Forward migration for a store created by an earlier version: columns added since are nullable and
    are added in place (ALTER TABLE ... ADD COLUMN works the same on SQLite and Postgres)."""
    from sqlalchemy import inspect, text

    inspector = inspect(eng)
    with eng.begin() as conn:
        for table in metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=eng.dialect)
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def record_run(paths: StewardPaths, record: dict[str, Any], ledger_seq: int, ledger_hash: str) -> None:
    """Insert the night's row in one transaction (a retry of the same attempt is a no-op)."""
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
    with transaction(paths) as conn:
        exists = conn.execute(select(runs.c.ledger_seq).where(
            runs.c.engagement == row["engagement"], runs.c.logical_date == row["logical_date"],
            runs.c.ledger_seq == ledger_seq)).first()
        if exists is None:
            conn.execute(runs.insert().values(**row))


def record_head(paths: StewardPaths, engagement_id: str, point: dict[str, Any]) -> None:
    """Keep a checkpoint of the ledger head (idempotent per seq: the first one recorded stays)."""
    with transaction(paths) as conn:
        exists = conn.execute(select(ledger_heads.c.seq).where(
            ledger_heads.c.engagement == engagement_id, ledger_heads.c.seq == point["seq"])).first()
        if exists is None:
            conn.execute(ledger_heads.insert().values(
                engagement=engagement_id, seq=point["seq"], hash=point["hash"], key=point.get("key"),
                signature=point.get("signature"), unsigned=point.get("unsigned"), recorded_at=dt.datetime.now(dt.UTC)))


def witness_append(paths: StewardPaths, engagement_id: str, seq: int, digest: str, entry_type: str,
                   state: str = "appended") -> None:
    """Witness a ledger entry as it is appended (replacing a witness of the same seq left by an append that
    died before it wrote its line: the appender holds the ledger's lock)."""
    with transaction(paths) as conn:
        conn.execute(delete(ledger_appends).where(ledger_appends.c.engagement == engagement_id,
                                                  ledger_appends.c.seq == seq))
        conn.execute(ledger_appends.insert().values(engagement=engagement_id, seq=seq, hash=digest, type=entry_type,
                                                    state=state, recorded_at=dt.datetime.now(dt.UTC)))


def witnessed(paths: StewardPaths, engagement_id: str) -> dict[int, dict[str, Any]]:
    return {r["seq"]: r for r in select_rows(paths, ledger_appends, {"engagement": engagement_id})}


def anchored_engagements(paths: StewardPaths) -> list[str]:
    """Every engagement whose ledger the store has witnessed or checkpointed."""
    with engine(paths).connect() as conn:
        found = {r[0] for r in conn.execute(select(ledger_heads.c.engagement).distinct())}
        found |= {r[0] for r in conn.execute(select(ledger_appends.c.engagement).distinct())}
    return sorted(found)


def heads_of(paths: StewardPaths, engagement_id: str) -> list[dict[str, Any]]:
    return select_rows(paths, ledger_heads, {"engagement": engagement_id}, order_by="seq")


def runs_of(paths: StewardPaths, engagement_id: str) -> list[dict[str, Any]]:
    with engine(paths).connect() as conn:
        result = conn.execute(select(runs).where(runs.c.engagement == engagement_id).order_by(runs.c.ledger_seq))
        return [dict(r._mapping) for r in result]


def replace_rows(paths: StewardPaths, table: Table, where: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Delete the rows matching `where` and insert `rows`, in one transaction: a rerun replaces, never duplicates."""
    with transaction(paths) as conn:
        conn.execute(delete(table).where(*(table.c[k] == v for k, v in where.items())))
        if rows:
            conn.execute(table.insert(), rows)


def latest_by_prediction_date(paths: StewardPaths, table: Table, engagement_id: str,
                              through: dt.date | None = None, known_on: str = "labels_through") -> list[dict[str, Any]]:
    """Rows keyed by (prediction date, night it became known): the latest per prediction date as known on
    `through` (a later label arrival supersedes an earlier one), in prediction-date order."""
    rows = select_rows(paths, table, {"engagement": engagement_id}, order_by=known_on)
    latest: dict[str, dict[str, Any]] = {}
    for r in rows:
        if through is None or r[known_on] <= through.isoformat():
            latest[r["prediction_date"]] = r
    return [latest[d] for d in sorted(latest)]


def select_rows(paths: StewardPaths, table: Table, where: dict[str, Any], order_by: str | None = None) -> list[dict[str, Any]]:
    query = select(table).where(*(table.c[k] == v for k, v in where.items()))
    if order_by:
        query = query.order_by(table.c[order_by])
    with engine(paths).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


@contextmanager
def transaction(paths: StewardPaths) -> Iterator[Connection]:
    """A transaction on the store; connection failures become StoreUnavailableError (the task retries)."""
    try:
        with engine(paths).begin() as conn:
            yield conn
    except OperationalError as exc:
        raise _unavailable(paths, exc) from None


def _unavailable(paths: StewardPaths, exc: OperationalError) -> StoreUnavailableError:
    return StoreUnavailableError(
        f"steward metadata database unreachable at {redacted(db_url(paths))}: {str(exc.orig).strip().splitlines()[0]}")
