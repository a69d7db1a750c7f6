"""Delayed labels: joined to the served predictions by id; bad label input is counted, never joined wrongly."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from steward import demo, store
from steward.config import load_engagement
from steward.models import predictions
from steward.sources import batches, labels
from tests.conftest import ENGAGEMENTS

D1, D2, D4 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 4)


@pytest.fixture
def prepaid():
    return load_engagement(ENGAGEMENTS / "prepaid_churn.yaml")


def _serve(eng, paths, day, ids, scores, version=1):
    """Predictions as the score stage writes them (file + table row)."""
    frame = pd.DataFrame({eng.id_column: ids, predictions.PREDICTION: (np.asarray(scores) >= 0.5).astype(int),
                          predictions.SCORE: scores, predictions.VERSION: version})
    path = predictions.predictions_path(eng, paths, day)
    predictions.write_frame(frame, path)
    store.replace_rows(paths, store.predictions, {"engagement": eng.id, "prediction_date": day.isoformat()}, [{
        "engagement": eng.id, "prediction_date": day.isoformat(), "model_version": version, "rows": len(frame),
        "path": str(path), "sha256": batches.sha256_file(path), "estimated_metric": "roc_auc", "estimated_value": 0.8}])


def _label_file(eng, paths, arrival, rows):
    path = labels.label_file(eng, paths, arrival)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=[eng.id_column, eng.target]).to_csv(path, index=False)
    return path


def test_join_counts_unknown_and_duplicates_and_last_label_wins(prepaid, paths, tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"C{i}" for i in range(300)]
    truth = rng.integers(0, 2, 300)
    scores = np.clip(truth * 0.6 + rng.random(300) * 0.4, 0, 1)  # informative scores
    _serve(prepaid, paths, D1, ids, scores)
    rows = [("C0", 1 - truth[0])]  # wrong first ...
    rows += list(zip(ids, truth, strict=True))  # ... then right: the last one wins
    rows += [("NEVER1", 1), ("NEVER2", 0)]  # ids that were never served
    source = _label_file(prepaid, paths, D4, rows)
    before = source.read_bytes()

    result = labels.join(prepaid, paths, D4, tmp_path)

    assert (result["rows"], result["joined"], result["unknown_ids"], result["duplicates"]) == (303, 300, 2, 1)
    assert result["prediction_dates"] == [D1.isoformat()]
    stored = labels.labels_known_by(prepaid, paths, D1.isoformat(), D4)
    assert len(stored) == 300 and "NEVER1" not in set(stored[prepaid.id_column])
    assert int(stored.set_index(prepaid.id_column).loc["C0", prepaid.target]) == truth[0]
    perf = result["performance"][0]
    assert perf["labelled_rows"] == 300 and perf["realised_value"] > 0.9 and perf["model_version"] == 1
    assert perf["estimate_error"] == pytest.approx(0.8 - perf["realised_value"], abs=1e-6)
    assert source.read_bytes() == before  # the client's file is never touched
    arrival = store.select_rows(paths, store.label_arrivals, {"engagement": prepaid.id})
    assert [(a["joined"], a["unknown_ids"], a["duplicates"]) for a in arrival] == [(300, 2, 1)]


def test_labels_for_a_quarantined_batch_are_set_aside(prepaid, paths, tmp_path):
    _serve(prepaid, paths, D1, ["A", "B"], [0.9, 0.1])
    qdir = batches.quarantine_dir(prepaid, paths, D2)
    qdir.mkdir(parents=True)
    pd.DataFrame({prepaid.id_column: ["Q1", "Q2", "Q3"]}).to_csv(qdir / prepaid.batch_filename(D2), index=False)
    _label_file(prepaid, paths, D4, [("A", 1), ("B", 0), ("Q1", 1), ("Q2", 0)])

    result = labels.join(prepaid, paths, D4, tmp_path)

    assert (result["joined"], result["for_quarantined"], result["unknown_ids"]) == (2, 2, 0)
    aside = pd.read_csv(result["aside"])
    assert sorted(aside[prepaid.id_column]) == ["Q1", "Q2"]
    assert set(aside["quarantined_batch"]) == {D2.isoformat()}


def test_a_label_file_without_the_target_is_set_aside_whole(prepaid, paths, tmp_path):
    path = labels.label_file(prepaid, paths, D4)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("customer_id,label\nA,1\n")
    result = labels.join(prepaid, paths, D4, tmp_path)
    assert "missing column(s) ['churned']" in result["rejected"]
    assert open(result["aside"], "rb").read() == path.read_bytes()
    assert result["performance"] == []


def test_no_label_file_tonight_is_not_an_error(prepaid, paths, tmp_path):
    result = labels.join(prepaid, paths, D4, tmp_path)
    assert result == {"configured": True, "file": str(labels.label_file(prepaid, paths, D4)), "arrived": False,
                      "performance": []}


def test_a_rerun_gives_the_same_numbers_after_later_labels_arrived(prepaid, paths, tmp_path):
    """Night N's realised performance uses only labels that had arrived by N: reruns reproduce it."""
    ids = [f"C{i}" for i in range(200)]
    truth = np.tile([0, 1], 100)
    _serve(prepaid, paths, D1, ids, np.where(truth == 1, 0.8, 0.2))
    _label_file(prepaid, paths, D2, list(zip(ids[:100], truth[:100], strict=True)))
    first = labels.join(prepaid, paths, D2, tmp_path)["performance"][0]
    # later, labels for the other half arrive, and some earlier ones are corrected (flipped)
    _label_file(prepaid, paths, D4, list(zip(ids, 1 - truth, strict=True)))
    later = labels.join(prepaid, paths, D4, tmp_path)["performance"][0]
    rerun = labels.join(prepaid, paths, D2, tmp_path)["performance"][0]
    assert first == rerun
    assert first["labelled_rows"] == 100 and later["labelled_rows"] == 200
    assert later["realised_value"] < 0.01 < first["realised_value"]  # corrections won
    history = labels.history(paths, prepaid.id)
    assert [h["labels_through"] for h in history] == [D4.isoformat()]
    assert labels.history(paths, prepaid.id, through=D2)[0]["labelled_rows"] == 100


