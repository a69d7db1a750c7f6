"""Nightly batches from a SQL database, and predictions written back to one (ADR 0023).

A night's rows (a table filtered on its date column, or the engagement's query with `:logical_date` bound)
are snapshotted inside the same database, in the engagement's staging schema: the checks run there (Great
Expectations' SQL data source, steward.checks.quality), a quarantined night's snapshot is renamed into a
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

from steward.config import Engagement, SqlSource
from steward.sources.batches import BatchConflictError, BatchMissingError, SourceConfigurationError

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

Connect = Callable[[str], "sa.Engine"]
BATCH_BYTES = 32 << 20  # Arrow batches of about this size from the database (~100,000 rows of 30 columns)
QUARANTINED_SUFFIX = "__quarantined"


class SqlSourceError(SourceConfigurationError):
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
    kind: str = "table"  # table (a copy of the night) | view (over the client's table)

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
    """Database errors as steward's two kinds, with a message naming the engagement, connection and relation."""
    with _database_errors(lambda: describe(eng, engine, conn_id, relation), doing):
        yield


@contextmanager
def _database_errors(where: Callable[[], str], doing: str) -> Iterator[None]:
    """SQLAlchemy's and ADBC's errors (both DB-API) as SqlSourceError (retrying cannot fix it) or
    SqlSourceUnavailableError (the database did not answer: the task retries)."""
    import adbc_driver_manager
    from sqlalchemy import exc

    try:
        yield
    except (exc.OperationalError, adbc_driver_manager.OperationalError) as e:
        if _is_sql_error(e):
            raise SqlSourceError(f"{where()}: {doing} failed: {_first_line(e)}") from None
        raise SqlSourceUnavailableError(f"{where()}: database unreachable while {doing}: {_first_line(e)}") from None
    except (exc.DBAPIError, adbc_driver_manager.Error) as e:
        raise SqlSourceError(f"{where()}: {doing} failed: {_first_line(e)}") from None


def _is_sql_error(e: Exception) -> bool:
    """Drivers report some statement errors as OperationalError: a SQLSTATE outside class 08 (connection
    exception) and 57P (operator intervention) is a statement error, not an outage."""
    error = getattr(e, "orig", None) or e
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return bool(state) and not str(state).startswith(("08", "57P"))


