"""SQL sources and sinks on the machine's PostgreSQL (ADR 0023): the night snapshotted in the database and
checked there, the client's table only read, a bad night quarantined into a table, predictions written back
idempotently, every failure a message naming the engagement, the connection and the table (never the
password); then three nights of an engagement on Postgres tables through the real DAG."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
import yaml

from steward import demo, pipeline
from steward.config import load_engagement
from steward.settings import PROJECT_ROOT
from steward.sources import batches, sql_source
from tests.conftest import ENGAGEMENTS
from tests.support import logs, postgres

NIGHTS = demo.night_dates(nights=3)
BAD_NIGHT = NIGHTS[1]
CONN_ID = "client_pg"
SECRET = "s3cret-not-for-logs"


def _night_frame(data_root, day: dt.date) -> pd.DataFrame:
    frame = pd.read_csv(data_root / "churn_telco/incoming" / f"{day}.csv")
    if day == BAD_NIGHT:  # what a broken export looks like in a table: negative tenures, missing ids
        frame.loc[:199, "tenure_months"] = -5
        frame.loc[300:304, "customer_id"] = None
    return frame.assign(event_date=day)


@pytest.fixture(scope="module")
def client_db(tmp_path_factory):
    """The client's database: crm.churn_events holds three nights of the demo's churn rows, one broken."""
    import sqlalchemy as sa

    data_root = tmp_path_factory.mktemp("sqldata")
    demo.generate("churn_telco", data_root, nights=len(NIGHTS))
    with postgres.scratch_database() as name:
        engine = sa.create_engine(postgres.url(name))
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA crm")
        frame = pd.concat([_night_frame(data_root, d) for d in NIGHTS], ignore_index=True)
        frame.to_sql("churn_events", engine, schema="crm", index=False, dtype={"event_date": sa.Date()})
        yield {"name": name, "engine": engine, "data_root": data_root}
        engine.dispose()


@pytest.fixture
def home(paths, client_db):
    """A private STEWARD_HOME whose data root holds the reference file (the batches are in the database)."""
    import shutil

    (paths.data_root / "churn_telco").mkdir(parents=True)
    shutil.copy(client_db["data_root"] / "churn_telco/reference.csv", paths.data_root / "churn_telco/reference.csv")
    return paths


def _engagement_file(folder, *, data: dict, sink: str | None = "crm.churn_scores", eng_id: str = "churn_telco"):
    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    raw["id"] = eng_id
    raw["data"] = {"source": "sql", "conn_id": CONN_ID, "reference": "churn_telco/reference.csv", **data}
    raw["business"].pop("adoption")
    if sink:
        raw["predictions"] = {"sink": {"conn_id": CONN_ID, "table": sink}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{eng_id}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


TABLE_SOURCE = {"table": "crm.churn_events", "date_column": "event_date"}


def _tries(dag_id: str, run_id: str) -> int:
    """How many times land_batch ran in that run (Airflow's metadata database)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id, task_id="land_batch").one().try_number


def _client_table_state(engine) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.exec_driver_sql(
            "SELECT count(*), sum(hashtextextended(t::text, 0)) FROM crm.churn_events t").one())


