"""Evidently's JavaScript library is read once per process (report_library.py) and reports still embed it whole."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from steward.monitoring import drift, report_library


def test_the_library_is_read_once_and_is_evidentlys_file(monkeypatch):
    from evidently.legacy.utils import dashboard

    report_library.install()
    loader = getattr(dashboard, "__load_js")
    reads = []

    def counting_open(path, *args, **kwargs):
        if str(path).endswith("index.js"):
            reads.append(path)
        return open(path, *args, **kwargs)

    monkeypatch.setattr(dashboard, "open", counting_open, raising=False)  # the module's `open` is the builtin
    loader.cache_clear()
    first, second = loader(), loader()
    assert len(reads) == 1
    assert first is second
    assert first == Path(dashboard.STATIC_PATH, "index.js").read_text(encoding="utf-8")
    loader.__wrapped__()
    loader.__wrapped__()
    assert len(reads) == 3  # Evidently's own loader reads the file at every call: the positive control


def test_a_saved_report_embeds_the_whole_library(tmp_path):
    from evidently import Dataset, Report
    from evidently.legacy.utils import dashboard
    from evidently.metrics import ValueDrift

    frame = pd.DataFrame({"x": [float(i % 7) for i in range(60)]})
    snapshot = Report([ValueDrift(column="x")]).run(reference_data=Dataset.from_pandas(frame),
                                                     current_data=Dataset.from_pandas(frame + 1))
    drift._save(snapshot, tmp_path / "report.html", tmp_path / "report.json")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    library = Path(dashboard.STATIC_PATH, "index.js").read_text(encoding="utf-8")
    assert f"<script>{library}</script>" in html
    assert html.count(library) == 1
