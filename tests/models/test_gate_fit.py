"""ADR 0026: the fit the gate judged is kept beside a version that serves a refit on the whole window, and a
changed file is refused, never trusted (the state volume is untrusted input)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from steward.models import gate_fit, registry, training


def _model(churn, seed: int):
    from steward import demo

    frame = demo._churn_frame(np.random.default_rng(seed), 300, 10_000 * (seed + 1), 0.0, False)
    return training.train(churn, training.labelled(churn, frame)), frame


def test_the_gate_fit_answers_for_its_version_and_a_changed_byte_is_refused(churn, paths):
    judged, frame = _model(churn, 0)
    sha = gate_fit.keep(paths, churn.id, "key-1", judged)
    tags = {gate_fit.SHA_TAG: sha, registry.TRAINING_KEY_TAG: "key-1"}
    loaded = gate_fit.load(paths, churn.id, 3, tags)
    x = training.features_of(churn, frame)
    assert np.array_equal(loaded.predict(x), judged.predict(x))
    # idempotent: a retry keeps the first file, even with another model
    other, _ = _model(churn, 1)
    assert gate_fit.keep(paths, churn.id, "key-1", other) == sha
    # a version without the tag is the model its gate judged
    assert gate_fit.load(paths, churn.id, 3, {registry.TRAINING_KEY_TAG: "key-1"}) is None
    target = gate_fit.path(paths, churn.id, "key-1")
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(gate_fit.GateFitError, match="changed after it was kept"):
        gate_fit.load(paths, churn.id, 3, tags)
    target.unlink()
    with pytest.raises(gate_fit.GateFitError, match="is missing"):
        gate_fit.load(paths, churn.id, 3, tags)


def test_pooled_evidence_scores_the_holdout_nights_with_the_fit_that_never_learnt_them(churn):
    """The shadow's pooled evidence: on the gate's holdout nights the challenger answers with its gate fit.
    A model that learnt those nights by heart would win them; the gate fit must be what is scored there."""
    from steward import demo
    from steward.models import evidence

    rng = np.random.default_rng(5)
    nights = {f"2026-03-0{i}": training.labelled(churn, demo._churn_frame(rng, 200, 50_000 + 1000 * i, 0.0, False))
              for i in range(1, 5)}
    champion, _ = _model(churn, 2)
    judged, _ = _model(churn, 3)
    leaked = training.train(churn, pd.concat([nights["2026-03-01"], nights["2026-03-02"]], ignore_index=True))
    with_leak, _ = evidence.on_nights(churn, leaked, champion, nights)
    honest, _ = evidence.on_nights(churn, leaked, champion, nights,
                                   challenger_on={"2026-03-01": judged, "2026-03-02": judged})
    alone, _ = evidence.on_nights(churn, judged, champion, {d: nights[d] for d in ("2026-03-01", "2026-03-02")})
    assert with_leak["challenger"] > honest["challenger"]  # learnt by heart: the leak inflates the evidence
    assert honest["rows"] == with_leak["rows"] == 800 and honest["nights"] == 4
    # pooling with no other fit is the plain comparison
    plain, _ = evidence.on_nights(churn, judged, champion, {d: nights[d] for d in ("2026-03-01", "2026-03-02")},
                                  challenger_on={})
    assert plain == alone
