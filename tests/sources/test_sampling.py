"""Drift on a seeded sample: same rows on every rerun, same verdicts as every row away from the threshold,
and the reference profile built once per reference file and champion version (ADR 0010)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from steward import demo
from steward.config import load_engagement
from steward.models import training
from steward.monitoring import drift, reference
from steward.sources import batches, sampling
from tests.conftest import ENGAGEMENTS


def test_uniform_sample_is_seeded_ordered_and_complete_below_the_size():
    frame = pd.DataFrame({"i": np.arange(10_000)})
    a, b = sampling.uniform(frame, 500, seed=7), sampling.uniform(frame, 500, seed=7)
    assert len(a) == 500 and a["i"].is_unique and a["i"].is_monotonic_increasing
    assert a.equals(b)
    assert not a.equals(sampling.uniform(frame, 500, seed=8))
    assert sampling.uniform(frame, 20_000, seed=7) is frame and sampling.uniform(frame, None, seed=7) is frame
    assert sampling.seed_for("eng", "2026-03-01") == sampling.seed_for("eng", "2026-03-01") != sampling.seed_for("eng", "2026-03-02")


@pytest.fixture(scope="module")
def large():
    """120,000 churn rows per side; the batch has a far shift on two features and none on the rest."""
    eng = load_engagement(ENGAGEMENTS / "churn_telco.yaml")
    rng = np.random.default_rng
    reference = demo._churn_frame(rng(11), 120_000, 0, 0.0, False)
    batch = demo._churn_frame(rng(12), 120_000, 500_000, 0.0, False)
    batch["monthly_charges"] = batch["monthly_charges"] * 1.6
    batch["contract"] = np.where(rng(13).random(len(batch)) < 0.5, "two-year", batch["contract"])
    model = training.train(eng, reference.head(5_000))
    return eng, training.predict(eng, model, reference), training.predict(eng, model, batch), model


def test_sampled_drift_verdicts_match_every_row(large, tmp_path):
    eng, reference, batch, _ = large
    full = drift.detect_drift(eng, reference, batch, tmp_path / "full")
    assert set(full["drifted_features"]) == {"monthly_charges", "contract"}
    for seed in (1, 2, 3):
        sampled = drift.detect_drift(eng, sampling.uniform(reference, 20_000, seed),
                                     sampling.uniform(batch, 20_000, seed + 100), tmp_path / str(seed))
        assert sampled["drifted_features"] == full["drifted_features"]
        for feature, entry in full["features"].items():
            assert abs(sampled["features"][feature]["score"] - entry["score"]) < 0.03, feature


def test_reference_profile_is_built_once_and_rebuilt_when_tampered(large, paths):
    eng, _, _, model = large
    eng = eng.model_copy(update={"drift": eng.drift.model_copy(update={"sample_rows": 1_000})})
    demo.generate("churn_telco", paths.data_root, nights=1)
    digest = batches.sha256_file(batches.reference_path(eng, paths))
    ref = reference.Reference(reference.REFERENCE_FILE, str(batches.reference_path(eng, paths)), digest, None, 1)

    frame, meta = reference.profile(eng, paths, ref, model, champion_version=1)
    assert len(frame) == meta["sampled_rows"] == 1_000 < meta["rows"] and meta["sampled"]
    assert "prediction" in frame.columns
    stored = paths.artifacts / "churn_telco" / "reference_profiles" / f"{digest[:16]}-v1-1000.parquet"
    written = stored.stat().st_mtime_ns
    again, _ = reference.profile(eng, paths, ref, model, champion_version=1)
    assert again.equals(frame) and stored.stat().st_mtime_ns == written  # read back, not recomputed

    stored.write_bytes(stored.read_bytes()[:-100])  # a damaged profile is never trusted
    rebuilt, _ = reference.profile(eng, paths, ref, model, champion_version=1)
    assert rebuilt.equals(frame)
    other, meta2 = reference.profile(eng, paths, ref, model, champion_version=2)
    assert meta2["path"] != meta["path"]