def test_a_night_is_snapshotted_checked_in_the_database_and_landed_without_touching_the_client_table(
        client_db, tmp_path, home):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres.url(client_db["name"]))
    eng = load_engagement(_engagement_file(tmp_path / "engagements", data=TABLE_SOURCE))
    before = _client_table_state(engine)
    day = NIGHTS[0]

    landed = pipeline.land(eng, home, day, connect=lambda _: engine)
    staged = landed["batch"]["sql"]
    assert (staged["schema"], staged["table"], staged["state"]) == ("steward", "churn_telco__20260301", "staged")
    assert staged["source"] == f"{client_db['name']}.crm.churn_events"
    assert staged["key_range"] == {"column": "customer_id", "min": "C1000000", "max": "C1001499"}
    copy = pd.read_parquet(landed["batch"]["path"])
    source = pd.read_csv(client_db["data_root"] / "churn_telco/incoming" / f"{day}.csv")
    assert list(copy.columns) == list(source.columns)  # the date column says which night; it is not a feature
    pd.testing.assert_frame_equal(copy.astype(str), source.sort_values("customer_id").reset_index(drop=True).astype(str))

    quality = pipeline.validate(eng, home, day, landed, connect=lambda _: engine)
    assert quality["success"] and "in the database" in quality["engine"], quality["failed"]

    again = pipeline.land(eng, home, day, connect=lambda _: engine)  # a rerun rewrites nothing
    assert again["batch"]["sha256"] == landed["batch"]["sha256"] and again["batch"]["sql"] == staged
    assert _client_table_state(engine) == before

    with engine.begin() as conn:  # the client appends a late row to a night already landed
        conn.exec_driver_sql("INSERT INTO crm.churn_events (customer_id, event_date) VALUES ('LATE1', '2026-03-01')")
    try:
        with pytest.raises(batches.BatchConflictError, match="changed after they were snapshotted"):
            pipeline.land(eng, home, day, connect=lambda _: engine)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM crm.churn_events WHERE customer_id = 'LATE1'")
    with pytest.raises(batches.BatchMissingError, match="no rows"):
        pipeline.land(eng, home, dt.date(2026, 4, 1), connect=lambda _: engine)


def test_a_bad_night_fails_in_the_database_and_is_quarantined_into_a_table(client_db, tmp_path, home):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres.url(client_db["name"]))
    eng = load_engagement(_engagement_file(tmp_path / "engagements", data=TABLE_SOURCE))
    before = _client_table_state(engine)
    landed = pipeline.land(eng, home, BAD_NIGHT, connect=lambda _: engine)
    quality = pipeline.validate(eng, home, BAD_NIGHT, landed, connect=lambda _: engine)
    failed = {(c["expectation"], c["column"]): c for c in quality["failed"]}
    assert not quality["success"]
    negative = failed[("expect_column_values_to_be_between", "tenure_months")]
    assert negative["unexpected_count"] == 200 and set(negative["sample_unexpected"]) == {-5}
    assert ("expect_column_values_to_not_be_null", "customer_id") in failed

    result = pipeline.quarantine(eng, home, BAD_NIGHT, landed, quality, connect=lambda _: engine)
    assert result["quarantine_table"] == "steward.churn_telco__20260302__quarantined"
    with engine.connect() as conn:
        kept = conn.exec_driver_sql(f"SELECT count(*) FROM {result['quarantine_table']}").scalar()
        snapshot_gone = not sa.inspect(conn).has_table("churn_telco__20260302", schema="steward")
    assert kept == 1500 and snapshot_gone
    reasons = json.loads((batches.quarantine_dir(eng, home, BAD_NIGHT) / "reasons.json").read_text())
    assert reasons["sql"]["key_range"]["column"] == "customer_id" and reasons["failed_expectations"]
    assert _client_table_state(engine) == before  # the client's table is never modified
    rerun = pipeline.land(eng, home, BAD_NIGHT, connect=lambda _: engine)
    assert rerun["batch"]["state"] == "quarantined" and rerun["batch"]["sql"]["state"] == "quarantined"


def test_predictions_are_written_back_idempotently_per_night(client_db, tmp_path):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres.url(client_db["name"]))
    eng = load_engagement(_engagement_file(tmp_path / "engagements", data=TABLE_SOURCE, sink="crm.scores_idem"))
    night = pd.DataFrame({"customer_id": ["a", "b"], "prediction": [1, 0], "score": [0.9, 0.2], "model_version": 3})
    for day in (NIGHTS[0], NIGHTS[0], NIGHTS[1]):  # the first night twice: a rerun replaces, never duplicates
        assert sql_source.write_predictions(eng, engine, CONN_ID, "crm.scores_idem", day, night) == 2
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT logical_date, customer_id, prediction, score, model_version "
                                    "FROM crm.scores_idem ORDER BY 1, 2").all()
    assert [tuple(r) for r in rows] == [(NIGHTS[0], "a", "1", 0.9, 3), (NIGHTS[0], "b", "0", 0.2, 3),
                                        (NIGHTS[1], "a", "1", 0.9, 3), (NIGHTS[1], "b", "0", 0.2, 3)]


