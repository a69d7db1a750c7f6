"""A failure in `join_labels` or `check_outcomes` never stops tonight's landing, validation and scoring.

Both stages are made to raise (a bug, a store hiccup): the batch still lands, validates and is scored by
the champion, the record says which tasks failed, and the run is marked failed so someone looks.
"""

from __future__ import annotations

import datetime as dt

from steward import demo
from steward.settings import StewardPaths


def test_label_and_outcome_failures_leave_the_night_standing(tmp_path, monkeypatch):
    from steward.airflow.runner import run_night
    from steward.monitoring import outcomes
    from steward.sources import labels

    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    paths = StewardPaths.from_env()
    demo.generate("prepaid_churn", paths.data_root, nights=1)

    def broken(*args, **kwargs):
        raise RuntimeError("label store unavailable (injected)")

    monkeypatch.setattr(labels, "join", broken)
    monkeypatch.setattr(outcomes, "check", broken)
    result = run_night("prepaid_churn", dt.date(2026, 3, 1))
    record = result["audit"]
    assert not result["state"].endswith("success")  # someone must look ...
    assert record["failed_tasks"] == ["check_outcomes", "join_labels"]
    states = record["task_states"]
    # ... but the night's own work was done
    for task in ("land_batch", "validate_batch", "ensure_champion", "score_batch", "detect_drift"):
        assert states[task] == "success", (task, states)
    assert record["predictions"]["rows"] > 0 and record["models"]["champion_after"] == 1
    assert (paths.home / "predictions" / "prepaid_churn" / "2026-03-01.parquet").is_file()
    assert record["outcome"] == "failed" and record["data"]["batch"]["sha256"]