def test_demo_label_files_are_late_and_carry_the_documented_noise(paths):
    plan = demo.generate("prepaid_churn", paths.data_root, nights=6)
    root = paths.data_root / "prepaid_churn"
    assert sorted(p.name for p in (root / "labels").iterdir()) == ["2026-03-04.csv", "2026-03-05.csv", "2026-03-06.csv"]
    batch = pd.read_csv(root / "incoming" / "2026-03-01.csv")
    assert "churned" not in batch.columns and plan["2026-03-03"] == "corrupt"
    labels_file = pd.read_csv(root / "labels" / "2026-03-04.csv")
    assert len(labels_file) == len(batch) + demo.UNKNOWN_LABEL_IDS + demo.DUPLICATED_LABELS
    assert labels_file["customer_id"].duplicated().sum() == demo.DUPLICATED_LABELS


def test_a_shadow_is_judged_on_the_nights_after_its_gate_with_the_labels_known_that_night(prepaid, paths, tmp_path):
    """ADR 0015: the evidence for a challenger in shadow is every accepted batch after its gate night whose
    labels had arrived by the night of the judgement: never the gate night, never labels from the future."""
    from steward.models import shadow

    demo.generate("prepaid_churn", paths.data_root, nights=6)
    incoming = paths.data_root / "prepaid_churn" / "incoming"
    d1, d2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
    for day in (d1, d2):  # landed and served; their labels arrive three nights later (03-04, 03-05)
        landed = batches.landed_path(prepaid, paths, day)
        landed.parent.mkdir(parents=True, exist_ok=True)
        landed.write_bytes((incoming / f"{day}.csv").read_bytes())
        ids = pd.read_csv(landed)[prepaid.id_column].astype(str).tolist()
        _serve(prepaid, paths, day, ids, np.resize([0.2, 0.8], len(ids)))
    for arrival in (dt.date(2026, 3, 4), dt.date(2026, 3, 5)):
        assert labels.join(prepaid, paths, arrival, tmp_path)["arrived"]

    evidence = shadow.unseen_nights(prepaid, paths, dt.date(2026, 3, 5), since=d1)
    assert list(evidence) == [d2]  # not the gate night 03-01
    rows = len(pd.read_csv(incoming / f"{d2}.csv"))
    assert len(evidence[d2]) == rows and set(evidence[d2][prepaid.target].unique()) == {0, 1}
    assert shadow.unseen_nights(prepaid, paths, dt.date(2026, 3, 4), since=d1) == {}  # 03-02's labels came 03-05
    assert list(shadow.unseen_nights(prepaid, paths, dt.date(2026, 3, 5), since=dt.date(2026, 2, 28))) == [d1, d2]