def test_bad_sources_get_a_clear_message_naming_engagement_connection_and_table(client_db, tmp_path, home):
    import sqlalchemy as sa

    name = client_db["name"]
    folder = tmp_path / "engagements"
    with sa.create_engine(postgres.url(name)).begin() as conn:
        conn.exec_driver_sql("DROP ROLE IF EXISTS steward_no_access")
        conn.exec_driver_sql("CREATE ROLE steward_no_access LOGIN")
    cases = [
        ({"table": "crm.no_such_table", "date_column": "event_date"}, postgres.url(name, password=SECRET),
         sql_source.SqlSourceError, "table crm.no_such_table does not exist"),
        ({"table": "crm.churn_events", "date_column": "day"}, postgres.url(name, password=SECRET),
         sql_source.SqlSourceError, "has no column 'day'"),
        ({"query": "SELECT customer_id, no_such_column FROM crm.churn_events WHERE event_date = :logical_date"},
         postgres.url(name, password=SECRET), sql_source.SqlSourceError, "no_such_column"),
        (TABLE_SOURCE, postgres.url(name, user="steward_no_access", password=SECRET), sql_source.SqlSourceError,
         "permission denied"),
        (TABLE_SOURCE, postgres.url(name, password=SECRET, port=1), sql_source.SqlSourceUnavailableError,
         "database unreachable"),
    ]
    try:
        for data, url, error, words in cases:
            eng = load_engagement(_engagement_file(folder, data=data))
            engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
            with pytest.raises(error) as caught:
                pipeline.land(eng, home, NIGHTS[0], connect=lambda _, e=engine: e)
            message = str(caught.value)
            assert words in message, message
            assert f"churn_telco: connection '{CONN_ID}'" in message and SECRET not in message, message
            assert not batches.landed_path(eng, home, NIGHTS[0]).exists()  # nothing half-landed
    finally:
        with sa.create_engine(postgres.url(name)).begin() as conn:
            conn.exec_driver_sql("DROP ROLE steward_no_access")


def test_a_column_that_changed_type_is_quarantined_by_the_type_check(client_db, tmp_path, home):
    """The client's export starts writing tenure as text: the night's snapshot has a text column where the
    engagement expects numbers, and the suite in the database says so."""
    import sqlalchemy as sa

    engine = sa.create_engine(postgres.url(client_db["name"]))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE crm.churn_events_v2 AS SELECT * FROM crm.churn_events")
        conn.exec_driver_sql("ALTER TABLE crm.churn_events_v2 ALTER COLUMN tenure_months TYPE text")
    eng = load_engagement(_engagement_file(tmp_path / "engagements",
                                           data={"table": "crm.churn_events_v2", "date_column": "event_date"},
                                           eng_id="churn_typed"))
    landed = pipeline.land(eng, home, NIGHTS[0], connect=lambda _: engine)
    quality = pipeline.validate(eng, home, NIGHTS[0], landed, connect=lambda _: engine)
    assert not quality["success"]
    typed = [c for c in quality["failed"] if c["expectation"] == "column_type_matches"]
    assert [c["column"] for c in typed] == ["tenure_months"], quality["failed"]


