"""Nightly batches from a SQL database, and predictions written back to one (ADR 0023).

A night's rows (a table filtered on its date column, or the engagement's query with `:logical_date` bound)
are snapshotted inside the same database, in the engagement's staging schema: the checks run there (Great
Expectations' SQL data source, steward.quality), a quarantined night's snapshot is renamed into a
quarantine table, and a rerun or backfill reads the snapshot, never the client's table again (which it
only ever reads). A streaming copy lands as Parquet for the stages that model in memory.

Connections come from the caller (`Connect`: conn_id -> SQLAlchemy engine); the Airflow layer resolves
Airflow connections (steward.airflow.connections). Messages name the engagement, the connection id and the
relation, never a password.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.batches import BatchConflictError, BatchMissingError
from steward.config import Engagement, SqlSource

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

Connect = Callable[[str], "sa.Engine"]
CHUNK_ROWS = 100_000
QUARANTINED_SUFFIX = "__quarantined"


class SqlSourceError(RuntimeError):
    """The source cannot be read as configured (missing table, query error, permission denied, a changed
    type the database refuses): retrying cannot fix it."""


class SqlSourceUnavailableError(ConnectionError):
    """The database did not answer (down, refused, timed out): the task retries, then the night fails."""


@dataclass(frozen=True)
class Staged:
    """A night's snapshot in the client's database, and how it was taken."""

    conn_id: str
    namespace: str  # OpenLineage: postgres://host:port
    database: str
    source: str  # database.schema.table read, or "query"
    schema: str
    table: str  # the snapshot (or, once quarantined, the quarantine table)
    rows: int
    fingerprint: str  # count and sum of the rows' hashes, computed in the database
    key_range: dict[str, Any]
    state: str  # staged | quarantined

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_of(eng: Engagement) -> SqlSource:
    assert isinstance(eng.data, SqlSource), f"{eng.id} does not read SQL"
    return eng.data


def _quote(engine: sa.Engine, dotted: str) -> str:
    prep = engine.dialect.identifier_preparer
    return ".".join(prep.quote(part) for part in dotted.split("."))


def dataset(engine: sa.Engine, table: str) -> dict[str, str]:
    """OpenLineage's name for a Postgres table: namespace postgres://host:port, name database.schema.table."""
    schema, _, name = table.rpartition(".")
    url = engine.url
    return {"namespace": f"postgres://{url.host}:{url.port or 5432}", "name": f"{url.database}.{schema or 'public'}.{name}"}


def snapshot_name(eng: Engagement, day: dt.date) -> str:
    return f"{eng.id}__{day:%Y%m%d}"


def describe(eng: Engagement, engine: sa.Engine, conn_id: str | None = None, relation: str | None = None) -> str:
    """The engagement, connection and relation, for messages (no password, ever)."""
    src = eng.data if isinstance(eng.data, SqlSource) else None
    conn_id = conn_id or (src.conn_id if src else "?")
    relation = relation or (src.relation if src else "?")
    url = engine.url
    return f"{eng.id}: connection {conn_id!r} ({url.host}:{url.port or 5432}/{url.database}), {relation}"


def night_select(eng: Engagement, engine: sa.Engine, conn: Any) -> str:
    """The night's rows, with `:logical_date` as the only (bound) parameter. A table's date column is left
    out: it says which night a row belongs to, the batch is the rest (as in a dated file)."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import inspect

    src = source_of(eng)
    if not src.table:
        return f"SELECT * FROM ({src.query}) AS steward_night"
    schema, _, name = src.table.rpartition(".")
    try:
        columns = [c["name"] for c in inspect(conn).get_columns(name, schema=schema or None)]
    except sa_exc.NoSuchTableError:
        raise SqlSourceError(f"{describe(eng, engine)}: table {src.table} does not exist (or this connection's "
                             "role cannot see it)") from None
    if src.date_column not in columns:
        raise SqlSourceError(f"{describe(eng, engine)}: table {src.table} has no column {src.date_column!r} "
                             f"(data.date_column); it has {', '.join(columns)}")
    kept = ", ".join(_quote(engine, c) for c in columns if c != src.date_column)
    return f"SELECT {kept} FROM {_quote(engine, src.table)} WHERE {_quote(engine, src.date_column or '')} = :logical_date"


@contextmanager
def errors_named(eng: Engagement, engine: sa.Engine, doing: str, conn_id: str | None = None,
                 relation: str | None = None) -> Iterator[None]:
    """Database errors as steward's two kinds, with a message that names what was being done."""
    from sqlalchemy import exc

    try:
        yield
    except exc.OperationalError as e:
        where = describe(eng, engine, conn_id, relation)
        if _is_sql_error(e):
            raise SqlSourceError(f"{where}: {doing} failed: {_first_line(e)}") from None
        raise SqlSourceUnavailableError(f"{where}: database unreachable while {doing}: {_first_line(e)}") from None
    except exc.DBAPIError as e:
        raise SqlSourceError(f"{describe(eng, engine, conn_id, relation)}: {doing} failed: {_first_line(e)}") from None