def _first_line(e: Exception) -> str:
    text = str(getattr(e, "orig", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _fingerprint(conn: Any, relation_sql: str, params: dict[str, Any], by: str | None = None) -> tuple[int, str]:
    """Row count and the sum of the rows' hashes, in the database: of whole rows, or (`by`: a quoted
    column, for nights too large to hash row by row in time) of that column's values."""
    from sqlalchemy import text

    hashed = f"t.{by}::text" if by else "t::text"
    row = conn.execute(text(f"SELECT count(*), coalesce(sum(hashtextextended({hashed}, 0)), 0)::text "
                            f"FROM ({relation_sql}) AS t"), params).one()
    return int(row[0]), f"{int(row[0])}:{row[1]}"


def _relations(conn: Any, schema: str) -> set[str]:
    from sqlalchemy import inspect

    found = inspect(conn)
    return set(found.get_table_names(schema=schema)) | set(found.get_view_names(schema=schema))


def _literal_select(engine: sa.Engine, select: str, day: dt.date) -> str:
    """The night's SELECT with the logical date rendered as a SQL literal by the dialect (a view's definition
    cannot take a parameter; the date comes from Airflow, never from YAML)."""
    from sqlalchemy import Date, bindparam, text

    clause = text(select).bindparams(bindparam("logical_date", value=day, type_=Date))
    return str(clause.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))


def land_labels(eng: Engagement, engine: sa.Engine, day: dt.date, path: Path) -> int:
    """The label rows that arrived on `day` (the id column and the target) as a Parquet file at `path`; no
    file when none arrived. Label nights are small: read whole."""
    import pandas as pd
    from sqlalchemy import text

    from steward.models import predictions

    src = eng.labels
    assert src is not None and src.source == "sql"
    if src.table:
        columns = ", ".join(_quote(engine, c) for c in (eng.id_column, eng.target))
        select = f"SELECT {columns} FROM {_quote(engine, src.table)} WHERE {_quote(engine, src.date_column or '')} = :logical_date"
    else:
        select = f"SELECT * FROM ({src.query}) AS steward_labels"
    with errors_named(eng, engine, "reading the night's labels", src.conn_id, src.relation), engine.connect() as conn:
        frame = pd.read_sql(text(select), conn, params={"logical_date": day})
    if frame.empty:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    predictions.write_frame(frame, path)
    return len(frame)


def expired_snapshots(eng: Engagement, engine: sa.Engine, cutoff: dt.date) -> list[dict[str, Any]]:
    """The engagement's night snapshots and quarantine tables older than `cutoff` (retention), with their
    row counts, in night order."""
    import re

    from sqlalchemy import text

    src = source_of(eng)
    pattern = re.compile(rf"^{re.escape(eng.id)}__(\d{{8}})({QUARANTINED_SUFFIX})?$")
    found = []
    with errors_named(eng, engine, "listing the night snapshots"), engine.connect() as conn:
        for name in sorted(_relations(conn, src.staging_schema)):
            match = pattern.match(name)
            if match and dt.datetime.strptime(match.group(1), "%Y%m%d").date() < cutoff:
                rows = conn.execute(text(f"SELECT count(*) FROM {_quote(engine, f'{src.staging_schema}.{name}')}")).scalar()
                found.append({"relation": f"{src.staging_schema}.{name}", "rows": int(rows or 0)})
    return found


def drop_snapshots(eng: Engagement, engine: sa.Engine, expired: list[dict[str, Any]]) -> None:
    from sqlalchemy import inspect, text

    schema = source_of(eng).staging_schema
    with errors_named(eng, engine, "dropping expired night snapshots"), engine.begin() as conn:
        views = set(inspect(conn).get_view_names(schema=schema))
        for item in expired:
            kind = "VIEW" if item["relation"].split(".", 1)[1] in views else "TABLE"
            conn.execute(text(f"DROP {kind} IF EXISTS {_quote(engine, item['relation'])}"))


def has_rows(eng: Engagement, engine: sa.Engine, day: dt.date) -> bool:
    """Whether the night has any row yet (the late-batch sensor), or was snapshotted already."""
    from sqlalchemy import text

    with errors_named(eng, engine, "looking for the night's rows"), engine.connect() as conn:
        select = night_select(eng, engine, conn)
        return conn.execute(text(f"SELECT EXISTS ({select})"), {"logical_date": day}).scalar() or False


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
    by = _quote(engine, eng.id_column) if src.snapshot == "view" else None
    with errors_named(eng, engine, "reading the night's rows"), engine.begin() as conn:
        select = night_select(eng, engine, conn)
        rows, fingerprint = _fingerprint(conn, select, params, by)
        present = _relations(conn, schema) if inspect(conn).has_schema(schema) else set()
        existing = [t for t in (name, name + QUARANTINED_SUFFIX) if t in present]
        if existing:
            table = existing[0]
            kept_rows, kept = _fingerprint(conn, f"SELECT * FROM {_quote(engine, f'{schema}.{table}')}", {}, by)
            if kept != fingerprint:
                raise BatchConflictError(
                    f"{describe(eng, engine)}: the rows of {day} changed after they were snapshotted ({kept_rows} rows "
                    f"in {schema}.{table}, {rows} in the source now); refusing to rewrite a landed batch")
            state = "quarantined" if table.endswith(QUARANTINED_SUFFIX) else "staged"
        else:
            if rows == 0:
                raise BatchMissingError(f"no batch for {eng.id} on {day}: {src.relation} has no rows for it "
                                        f"(connection {src.conn_id!r})")
            # only when missing: even "IF NOT EXISTS" needs CREATE on the database, which a least-privilege
            # role that owns its staging schema does not hold (docs/security.md)
            if not inspect(conn).has_schema(schema):
                conn.execute(text(f"CREATE SCHEMA {_quote(engine, schema)}"))
            if src.snapshot == "view":
                conn.execute(text(f"CREATE VIEW {_quote(engine, f'{schema}.{name}')} AS "
                                  f"{_literal_select(engine, select, day)}"))
            else:
                conn.execute(text(f"CREATE TABLE {_quote(engine, f'{schema}.{name}')} AS {select}"), params)
            table, state = name, "staged"
        key_range = _key_range(conn, engine, eng, f"{schema}.{table}")
    source = dataset(engine, src.table)["name"] if src.table else "query"
    return Staged(conn_id=src.conn_id, namespace=dataset(engine, name)["namespace"], database=engine.url.database or "",
                  source=source, schema=schema, table=table, rows=rows, fingerprint=fingerprint, key_range=key_range,
                  state=state, kind="view" if src.snapshot == "view" and state == "staged" else "table")


def _key_range(conn: Any, engine: sa.Engine, eng: Engagement, relation: str) -> dict[str, Any]:
    from sqlalchemy import text

    column = _quote(engine, eng.id_column)
    low, high = conn.execute(text(f"SELECT min({column})::text, max({column})::text FROM {_quote(engine, relation)}")).one()
    return {"column": eng.id_column, "min": low, "max": high}


def quarantine(eng: Engagement, engine: sa.Engine, staged: dict[str, Any]) -> dict[str, Any]:
    """Rename the night's snapshot into its quarantine table, or copy a view's rows into it (the client's
    table is never touched). Idempotent."""
    from sqlalchemy import text

    schema, table = staged["schema"], staged["table"]
    target = table if table.endswith(QUARANTINED_SUFFIX) else table + QUARANTINED_SUFFIX
    relation, quarantined = _quote(engine, f"{schema}.{table}"), _quote(engine, f"{schema}.{target}")
    with errors_named(eng, engine, "quarantining the night's snapshot"), engine.begin() as conn:
        if target not in _relations(conn, schema):
            if staged.get("kind") == "view":  # the rows are copied now: a quarantined night is kept whole
                conn.execute(text(f"CREATE TABLE {quarantined} AS SELECT * FROM {relation}"))
                conn.execute(text(f"DROP VIEW {relation}"))
            else:
                conn.execute(text(f"ALTER TABLE {relation} RENAME TO {_quote(engine, target)}"))
    return {**staged, "table": target, "state": "quarantined", "kind": "table"}


def export_parquet(eng: Engagement, engine: sa.Engine, staged: Staged, path: Path, where: str = "") -> None:
    """Stream the snapshot (or its rows matching `where`, steward's own SQL), ordered by the id column, into a
    Parquet file, one Arrow batch at a time (the worker holds one batch)."""
    import pyarrow.parquet as pq

    from steward.sources import batches

    order = f"{where} ORDER BY {_quote(engine, eng.id_column)}"
    with batches.atomic_target(path) as tmp:
        writer = None
        try:
            for batch in arrow_batches(eng, engine, staged, order, "copying the night's snapshot"):
                if writer is None:
                    writer = pq.ParquetWriter(tmp, batch.schema)
                writer.write_batch(batch)
        finally:
            if writer is not None:
                writer.close()


def arrow_batches(eng: Engagement, engine: sa.Engine, staged: dict[str, Any] | Staged, tail: str = "",
                  doing: str = "reading the night") -> Iterator[Any]:
    """The snapshot's rows as Arrow record batches straight from the database (ADBC: columns, never Python
    row objects), cast to the Arrow types of the table's columns so every batch agrees (NUMERIC as float)."""
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow as pa
    from sqlalchemy import inspect

    where = staged if isinstance(staged, dict) else staged.to_dict()
    relation = _quote(engine, f"{where['schema']}.{where['table']}")
    with errors_named(eng, engine, doing), engine.connect() as conn:
        columns = inspect(conn).get_columns(where["table"], schema=where["schema"])
    schema = pa.schema([(c["name"], _arrow_type(c["type"])) for c in columns])
    with errors_named(eng, engine, doing), adbc.connect(_adbc_uri(engine)) as conn, conn.cursor() as cur:
        cur.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)})
        cur.execute(f"SELECT * FROM {relation} {tail}")
        for batch in cur.fetch_record_batch():
            yield pa.RecordBatch.from_arrays([batch.column(i).cast(field.type) for i, field in enumerate(schema)],
                                             schema=schema)


