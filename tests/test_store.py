from __future__ import annotations

import uuid

import pytest

from steward import store


def _record(day="2026-03-01", outcome="keep"):
    return {"engagement": {"id": "churn_telco"}, "logical_date": day, "run": {"run_id": "manual__x"},
            "outcome": outcome, "models": {"champion_before": 1, "champion_after": 1},
            "recorded_at": "2026-03-01T02:05:00+00:00"}


def test_sqlite_default_records_runs_idempotently(paths):
    store.record_run(paths, _record(), 2, "a" * 64)
    store.record_run(paths, _record(), 2, "a" * 64)  # a retry of the same attempt
    store.record_run(paths, _record(outcome="promote"), 3, "b" * 64)
    rows = store.runs_of(paths, "churn_telco")
    assert [(r["ledger_seq"], r["outcome"]) for r in rows] == [(2, "keep"), (3, "promote")]
    assert (paths.home / "steward.db").exists()


def test_unreachable_database_fails_with_a_clear_message(paths, monkeypatch):
    monkeypatch.setenv("STEWARD_DB_URL", "postgresql+psycopg2://steward:s3cret@127.0.0.1:1/steward")
    with pytest.raises(store.StoreUnavailableError) as info:
        store.record_run(paths, _record(), 2, "a" * 64)
    assert "unreachable at postgresql+psycopg2://steward:***@127.0.0.1:1/steward" in str(info.value)
    assert "s3cret" not in str(info.value)


@pytest.fixture
def postgres_db():
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"steward_test_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    store._engine.cache_clear()
    admin.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


def test_postgres_records_runs(paths, postgres_db, monkeypatch):
    monkeypatch.setenv("STEWARD_DB_URL", postgres_db)
    store.record_run(paths, _record(), 5, "c" * 64)
    assert store.runs_of(paths, "churn_telco")[0]["ledger_hash"] == "c" * 64