@pytest.mark.e2e
def test_three_nights_on_postgres_tables_through_the_real_dag(client_db, tmp_path, home, monkeypatch):
    """churn_sql reads crm.churn_events and writes crm.churn_sql_scores through the connection `client_pg`:
    the broken night is quarantined into a table, the others are scored into the sink with the champion's
    version, a rerun changes nothing, and the lineage names the tables as OpenLineage does."""
    import sqlalchemy as sa

    from steward.airflow.runner import run_night
    from steward.governance import lineage
    from tests.support.openlineage_schema import EventValidator

    name, engine = client_db["name"], client_db["engine"]
    folder = tmp_path / "engagements"
    _engagement_file(folder, data=TABLE_SOURCE, sink="crm.churn_sql_scores", eng_id="churn_sql")
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(folder))
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"postgresql://postgres:{SECRET}@127.0.0.1:5432/{name}")
    before = _client_table_state(engine)

    with logs.caught("steward.airflow") as caught:
        runs = {day: run_night("churn_sql", day) for day in NIGHTS}
    outcomes = {day: r["audit"]["outcome"] for day, r in runs.items()}
    assert outcomes == {NIGHTS[0]: "keep", BAD_NIGHT: "quarantine", NIGHTS[2]: "keep"}, outcomes
    assert all(r["state"].endswith("success") for r in runs.values())
    assert _client_table_state(engine) == before

    with engine.connect() as conn:
        served = dict(conn.exec_driver_sql("SELECT logical_date, count(*) FROM crm.churn_sql_scores GROUP BY 1").all())
        versions = {r[0] for r in conn.exec_driver_sql("SELECT DISTINCT model_version FROM crm.churn_sql_scores")}
        quarantined = conn.exec_driver_sql("SELECT count(*) FROM steward.churn_sql__20260302__quarantined").scalar()
        negatives = conn.exec_driver_sql(
            "SELECT count(*) FROM steward.churn_sql__20260302__quarantined WHERE tenure_months < 0").scalar()
    assert served == {NIGHTS[0]: 1500, NIGHTS[2]: 1500} and versions == {1}
    assert (quarantined, negatives) == (1500, 200)
    record = runs[BAD_NIGHT]["audit"]
    assert record["quarantine"]["quarantine_table"] == "steward.churn_sql__20260302__quarantined"

    rerun = run_night("churn_sql", NIGHTS[0])  # idempotent per night: same batch, same sink rows
    assert rerun["audit"]["data"]["batch"]["sha256"] == runs[NIGHTS[0]]["audit"]["data"]["batch"]["sha256"]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM crm.churn_sql_scores").scalar() == 3000

    events = lineage.read_events(home, "churn_sql")
    validator = EventValidator()
    for event in events:
        validator.validate(event)
    named = {(e["job"]["name"].split(".")[-1], side, d["namespace"], d["name"])
             for e in events if e["eventType"] == "COMPLETE" for side in ("inputs", "outputs") for d in e.get(side) or []}
    pg = "postgres://127.0.0.1:5432"
    assert ("land_batch", "inputs", pg, f"{name}.crm.churn_events") in named
    assert ("land_batch", "outputs", pg, f"{name}.steward.churn_sql__20260301") in named
    assert ("validate_batch", "inputs", pg, f"{name}.steward.churn_sql__20260302") in named
    assert ("quarantine_batch", "outputs", pg, f"{name}.steward.churn_sql__20260302__quarantined") in named
    assert ("score_batch", "outputs", pg, f"{name}.crm.churn_sql_scores") in named
    assert any("QUARANTINED" in line for line in caught.lines)  # the caught lines are the task logs' lines
    assert not any(SECRET in line for line in caught.lines)
    assert SECRET not in json.dumps(events) and SECRET not in json.dumps(record)
    assert sa.inspect(engine).has_table("churn_sql__20260301", schema="steward")