def _is_sql_error(e: Exception) -> bool:
    """psycopg reports some statement errors as OperationalError: a SQLSTATE outside class 08
    (connection exception) and 57P (operator intervention) is a statement error, not an outage."""
    state = getattr(getattr(e, "orig", None), "sqlstate", None) or getattr(getattr(e, "orig", None), "pgcode", None)
    return bool(state) and not str(state).startswith(("08", "57P"))


def _first_line(e: Exception) -> str:
    text = str(getattr(e, "orig", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _fingerprint(conn: Any, relation_sql: str, params: dict[str, Any]) -> tuple[int, str]:
    from sqlalchemy import text

    row = conn.execute(text(f"SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text "
                            f"FROM ({relation_sql}) AS t"), params).one()
    return int(row[0]), f"{int(row[0])}:{row[1]}"


def stage(eng: Engagement, engine: sa.Engine, day: dt.date) -> Staged:
    """Snapshot the night's rows into the staging schema (idempotent per night).

    Raises:
        BatchMissingError: no rows for the night (and no snapshot from an earlier run).
        BatchConflictError: the night was snapshotted before and the source rows changed since.
        SqlSourceError / SqlSourceUnavailableError: the database refused or did not answer.
    """
    from sqlalchemy import inspect, text

    src = source_of(eng)
    params = {"logical_date": day}
    schema, name = src.staging_schema, snapshot_name(eng, day)
    with errors_named(eng, engine, "reading the night's rows"), engine.begin() as conn:
        select = night_select(eng, engine, conn)
        rows, fingerprint = _fingerprint(conn, select, params)
        existing = [t for t in (name, name + QUARANTINED_SUFFIX) if inspect(conn).has_table(t, schema=schema)]
        if existing:
            table = existing[0]
            kept_rows, kept = _fingerprint(conn, f"SELECT * FROM {_quote(engine, f'{schema}.{table}')}", {})
            if kept != fingerprint:
                raise BatchConflictError(
                    f"{describe(eng, engine)}: the rows of {day} changed after they were snapshotted ({kept_rows} rows "
                    f"in {schema}.{table}, {rows} in the source now); refusing to rewrite a landed batch")
            state = "quarantined" if table.endswith(QUARANTINED_SUFFIX) else "staged"
        else:
            if rows == 0:
                raise BatchMissingError(f"no batch for {eng.id} on {day}: {src.relation} has no rows for it "
                                        f"(connection {src.conn_id!r})")
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {_quote(engine, schema)}"))
            conn.execute(text(f"CREATE TABLE {_quote(engine, f'{schema}.{name}')} AS {select}"), params)
            table, state = name, "staged"
        key_range = _key_range(conn, engine, eng, f"{schema}.{table}")
    source = dataset(engine, src.table)["name"] if src.table else "query"
    return Staged(conn_id=src.conn_id, namespace=dataset(engine, name)["namespace"], database=engine.url.database or "",
                  source=source, schema=schema, table=table, rows=rows, fingerprint=fingerprint, key_range=key_range,
                  state=state)


def _key_range(conn: Any, engine: sa.Engine, eng: Engagement, relation: str) -> dict[str, Any]:
    from sqlalchemy import text

    column = _quote(engine, eng.id_column)
    low, high = conn.execute(text(f"SELECT min({column})::text, max({column})::text FROM {_quote(engine, relation)}")).one()
    return {"column": eng.id_column, "min": low, "max": high}


def quarantine(eng: Engagement, engine: sa.Engine, staged: dict[str, Any]) -> dict[str, Any]:
    """Rename the night's snapshot into its quarantine table (no row is copied twice or lost; the
    client's table is never touched). Idempotent."""
    from sqlalchemy import inspect, text

    schema, table = staged["schema"], staged["table"]
    target = table if table.endswith(QUARANTINED_SUFFIX) else table + QUARANTINED_SUFFIX
    with errors_named(eng, engine, "quarantining the night's snapshot"), engine.begin() as conn:
        if not inspect(conn).has_table(target, schema=schema):
            conn.execute(text(f"ALTER TABLE {_quote(engine, f'{schema}.{table}')} RENAME TO {_quote(engine, target)}"))
    return {**staged, "table": target, "state": "quarantined"}


def export_parquet(eng: Engagement, engine: sa.Engine, staged: Staged, path: Path) -> None:
    """Stream the snapshot, ordered by the id column, into a Parquet file (CHUNK_ROWS at a time, so the
    worker holds one chunk); the Arrow schema comes from the table's column types, so every chunk agrees."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sqlalchemy import inspect, text

    from steward import batches

    relation = _quote(engine, f"{staged.schema}.{staged.table}")
    with errors_named(eng, engine, "copying the night's snapshot"), engine.connect() as conn:
        columns = inspect(conn).get_columns(staged.table, schema=staged.schema)
        schema = pa.schema([(c["name"], _arrow_type(c["type"])) for c in columns])
        query = text(f"SELECT * FROM {relation} ORDER BY {_quote(engine, eng.id_column)}")
        stream = conn.execution_options(stream_results=True, max_row_buffer=CHUNK_ROWS)
        with batches.atomic_target(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
            for chunk in pd.read_sql(query, stream, chunksize=CHUNK_ROWS):
                writer.write_table(pa.Table.from_pandas(_conform(chunk, schema), schema=schema, preserve_index=False))


def _arrow_type(sql_type: Any) -> Any:
    import pyarrow as pa
    from sqlalchemy import types as t

    for kind, arrow in ((t.Boolean, pa.bool_()), (t.Integer, pa.int64()), (t.Float, pa.float64()),
                        (t.Numeric, pa.float64()), (t.DateTime, pa.timestamp("us")), (t.Date, pa.date32())):
        if isinstance(sql_type, kind):
            return arrow
    return pa.string()


def _conform(chunk: pd.DataFrame, schema: Any) -> pd.DataFrame:
    """A chunk as the Arrow schema wants it (a chunk whose integers hold a null arrives as floats)."""
    import pandas as pd
    import pyarrow as pa

    for field in schema:
        if pa.types.is_integer(field.type):
            chunk[field.name] = chunk[field.name].astype("Int64")
        elif pa.types.is_string(field.type):
            chunk[field.name] = chunk[field.name].astype("string")
        elif pa.types.is_boolean(field.type):
            chunk[field.name] = chunk[field.name].astype("boolean")
        elif pa.types.is_timestamp(field.type):
            chunk[field.name] = pd.to_datetime(chunk[field.name])
    return chunk


def _sql_kinds() -> dict[str, tuple[Any, ...]]:
    """The SQLAlchemy types (reflected, generic) each steward column type accepts; a float column may hold
    integers, as in files."""
    from sqlalchemy import types as t

    return {"string": (t.String,), "integer": (t.Integer,), "float": (t.Float, t.Numeric, t.Integer),
            "boolean": (t.Boolean,), "date": (t.Date,), "timestamp": (t.DateTime,)}


def type_mismatches(eng: Engagement, engine: sa.Engine, staged: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Columns of the snapshot whose database type does not fit how the engagement reads them (its
    `schema:`, or numeric for the numeric features and a regression target)."""
    from sqlalchemy import inspect

    expected = dict(eng.column_types or {})
    if not expected:
        expected = {c: "float" for c in eng.numeric_features}
        if not eng.is_classification:
            expected[eng.target] = "float"
    kinds = _sql_kinds()
    with errors_named(eng, engine, "reading the snapshot's column types"), engine.connect() as conn:
        found = {c["name"]: c["type"] for c in inspect(conn).get_columns(staged["table"], schema=staged["schema"])}
    return {col: {"expected": kind, "found": str(found[col])} for col, kind in expected.items()
            if col in found and not isinstance(found[col], kinds[kind])}


def non_finite_counts(eng: Engagement, engine: sa.Engine, staged: dict[str, Any], columns: list[str]) -> dict[str, int]:
    """Float columns of the snapshot holding +/-Infinity or NaN (GX's range checks let them through)."""
    from sqlalchemy import inspect, text
    from sqlalchemy import types as t

    relation = _quote(engine, f"{staged['schema']}.{staged['table']}")
    with errors_named(eng, engine, "checking values are finite"), engine.connect() as conn:
        floats = [c["name"] for c in inspect(conn).get_columns(staged["table"], schema=staged["schema"])
                  if c["name"] in columns and isinstance(c["type"], t.Float)]
        if not floats:
            return {}
        counts = conn.execute(text("SELECT " + ", ".join(
            f"count(*) FILTER (WHERE {_quote(engine, c)} IN ('Infinity', '-Infinity', 'NaN'))" for c in floats)
            + f" FROM {relation}")).one()
    return {c: int(n) for c, n in zip(floats, counts, strict=True) if n}


def write_predictions(eng: Engagement, engine: sa.Engine, conn_id: str, table: str, day: dt.date,
                      frame: pd.DataFrame) -> int:
    """Replace the night's rows of the predictions sink in one transaction (created when missing): the
    client reads every night's predictions with the model version that made them."""
    from sqlalchemy import Column, Date, Float, Integer, MetaData, String, Table, delete

    schema, _, name = table.rpartition(".")
    sink = Table(name, MetaData(), Column("logical_date", Date, nullable=False, index=True),
                 Column(eng.id_column, String, nullable=False), Column("prediction", String, nullable=False),
                 Column("score", Float), Column("model_version", Integer, nullable=False), schema=schema or None)
    rows = [{"logical_date": day, eng.id_column: str(r[eng.id_column]), "prediction": str(r["prediction"]),
             "score": None if "score" not in frame or frame["score"].isna().iloc[i] else float(r["score"]),
             "model_version": int(r["model_version"])} for i, r in enumerate(frame.to_dict("records"))]
    with errors_named(eng, engine, "writing the night's predictions", conn_id, table), engine.begin() as conn:
        sink.create(conn, checkfirst=True)
        conn.execute(delete(sink).where(sink.c.logical_date == day))
        if rows:
            conn.execute(sink.insert(), rows)
    return len(rows)


def land(eng: Engagement, paths: Any, day: dt.date, engine: sa.Engine) -> tuple[Any, Staged]:
    """Snapshot the night in the database, then land its Parquet copy (each step idempotent: a rerun
    finds the snapshot and the copy, checks the source has not changed, and rewrites nothing)."""
    from steward import batches

    staged = stage(eng, engine, day)
    target = batches.landed_path(eng, paths, day)
    quarantined = batches.quarantine_dir(eng, paths, day) / target.name
    source = f"{staged.namespace}/{staged.database}.{staged.schema}.{staged.table}"
    existing, state = (quarantined, "quarantined") if quarantined.is_file() else (target, "landed")
    if not existing.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        export_parquet(eng, engine, staged, target)
    landed = batches.LandedBatch(eng.id, day.isoformat(), source, str(existing), batches.sha256_file(existing),
                                 existing.stat().st_size, state)
    return landed, staged


def sample_table(engine: sa.Engine, table: str, date_column: str | None, *, nights: int = 7,
                 max_rows: int = 200_000) -> dict[str, Any]:
    """For onboarding: the table's date column (given, or its only date/timestamp column), the row counts of
    its latest nights, and the rows of those nights (without the date column) as the reference."""
    import pandas as pd
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import inspect, text
    from sqlalchemy import types as t

    schema, _, name = table.rpartition(".")
    try:
        with engine.connect() as conn:
            columns = {c["name"]: c["type"] for c in inspect(conn).get_columns(name, schema=schema or None)}
            if date_column is None:
                dated = [c for c, kind in columns.items() if isinstance(kind, t.Date | t.DateTime)]
                if len(dated) != 1:
                    raise SqlSourceError(f"{table}: cannot tell which column dates the rows ({', '.join(dated) or 'none'} "
                                         "are dates): pass --date-column")
                date_column = dated[0]
            if date_column not in columns:
                raise SqlSourceError(f"{table} has no column {date_column!r}; it has {', '.join(columns)}")
            q_table, q_date = _quote(engine, table), _quote(engine, date_column)
            counts = conn.execute(text(f"SELECT {q_date}, count(*) FROM {q_table} GROUP BY 1 ORDER BY 1 DESC "
                                       "LIMIT :nights"), {"nights": nights}).all()
            if not counts:
                raise SqlSourceError(f"{table} has no rows to profile")
            kept = ", ".join(_quote(engine, c) for c in columns if c != date_column)
            frame = pd.read_sql(text(f"SELECT {kept} FROM {q_table} WHERE {q_date} >= :since "
                                     f"ORDER BY {q_date} DESC LIMIT :rows"), conn,
                                params={"since": counts[-1][0], "rows": max_rows})
    except sa_exc.NoSuchTableError:
        raise SqlSourceError(f"table {table} does not exist (or this connection's role cannot see it)") from None
    except sa_exc.OperationalError as e:
        raise SqlSourceUnavailableError(f"database unreachable while profiling {table}: {_first_line(e)}") from None
    except sa_exc.DBAPIError as e:
        raise SqlSourceError(f"profiling {table} failed: {_first_line(e)}") from None
    return {"date_column": date_column, "counts": [int(n) for _, n in counts], "frame": frame,
            "nights": [str(d)[:10] for d, _ in counts]}
