from __future__ import annotations

import datetime as dt

import pytest

from steward import ledger, retention


def _night(paths, eng, day: str) -> list:
    files = []
    for root, name in ((paths.landed, f"{day}.csv"), (paths.quarantine, "reasons.json"), (paths.artifacts, "audit.json")):
        f = root / eng.id / day / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"{day} {name}")
        files.append(f)
    ledger.append(paths, eng.id, "run", logical_date=day, record={"day": day},
                  artifacts=ledger.hash_artifacts(paths, files))
    return files


def test_purge_records_then_deletes_only_expired_nights(churn, paths):
    old = _night(paths, churn, "2024-01-01")
    recent = _night(paths, churn, "2026-03-01")
    result = retention.purge(churn, paths, dt.date(2026, 3, 2))  # retention 730 days
    assert result["purged_files"] == 3 and result["folders"] == 3
    assert not any(f.exists() for f in old) and all(f.exists() for f in recent)
    entry = ledger.read_entries(paths, churn.id)[-1]
    assert entry["type"] == "purge" and len(entry["artifacts"]) == 3
    assert "retention" in entry["detail"]["reason"]
    check = ledger.verify(paths, churn.id)
    assert check.ok, check.problems  # purged artifacts are accounted for by the purge entry
    again = retention.purge(churn, paths, dt.date(2026, 3, 2))
    assert again["purged_files"] == 0 and len(ledger.read_entries(paths, churn.id)) == 3


def test_deleting_without_a_purge_entry_is_detected(churn, paths):
    old = _night(paths, churn, "2024-01-01")
    old[0].unlink()
    result = ledger.verify(paths, churn.id)
    assert not result.ok and "is missing" in result.problems[0]


def test_residency_mismatch_is_refused(churn, monkeypatch):
    monkeypatch.setenv("STEWARD_STORAGE_REGION", "us-east-1")
    with pytest.raises(retention.ResidencyError, match="requires region eu-west-1.*stores data in us-east-1"):
        retention.check_residency(churn)
    monkeypatch.setenv("STEWARD_STORAGE_REGION", "eu-west-1")
    retention.check_residency(churn)
