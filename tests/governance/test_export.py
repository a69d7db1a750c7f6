"""The end of the night without Airflow: `export.export_night` builds the record, writes it, chains it in the
ledger once per Airflow run, and keeps the status row and the store in step (ADR 0006, ADR 0009)."""

from __future__ import annotations

import json

import pytest

from steward import store
from steward.config import config_hash
from steward.governance import audit, export, ledger
from steward.models import registry
from steward.operations import status
from tests.conftest import ENGAGEMENTS

DAY = "2026-03-04"
CONFIG = ENGAGEMENTS / "churn_telco.yaml"


def _export(churn, paths, run_id: str, calls: list[str] | None = None) -> dict:
    def gather():
        if calls is not None:
            calls.append(run_id)
        return {}, {"land_batch": "skipped"}  # a night whose batch never came

    run = {"dag_id": churn.id, "run_id": run_id, "try_number": 1, "logical_date": f"{DAY}T00:00:00+00:00"}
    return export.export_night(churn, paths, day=DAY, run=run, config_path=CONFIG, config_hash=config_hash(CONFIG),
                               gather=gather)


@pytest.fixture
def no_registry(monkeypatch):
    """The records of nights that never loaded a model ask the registry for the champion: none yet here."""
    monkeypatch.setattr(export, "current_champion", lambda eng, paths: None)


def test_a_night_is_recorded_once_chained_and_indexed(churn, paths, no_registry):
    done = _export(churn, paths, "scheduled__2026-03-04")
    record = json.loads(done["path"].read_text())
    assert record["outcome"] == "missing" and record == done["record"] and not done["already_recorded"]
    entries = ledger.read_entries(paths, churn.id)
    # the first night of a configuration also cites its monitoring plan (issue 35)
    assert [e["type"] for e in entries] == ["config", "plan", "run"]
    assert entries[2]["record"]["run"]["run_id"] == "scheduled__2026-03-04"
    assert entries[2]["artifacts"] == {ledger.artifact_key(paths, done["path"]): ledger.sha256_file(done["path"])}
    assert ledger.verify(paths, churn.id).ok
    assert status.read(paths, churn.id)["row"]["ledger_seq"] == done["entry"]["seq"]
    assert [r["ledger_seq"] for r in store.select_rows(paths, store.runs, {"engagement": churn.id})] == [done["entry"]["seq"]]
    assert done["lineage_events"] > 0


def test_a_retry_restores_the_record_from_the_ledger_and_appends_nothing(churn, paths, no_registry):
    first = _export(churn, paths, "scheduled__2026-03-04")
    original = first["path"].read_bytes()
    first["path"].write_text("{}")  # the worker died mid-way: a later attempt finds a damaged audit.json
    calls: list[str] = []
    retry = _export(churn, paths, "scheduled__2026-03-04", calls)
    assert retry["already_recorded"] and calls == []  # the stage results were not even read again
    assert retry["path"].read_bytes() == original and retry["entry"] == first["entry"]
    assert len(ledger.read_entries(paths, churn.id)) == 3  # config, plan, run
    rerun = _export(churn, paths, "manual__2026-03-05T10:00:00")  # a new run of the night is a new entry
    assert not rerun["already_recorded"] and rerun["entry"]["seq"] == first["entry"]["seq"] + 1
    assert ledger.verify(paths, churn.id).ok


def test_a_registry_that_does_not_answer_is_written_into_the_record(churn, paths, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("tracking server refused the connection\nsecond line")

    monkeypatch.setattr(registry, "get_alias", down)
    record = _export(churn, paths, "scheduled__2026-03-04")["record"]
    assert record["models"]["champion_before"] is None
    assert any(n == "champion unknown: the model registry did not answer (ConnectionError: tracking server refused "
               "the connection)" for n in record["notes"]), record["notes"]
    assert audit.content_digest(record) == ledger.read_entries(paths, churn.id)[-1]["detail"]["content_sha256"]