@pytest.mark.e2e
def test_onboard_from_a_table_writes_an_engagement_that_runs_a_night(client_db, tmp_path, home, monkeypatch):
    """`steward onboard --sql CONN --table NAME`: the date column found by its type, the latest nights as the
    reference, their volume as the row-count bounds; the file loads and its first night runs green."""
    from typer.testing import CliRunner

    from steward.airflow.runner import run_night
    from steward.cli import app

    with client_db["engine"].begin() as conn:  # the client's clean history (onboarding learns from it)
        conn.exec_driver_sql("CREATE TABLE crm.churn_history AS SELECT * FROM crm.churn_events WHERE event_date <> "
                             f"'{BAD_NIGHT}'")
    folder = tmp_path / "engagements"
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(folder))
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"postgresql://postgres@127.0.0.1:5432/{client_db['name']}")
    runner = CliRunner()
    out = runner.invoke(app, ["onboard", "--sql", CONN_ID, "--table", "crm.churn_history", "--target", "churned",
                              "--id", "churn_onboarded", "--id-column", "customer_id", "--start-date", "2026-03-01"])
    assert out.exit_code == 0, out.output
    eng = load_engagement(folder / "churn_onboarded.yaml")
    assert (eng.data.source, eng.data.table, eng.data.date_column) == ("sql", "crm.churn_history", "event_date")
    assert (eng.quality.row_count.min, eng.quality.row_count.max) == (375, 6000)  # 1,500 rows on each of 2 nights
    reference = pd.read_parquet(home.data_root / eng.data.reference)
    assert len(reference) == 3000 and "event_date" not in reference.columns
    assert run_night("churn_onboarded", NIGHTS[2])["audit"]["outcome"] == "keep"

    missing = runner.invoke(app, ["onboard", "--sql", CONN_ID, "--table", "crm.nope", "--target", "churned",
                                  "--id", "churn_nope"])
    assert missing.exit_code == 2 and "crm.nope does not exist" in " ".join(missing.output.split())
    assert not (folder / "churn_nope.yaml").exists()


def test_a_night_larger_than_its_sample_is_checked_and_scored_whole_from_a_view(client_db, tmp_path, home):
    """Warehouse shape: `snapshot: view` copies nothing, `sample_rows` lands a seeded sample drawn in the
    database (same rows on a rerun), every row is still scored (in chunks, from the database) into the
    Parquet file and the sink; a quarantined view night is copied into its quarantine table."""
    import sqlalchemy as sa

    engine = client_db["engine"]
    eng = load_engagement(_engagement_file(tmp_path / "engagements", data={**TABLE_SOURCE, "snapshot": "view",
                                                                            "sample_rows": 1000},
                                           sink="crm.churn_big_scores", eng_id="churn_big"))
    connect = lambda _: engine  # noqa: E731
    day = NIGHTS[0]
    landed = pipeline.land(eng, home, day, connect=connect)
    staged, sample = landed["batch"]["sql"], landed["batch"]["sample"]
    assert staged["kind"] == "view" and "churn_big__20260301" in sa.inspect(engine).get_view_names(schema="steward")
    assert sample["of_rows"] == 1500 and 850 <= sample["rows"] <= 1150, sample
    assert len(pd.read_parquet(landed["batch"]["path"])) == sample["rows"] == landed["profile"]["profiled_rows"]
    assert landed["profile"]["rows"] == 1500
    assert pipeline.land(eng, home, day, connect=connect)["batch"] == landed["batch"]  # same sample on a rerun

    quality = pipeline.validate(eng, home, day, landed, connect=connect)
    assert quality["success"], quality["failed"]
    champion = pipeline.ensure_champion(eng, home, day, config_hash="test", run_tags={})
    for _ in range(2):  # a rerun replaces the night's sink rows
        scored = pipeline.score(eng, home, day, landed, champion, connect=connect)
    assert scored["rows"] == 1500 and scored["sample"]["estimate_from_rows"] == sample["rows"]
    served = pd.read_parquet(scored["path"])
    assert len(served) == 1500 and served["customer_id"].is_unique and set(served["model_version"]) == {1}
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*), count(DISTINCT customer_id) FROM crm.churn_big_scores "
                                    "WHERE logical_date = '2026-03-01'").one() == (1500, 1500)
        truth = pd.read_sql("SELECT customer_id, churned FROM crm.churn_events WHERE event_date = '2026-03-01'", conn)
    # the night is priced on every row while it is scored, not on its landed sample (recomputed by hand)
    from steward.operations import value

    priced = value.history(home, "churn_big")[0]
    both = served.merge(truth, on="customer_id")
    by_hand = {"true_positives": int(((both.prediction == 1) & (both.churned == 1)).sum()),
               "false_positives": int(((both.prediction == 1) & (both.churned == 0)).sum()),
               "false_negatives": int(((both.prediction == 0) & (both.churned == 1)).sum())}
    assert (priced["scored_rows"], priced["labelled_rows"]) == (1500, 1500)
    assert {k: priced[k] for k in by_hand} == by_hand

    bad = pipeline.land(eng, home, BAD_NIGHT, connect=connect)
    quality = pipeline.validate(eng, home, BAD_NIGHT, bad, connect=connect)
    assert not quality["success"]
    result = pipeline.quarantine(eng, home, BAD_NIGHT, bad, quality, connect=connect)
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {result['quarantine_table']}").scalar() == 1500
    assert "churn_big__20260302" not in sa.inspect(engine).get_view_names(schema="steward")


