from __future__ import annotations

from steward.governance import lineage
from tests.support.openlineage_schema import EventValidator


def _record(outcome="failed"):
    return {
        "logical_date": "2026-03-04",
        "run": {"dag_id": "churn_telco", "run_id": "scheduled__2026-03-04T02:00:00+00:00", "try_number": 2},
        "outcome": outcome,
        "recorded_at": "2026-03-04T02:05:00+00:00",
        "data": {"batch": {"sha256": "ab" * 32, "size_bytes": 10},
                 "profile": {"rows": 2, "columns": {"a": "int64"}, "null_counts": {"a": 0}, "distinct_counts": {"a": 2}}},
        "quality": {"checks": [{"expectation": "expect_column_to_exist", "column": "a", "success": True}]},
        "drift": None, "decision": None, "promotion": None, "retraining": None,
        "models": {"registered_model": "steward.churn_telco", "champion_before": 3},
        "task_states": {"land_batch": "success", "validate_batch": "success", "ensure_champion": "failed"},
        "timings": {
            "land_batch": {"started_at": "2026-03-04T02:00:01+00:00", "duration_s": 0.5},
            "validate_batch": {"started_at": "2026-03-04T02:00:02+00:00", "duration_s": 1.5},
            "ensure_champion": {"started_at": "2026-03-04T02:00:04+00:00", "duration_s": 0.2},
        },
    }


def test_failed_stage_emits_fail_with_error_message(churn, paths):
    events = [e for e in map(_as_dict, lineage.build_events(churn, paths, _record()))]
    validator = EventValidator()
    for event in events:
        validator.validate(event)
    fails = [e for e in events if e["eventType"] == "FAIL"]
    assert {e["job"]["name"] for e in fails} == {"churn_telco.ensure_champion", "churn_telco"}
    assert all("errorMessage" in e["run"]["facets"] for e in fails)
    assert len({e["run"]["runId"] for e in events if e["job"]["name"] == "churn_telco.land_batch"}) == 1


def test_run_ids_are_stable_per_attempt(churn, paths):
    a = [_as_dict(e)["run"]["runId"] for e in lineage.build_events(churn, paths, _record())]
    b = [_as_dict(e)["run"]["runId"] for e in lineage.build_events(churn, paths, _record())]
    assert a == b


def test_a_retried_export_emits_its_events_once_and_another_night_still_emits(churn, paths):
    first = lineage.emit(churn, paths, _record())
    assert first > 0 and lineage.emit(churn, paths, _record()) == 0  # the retry finds the run's final event
    later = _record()
    later["run"] = {**later["run"], "run_id": "scheduled__2026-03-05T02:00:00+00:00"}
    later["logical_date"] = "2026-03-05"
    assert lineage.emit(churn, paths, later) == first
    events = lineage.read_events(paths, "churn_telco")
    assert len(events) == 2 * first and len({e["run"]["runId"] for e in events}) == len({
        e["run"]["runId"] for e in map(_as_dict, [*lineage.build_events(churn, paths, _record()),
                                                    *lineage.build_events(churn, paths, later)])})


def test_custom_facet_schema_rejects_a_bad_facet(churn, paths):
    import jsonschema
    import pytest

    validator = EventValidator()
    facet = {"_producer": lineage.PRODUCER, "_schemaURL": lineage.StewardDecisionRunFacet._get_schema(),
             "action": "explode", "decidedBy": "x", "reasons": ["y"]}
    event = _as_dict(lineage.build_events(churn, paths, _record("keep"))[-1])
    event["run"]["facets"]["steward_decision"] = facet
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(event)


def _as_dict(event):
    import json

    from openlineage.client.serde import Serde

    return json.loads(Serde.to_json(event))
