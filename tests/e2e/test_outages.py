"""Outages of what a night writes to. Disk full on the artifact area: a 64 KiB tmpfs mounted over one night's run folder (root
only: skipped, and said so, elsewhere), and the same failure injected into the one writer every report goes
through (everywhere). The night fails at the stage that could not write, leaves no half-written file, keeps the raw
input and the champion, records what happened; once space is back, a rerun completes the night.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import subprocess

import pytest

from steward import demo
from steward.config import load_engagement
from steward.governance import ledger
from steward.models import registry
from steward.settings import StewardPaths
from steward.sources import batches
from tests.conftest import ENGAGEMENTS

NIGHT = dt.date(2026, 3, 2)


def _mount_tmpfs(target, size: str) -> bool:
    """Mount a small tmpfs over `target` (created first). False when not root; a root mount that fails fails."""
    if os.geteuid() != 0:
        return False
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"mount tmpfs on {target}: {result.stderr}"
    return True


@pytest.mark.parametrize("disk", ["tmpfs", "injected_enospc"])
def test_disk_full_fails_the_stage_cleanly_and_a_rerun_completes_the_night(disk, tmp_path, monkeypatch):
    """`tmpfs`: a real 64 KiB filesystem fills up (root only); `injected_enospc`: the one writer every report
    goes through raises ENOSPC (runs everywhere). Each says which it was: one never stands in for the other."""
    from steward.airflow.runner import run_night

    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEWARD_RETRY_DELAY_SECONDS", "0")
    paths = StewardPaths.from_env()
    eng = load_engagement(ENGAGEMENTS / "churn_telco.yaml")
    demo.generate("churn_telco", paths.data_root, nights=2)
    assert run_night("churn_telco", dt.date(2026, 3, 1))["state"].endswith("success")
    incoming = batches.sha256_file(batches.incoming_path(eng, paths, NIGHT))
    run_dir = paths.run_dir("churn_telco", NIGHT.isoformat())
    mounted = disk == "tmpfs" and _mount_tmpfs(run_dir, "64k")
    if disk == "tmpfs" and not mounted:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN); the injected_enospc case covers the behaviour")
    half_written: list = []
    if disk == "injected_enospc":
        real = batches.atomic_target

        @batches.contextlib.contextmanager
        def full(path):
            with real(path) as tmp:
                if run_dir in path.parents and path.suffix == ".html" and "drift" in path.name:
                    # the disk fills mid-write: the temp file exists and holds half a report when it fails
                    tmp.write_bytes(b"<!doctype html><html><body>half a drift rep")
                    half_written.append((tmp, tmp.stat().st_size))
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
                yield tmp

        monkeypatch.setattr(batches, "atomic_target", full)
    try:
        failed = run_night("churn_telco", NIGHT)
        assert failed["state"].endswith("failed")
        record = failed["audit"]
        assert record["task_states"]["detect_drift"] == "failed" and record["outcome"] == "failed"
        leftovers = sorted(p.name for p in run_dir.iterdir())
        if disk == "injected_enospc":  # it did fail mid-write, leaving a half-written temp file to clean up
            assert half_written and half_written[0][1] > 0 and half_written[0][0].parent == run_dir
        assert not [n for n in leftovers if ".tmp" in n], leftovers  # nothing half-written
        assert "drift_report.html" not in leftovers and "quality_report.html" in leftovers
        assert (run_dir / "quality_report.html").read_text().rstrip().endswith("</html>")
        entry = [e for e in ledger.read_entries(paths, "churn_telco") if e["type"] == "run"][-1]
        assert entry["logical_date"] == NIGHT.isoformat() and entry["record"]["outcome"] == "failed"
        assert ledger.verify(paths, "churn_telco").ok
        assert registry.get_alias(registry.client(paths), eng, registry.CHAMPION).version == 1
        assert batches.sha256_file(batches.landed_path(eng, paths, NIGHT)) == incoming
    finally:
        if mounted:
            subprocess.run(["umount", str(run_dir)], check=True)
    monkeypatch.undo()
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    rerun = run_night("churn_telco", NIGHT)  # space is back
    assert rerun["state"].endswith("success") and rerun["audit"]["outcome"] == "keep"
    assert (run_dir / "drift_report.html").stat().st_size > 100_000
    assert ledger.verify(paths, "churn_telco").ok


def test_mlflow_unreachable_fails_the_night_but_records_it(tmp_path, monkeypatch):
    """The model registry is down: the night fails at the champion stage (after Airflow's retries), the
    audit record and ledger still say what happened, nothing is bootstrapped elsewhere; when MLflow is
    back, a rerun completes the night."""
    from steward.airflow.runner import run_night

    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEWARD_RETRY_DELAY_SECONDS", "0")
    paths = StewardPaths.from_env()
    eng = load_engagement(ENGAGEMENTS / "churn_telco.yaml")
    demo.generate("churn_telco", paths.data_root, nights=1)
    day = dt.date(2026, 3, 1)
    with monkeypatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mp.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        down = run_night("churn_telco", day)
    assert down["state"].endswith("failed")
    record = down["audit"]
    assert record["task_states"]["ensure_champion"] == "failed" and record["outcome"] == "failed"
    assert record["quality"]["success"] is True and record["models"]["champion_after"] is None
    assert any("model registry did not answer" in n for n in record["notes"])
    assert [e["logical_date"] for e in ledger.read_entries(paths, "churn_telco") if e["type"] == "run"] == ["2026-03-01"]
    assert registry.get_alias(registry.client(paths), eng, registry.CHAMPION) is None  # no silent local bootstrap
    back = run_night("churn_telco", day)
    assert back["state"].endswith("success") and back["audit"]["models"]["champion_after"] == 1
    assert ledger.verify(paths, "churn_telco").ok
