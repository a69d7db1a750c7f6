from __future__ import annotations

import datetime as dt

import pytest

from steward.governance import ledger, retention


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


def _config(paths, eng, retention_days: int) -> None:
    text = f"id: {eng.id}\ngovernance:\n  retention_days: {retention_days}\n"
    ledger.append(paths, eng.id, "config", detail={"path": f"{eng.id}.yaml", "sha256": "c" * 64, "text": text})


def test_a_purge_is_checked_against_the_retention_policy_it_claims(churn, paths):
    """Issue 32: a purge entry appended by someone who can write the ledger cannot delete recent evidence under
    cover of retention: its night must be past the cutoff, and the retention it claims the one in force."""
    _config(paths, churn, 730)
    _night(paths, churn, "2024-01-01")
    recent = _night(paths, churn, "2026-03-01")
    retention.purge(churn, paths, dt.date(2026, 3, 2))
    assert ledger.verify(paths, churn.id).ok  # the real purge: past 730 days
    # a forged purge of a recent night, claiming the same policy
    keys = ledger.hash_artifacts(paths, recent)
    ledger.append(paths, churn.id, "purge", logical_date="2026-03-02", artifacts=keys,
                  detail={"reason": "retention: older than 730 days before 2026-03-02", "folders": []})
    for f in recent:
        f.unlink()
    forged = ledger.verify(paths, churn.id)
    assert not forged.ok and "not older than 730 days before 2026-03-02" in forged.problems[0]


def test_a_purge_claiming_a_shorter_retention_than_configured_is_caught(churn, paths):
    _config(paths, churn, 5)  # positive control: under a 5-day policy the purge of a 10-day-old night is right
    first = _night(paths, churn, "2026-02-20")
    ledger.append(paths, churn.id, "purge", logical_date="2026-03-02", artifacts=ledger.hash_artifacts(paths, first),
                  detail={"reason": "retention: older than 5 days before 2026-03-02", "folders": []})
    assert ledger.verify(paths, churn.id, check_artifacts=False).ok
    _config(paths, churn, 730)  # the policy changed: the same claim is now too short
    second = _night(paths, churn, "2026-02-21")
    ledger.append(paths, churn.id, "purge", logical_date="2026-03-03", artifacts=ledger.hash_artifacts(paths, second),
                  detail={"reason": "retention: older than 5 days before 2026-03-03", "folders": []})
    result = ledger.verify(paths, churn.id, check_artifacts=False)
    assert not result.ok and "claims retention of 5 days; the configuration in force keeps 730" in result.problems[0]