def _arrow_type(sql_type: Any) -> Any:
    import pyarrow as pa
    from sqlalchemy import types as t

    for kind, arrow in ((t.Boolean, pa.bool_()), (t.Integer, pa.int64()), (t.Float, pa.float64()),
                        (t.Numeric, pa.float64()), (t.DateTime, pa.timestamp("us")), (t.Date, pa.date32())):
        if isinstance(sql_type, kind):
            return arrow
    return pa.string()


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


def _sink_table(eng: Engagement, table: str) -> Any:
    from sqlalchemy import Column, Date, Float, Integer, MetaData, String, Table

    schema, _, name = table.rpartition(".")
    return Table(name, MetaData(), Column("logical_date", Date, nullable=False, index=True),
                 Column(eng.id_column, String, nullable=False), Column("prediction", String, nullable=False),
                 Column("score", Float), Column("model_version", Integer, nullable=False), schema=schema or None)


def _sink_rows(eng: Engagement, day: dt.date, frame: pd.DataFrame) -> Any:
    """A chunk of predictions as the sink's Arrow table (types as the sink's columns)."""
    import pyarrow as pa

    score = frame["score"].astype(float) if "score" in frame else None
    return pa.table({"logical_date": pa.array([day] * len(frame), pa.date32()),
                     eng.id_column: pa.array(frame[eng.id_column].astype(str), pa.string()),
                     "prediction": pa.array(frame["prediction"].astype(str), pa.string()),
                     "score": pa.array(score, pa.float64(), from_pandas=True) if score is not None
                     else pa.nulls(len(frame), pa.float64()),
                     "model_version": pa.array(frame["model_version"].astype("int32"), pa.int32())})