@pytest.mark.e2e
def test_a_database_that_is_down_is_retried_then_a_failed_night_is_recorded(client_db, tmp_path, home, monkeypatch):
    """The connection points at a port nobody listens on: land_batch is retried, then the night fails and its
    audit record says so; a missing table fails at once (retrying cannot fix it); the engagement reading
    from a healthy database the same night is untouched."""
    from steward.airflow.runner import run_night
    from steward.governance import ledger

    folder = tmp_path / "engagements"
    _engagement_file(folder, data=TABLE_SOURCE, sink=None, eng_id="churn_down")
    _engagement_file(folder, data={"table": "crm.gone", "date_column": "event_date"}, sink=None, eng_id="churn_gone")
    _engagement_file(folder, data=TABLE_SOURCE, sink=None, eng_id="churn_up")
    for eng_id in ("churn_down", "churn_gone", "churn_up"):
        text = (folder / f"{eng_id}.yaml").read_text().replace(f"conn_id: {CONN_ID}", f"conn_id: pg_{eng_id}")
        (folder / f"{eng_id}.yaml").write_text(text)
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(folder))
    monkeypatch.setenv("STEWARD_RETRY_DELAY_SECONDS", "0")
    up = f"postgresql://postgres@127.0.0.1:5432/{client_db['name']}"
    monkeypatch.setenv("AIRFLOW_CONN_PG_CHURN_UP", up)
    monkeypatch.setenv("AIRFLOW_CONN_PG_CHURN_GONE", up)
    monkeypatch.setenv("AIRFLOW_CONN_PG_CHURN_DOWN", f"postgresql://postgres:{SECRET}@127.0.0.1:1/{client_db['name']}")

    with logs.caught("steward.airflow") as caught:
        down = run_night("churn_down", NIGHTS[0])
        gone = run_night("churn_gone", NIGHTS[0])
        healthy = run_night("churn_up", NIGHTS[0])
    assert down["audit"]["outcome"] == gone["audit"]["outcome"] == "failed"
    assert down["audit"]["task_states"]["land_batch"] == gone["audit"]["task_states"]["land_batch"] == "failed"
    assert healthy["audit"]["outcome"] == "keep"
    assert _tries("churn_down", down["run_id"]) == 3  # the first try and two retries
    assert _tries("churn_gone", gone["run_id"]) == 1  # refused at once: retrying cannot create a table
    refused = [line for line in caught.lines if "REFUSED" in line]
    assert any("churn_gone: connection 'pg_churn_gone'" in line and "table crm.gone does not exist" in line
               for line in refused), refused
    assert caught.lines and not any(SECRET in line for line in caught.lines)
    for eng_id in ("churn_down", "churn_gone"):
        assert ledger.verify(home, eng_id).ok


