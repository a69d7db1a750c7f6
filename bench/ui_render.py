"""Engagements page cost for 100 engagements: read 100 status summaries and render the table.

usage: .venv/bin/python bench/ui_render.py [N]   (default 100); prints the median of 20 renders and
rewrites the UI section of docs/benchmarks.md. The page never recomputes reports: this is all it does.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from docs_section import write_section

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STEWARD_HOME"] = tmp
        from steward.airflow.ui import render_table
        from steward.operations.status import all_rows, status_path
        from steward.settings import StewardPaths
        from steward.sources.batches import atomic_write_json

        paths = StewardPaths.from_env()
        ids = [f"bench_{i:03d}" for i in range(n)]
        history = [{"date": f"2026-01-{d:02d}", "metric": 0.8, "drift_share": 0.1, "outcome": "keep", "champion": 3}
                   for d in range(1, 29)] * 13  # a year of nights
        for eid in ids:
            row = {"engagement": eid, "client": "Client", "use_case": "churn", "owner": "o@x", "last_night": "2026-12-31",
                   "last_run_state": "success", "last_run_at": "2026-12-31T02:05:00", "outcome": "keep",
                   "quality": "pass", "failed_checks": 0, "drift_share": 0.1, "dataset_drift": False,
                   "metric": "roc_auc", "metric_value": 0.8, "metric_threshold": 0.7, "metric_ok": True,
                   "champion_version": 3, "champion_promoted_at": "2026-12-01", "registered_model": f"steward.{eid}",
                   "reports": {"drift": "drift_report.html"}, "open_incidents": 0, "ledger_verified": True,
                   "ledger_problem": None, "ledger_seq": 400, "ledger_head": "0" * 64}
            atomic_write_json(status_path(paths, eid), {"row": row, "history": history})
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            page = render_table(all_rows(paths, ids))
            times.append((time.perf_counter() - t0) * 1000)
    median = statistics.median(times)
    line = (f"| {n} | {median:.1f} ms | {max(times):.1f} ms | {len(page) // 1024} KiB | "
            f"{'met' if median < 1000 else 'MISSED'} |")
    table = ("| engagements | read + render (median of 20) | worst | page size | target < 1 s |\n"
             "|---|---|---|---|---|\n" + line)
    print(table)
    write_section("ui", (f"## Engagements page\n\n`bench/ui_render.py`: each engagement has a status summary with a "
               f"year of nightly history; the page reads the summaries and renders the table (in-process, the "
               f"same function the API server calls).\n\n{table}"))


if __name__ == "__main__":
    main()