def write_predictions(eng: Engagement, engine: sa.Engine, conn_id: str, table: str, day: dt.date,
                      frame: pd.DataFrame) -> int:
    """Replace the night's rows of the predictions sink in one transaction (created when missing): the
    client reads every night's predictions with the model version that made them."""
    with Sink(eng, engine, conn_id, table, day) as sink:
        sink.append(frame)
    return len(frame)


class Sink:
    """The night's predictions written to the sink table in one transaction: the night's earlier rows
    deleted, then chunks appended with COPY (ADBC bulk ingest), committed together on exit (rolled back on
    an error: the client never sees half a night)."""

    def __init__(self, eng: Engagement, engine: sa.Engine, conn_id: str, table: str, day: dt.date):
        self.eng, self.engine, self.conn_id, self.table, self.day = eng, engine, conn_id, table, day
        self.rows = 0

    def __enter__(self) -> Sink:
        import adbc_driver_postgresql.dbapi as adbc
        from sqlalchemy import delete

        with errors_named(self.eng, self.engine, "writing the night's predictions", self.conn_id, self.table):
            sink = _sink_table(self.eng, self.table)
            with self.engine.begin() as conn:
                sink.create(conn, checkfirst=True)
            self._conn = adbc.connect(_adbc_uri(self.engine))
            self._cur = self._conn.cursor()
            night = delete(sink).where(sink.c.logical_date == self.day)
            self._cur.execute(str(night.compile(dialect=self.engine.dialect, compile_kwargs={"literal_binds": True})))
        return self

    def append(self, frame: pd.DataFrame) -> None:
        schema, _, name = self.table.rpartition(".")
        with errors_named(self.eng, self.engine, "writing the night's predictions", self.conn_id, self.table):
            self._cur.adbc_ingest(name, _sink_rows(self.eng, self.day, frame), mode="append",
                                  db_schema_name=schema or None)
        self.rows += len(frame)

    def __exit__(self, kind: Any, *_: Any) -> None:
        try:
            with errors_named(self.eng, self.engine, "writing the night's predictions", self.conn_id, self.table):
                if kind is None:
                    self._conn.commit()
                else:
                    self._conn.rollback()
        finally:
            self._cur.close()
            self._conn.close()