@pytest.mark.e2e
def test_labels_from_a_table_are_landed_and_joined_through_the_real_dag(client_db, tmp_path, home, monkeypatch):
    """Batches from a query without the target, labels from crm.churn_labels two nights later: the third night
    lands the labels that arrived (kept as its file), joins them to the first night's predictions and records
    realised performance; a later change to the label rows does not change a rerun of that night."""
    from steward.airflow.runner import run_night
    from steward.sources import labels

    engine = client_db["engine"]
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE crm.churn_labels AS SELECT customer_id, churned, event_date + 2 AS arrived_on "
                             "FROM crm.churn_events")
    features = "customer_id, tenure_months, monthly_charges, support_calls, data_usage_gb, contract, payment_method"
    folder = tmp_path / "engagements"
    path = _engagement_file(folder, data={"query": f"SELECT {features} FROM crm.churn_events WHERE event_date = :logical_date"},
                            sink=None, eng_id="churn_late")
    raw = yaml.safe_load(path.read_text())
    raw["labels"] = {"source": "sql", "conn_id": CONN_ID, "table": "crm.churn_labels", "date_column": "arrived_on",
                     "expected_delay_days": 2}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(folder))
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"postgresql://postgres@127.0.0.1:5432/{client_db['name']}")

    runs = {day: run_night("churn_late", day) for day in NIGHTS}
    assert [r["audit"]["outcome"] for r in runs.values()] == ["keep", "quarantine", "keep"]
    eng = load_engagement(path)
    arrived = labels.label_file(eng, home, NIGHTS[2])
    assert len(pd.read_parquet(arrived)) == 1500 and not labels.label_file(eng, home, NIGHTS[0]).exists()
    joined = runs[NIGHTS[2]]["audit"]["labels"]
    assert joined["prediction_dates"] == [str(NIGHTS[0])] and joined["joined"] == 1500
    realised = {r["prediction_date"]: r for r in labels.history(home, "churn_late")}
    assert realised[str(NIGHTS[0])]["labelled_rows"] == 1500 and realised[str(NIGHTS[0])]["realised_value"] > 0.7

    before = arrived.read_bytes()
    with engine.begin() as conn:  # the client rewrites those labels afterwards
        conn.exec_driver_sql(f"UPDATE crm.churn_labels SET churned = 1 - churned WHERE arrived_on = '{NIGHTS[2]}'")
    run_night("churn_late", NIGHTS[2])
    assert arrived.read_bytes() == before
    again = {r["prediction_date"]: r for r in labels.history(home, "churn_late")}
    assert again[str(NIGHTS[0])]["realised_value"] == realised[str(NIGHTS[0])]["realised_value"]


def test_retention_drops_expired_snapshots_and_records_them(client_db, tmp_path, home):
    """Past governance.retention_days, the night snapshots and quarantine tables steward made in the client's
    database are listed in a ledger purge entry, then dropped; the client's table is untouched."""
    import sqlalchemy as sa

    from steward.governance import ledger, retention

    engine = client_db["engine"]
    eng = load_engagement(_engagement_file(tmp_path / "engagements", data=TABLE_SOURCE, sink=None, eng_id="churn_old"))
    connect = lambda _: engine  # noqa: E731
    pipeline.land(eng, home, NIGHTS[0], connect=connect)
    bad = pipeline.land(eng, home, BAD_NIGHT, connect=connect)
    pipeline.quarantine(eng, home, BAD_NIGHT, bad, pipeline.validate(eng, home, BAD_NIGHT, bad, connect=connect),
                        connect=connect)
    before = _client_table_state(engine)
    today = BAD_NIGHT + dt.timedelta(days=eng.governance.retention_days)  # night 1 expired, night 2 not yet
    first = retention.purge(eng, home, today, connect=connect)
    assert first["dropped_snapshots"] == 1
    later = retention.purge(eng, home, today + dt.timedelta(days=1), connect=connect)
    assert later["dropped_snapshots"] == 1
    assert retention.purge(eng, home, today + dt.timedelta(days=2), connect=connect)["ledger_seq"] is None
    purges = [e["detail"]["snapshots"] for e in ledger.read_entries(home, "churn_old") if e["type"] == "purge"]
    assert purges == [[{"relation": "steward.churn_old__20260301", "rows": 1500}],
                      [{"relation": "steward.churn_old__20260302__quarantined", "rows": 1500}]]
    left = [t for t in sa.inspect(engine).get_table_names(schema="steward") if t.startswith("churn_old__")]
    assert left == [] and _client_table_state(engine) == before
    assert ledger.verify(home, "churn_old").ok