def _adbc_uri(engine: sa.Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def score_night(eng: Engagement, engine: sa.Engine, staged: dict[str, Any], model: Any, version: int, path: Path,
                sink: Sink | None) -> dict[str, Any]:
    """Score the whole night straight from its snapshot in the database, one Arrow batch at a time:
    predictions to the Parquet file the client and the labels join read, and to the sink. The next batch
    is read and the previous one written to the sink while this one is scored (two threads beside the
    model: the database's reading and writing overlap the scoring); the worker holds a few batches."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.parquet as pq

    from steward.models import predictions, training
    from steward.operations import value
    from steward.sources import batches, schema

    rows = labelled_rows = 0
    counts = value.empty_counts(eng)  # labels inside the batch: every row's outcome, priced (steward.operations.value)
    writer = None
    batches_in = _prefetched(arrow_batches(eng, engine, staged, doing="scoring the night"))
    with batches.atomic_target(path) as tmp, ThreadPoolExecutor(max_workers=1) as sink_thread:
        pending = None
        try:
            for batch in batches_in:
                frame = batch.to_pandas()
                if eng.column_types:
                    frame = schema.cast(frame, eng.column_types)
                served = predictions.served_frame(eng, frame, model, version)
                if eng.labels is None and eng.target in frame:
                    from steward.monitoring import drift

                    outcomes = training.labelled(eng, frame.assign(**{drift.PREDICTION: served["prediction"].to_numpy()}))
                    if len(outcomes):
                        counts = value.add_counts(counts, value.outcome_counts(eng, outcomes))
                        labelled_rows += len(outcomes)
                table = pa.Table.from_pandas(served, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
                if sink is not None:
                    if pending is not None:
                        pending.result()  # one write in flight, in order
                    pending = sink_thread.submit(sink.append, served)
                rows += len(served)
            if pending is not None:
                pending.result()
        finally:
            if writer is not None:
                writer.close()
    return {"rows": rows, "labelled_rows": labelled_rows, "counts": counts}


def _prefetched(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """The items of `items`, produced by a thread up to `depth` ahead (its errors re-raised here)."""
    import queue
    import threading

    done = object()
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for item in items:
                buffer.put(item)
            buffer.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            buffer.put(exc)

    threading.Thread(target=produce, daemon=True, name="steward-sql-prefetch").start()
    while True:
        item = buffer.get()
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


SAMPLE_BUCKETS = 1 << 20


def sample_of(eng: Engagement, staged: Staged, day: dt.date) -> dict[str, Any] | None:
    """How a night larger than `data.sample_rows` is sampled in the database: rows whose seeded hash of
    the id falls in the first `threshold` of SAMPLE_BUCKETS buckets (deterministic for the night's rows)."""
    from steward.sources import sampling

    limit = source_of(eng).sample_rows
    if staged.rows <= limit:
        return None
    seed = sampling.seed_for(eng.id, day.isoformat(), staged.fingerprint)
    threshold = -(-limit * SAMPLE_BUCKETS // staged.rows)
    return {"method": f"in the database: hashtextextended({eng.id_column}, seed) mod {SAMPLE_BUCKETS} < threshold",
            "seed": seed, "threshold": threshold, "of_rows": staged.rows, "target_rows": limit}


def land(eng: Engagement, paths: Any, day: dt.date, engine: sa.Engine) -> tuple[Any, Staged, dict[str, Any] | None]:
    """Snapshot the night in the database, then land its Parquet copy, or a seeded sample of it drawn in the
    database for a night larger than `data.sample_rows` (each step idempotent: a rerun finds the snapshot and
    the copy, checks the source has not changed, and rewrites nothing)."""
    from steward.sources import batches

    staged = stage(eng, engine, day)
    sample = sample_of(eng, staged, day)
    target = batches.landed_path(eng, paths, day)
    quarantined = batches.quarantine_dir(eng, paths, day) / target.name
    source = f"{staged.namespace}/{staged.database}.{staged.schema}.{staged.table}"
    existing, state = (quarantined, "quarantined") if quarantined.is_file() else (target, "landed")
    if not existing.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        if sample is None:
            export_parquet(eng, engine, staged, target)
        else:
            column = _quote(engine, eng.id_column)  # seed and threshold are steward's integers
            export_parquet(eng, engine, staged, target, f"WHERE (hashtextextended({column}::text, {int(sample['seed'])})"
                           f" & {SAMPLE_BUCKETS - 1}) < {int(sample['threshold'])}")
    if sample is not None:
        import pyarrow.parquet as pq

        sample["rows"] = pq.ParquetFile(existing).metadata.num_rows
    landed = batches.LandedBatch(eng.id, day.isoformat(), source, str(existing), batches.sha256_file(existing),
                                 existing.stat().st_size, state)
    return landed, staged, sample


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
        with _database_errors(lambda: table, "profiling"), engine.connect() as conn:
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
    return {"date_column": date_column, "counts": [int(n) for _, n in counts], "frame": frame,
            "nights": [str(d)[:10] for d, _ in counts]}