def _documented_role_statements() -> list[str]:
    """The statements docs/security.md tells a client's DBA to run (between its sql-role markers)."""
    import re

    text = (PROJECT_ROOT / "docs" / "security.md").read_text()
    block = re.search(r"<!-- sql-role:begin.*?```sql\n(.*?)```", text, re.S)
    assert block, "docs/security.md has no sql-role block"
    body = "\n".join(line for line in block.group(1).splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def test_a_least_privilege_role_with_a_real_password(client_db, tmp_path, home):
    """Issue 32: on a cluster that asks for passwords, the role docs/security.md documents lands and checks a
    night and writes its predictions, with the password (a wrong one is refused: the positive control that
    the password is used); it cannot write the client's table; no error carries the password."""
    import sqlalchemy as sa

    admin_password = "admin-" + SECRET
    with postgres.password_cluster(admin_password) as port:
        admin = sa.create_engine(postgres.url("postgres", password=admin_password, port=port))
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("CREATE DATABASE client")
        owner = sa.create_engine(postgres.url("client", password=admin_password, port=port))
        with owner.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA crm")
        with client_db["engine"].connect() as conn:
            rows = pd.read_sql("SELECT * FROM crm.churn_events", conn)
        rows.to_sql("churn_events", owner, schema="crm", index=False, dtype={"event_date": sa.Date()})
        with owner.begin() as conn:
            for statement in _documented_role_statements():
                conn.exec_driver_sql(statement.replace("'change-me'", f"'{SECRET}'"))
        eng = load_engagement(_engagement_file(tmp_path / "engagements", data=TABLE_SOURCE))

        wrong = sa.create_engine(postgres.url("client", user="steward_reader", password="not-the-password", port=port),
                                 connect_args={"connect_timeout": 3})
        with pytest.raises((sql_source.SqlSourceError, sql_source.SqlSourceUnavailableError)) as refused:
            pipeline.land(eng, home, NIGHTS[0], connect=lambda _: wrong)
        assert "password authentication failed for user \"steward_reader\"" in str(refused.value), str(refused.value)
        assert "not-the-password" not in str(refused.value) and not batches.landed_path(eng, home, NIGHTS[0]).exists()

        reader = sa.create_engine(postgres.url("client", user="steward_reader", password=SECRET, port=port))
        landed = pipeline.land(eng, home, NIGHTS[0], connect=lambda _: reader)
        assert batches.landed_path(eng, home, NIGHTS[0]).exists()
        quality = pipeline.validate(eng, home, NIGHTS[0], landed, connect=lambda _: reader)
        assert quality["success"], quality["failed"]
        frame = pd.DataFrame({"customer_id": ["a", "b"], "prediction": ["0", "1"], "score": [0.1, 0.9],
                              "model_version": [1, 1]})
        assert sql_source.write_predictions(eng, reader, CONN_ID, "crm.churn_scores", NIGHTS[0], frame) == 2
        with reader.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM crm.churn_scores").scalar() == 2
            assert conn.exec_driver_sql(f"SELECT count(*) FROM steward.churn_telco__{NIGHTS[0]:%Y%m%d}").scalar() > 0
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), reader.begin() as conn:
            conn.exec_driver_sql("DELETE FROM crm.churn_events")
        with owner.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM crm.churn_events").scalar() == len(rows)
        for engine in (admin, owner, wrong, reader):
            engine.dispose()
