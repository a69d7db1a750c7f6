"""`steward.monitoring.stable_categories`: a night's categorical drift scores do not depend on the process's hash seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from steward.monitoring import stable_categories
from tests.conftest import ENGAGEMENTS

# One night's drift in a fresh interpreter: first Evidently's own Jensen-Shannon distance on the raw columns (before
# steward has touched Evidently: the positive control), then steward's detect_drift on the same frames.
NIGHT = """
import json, sys, tempfile
from pathlib import Path
import numpy as np
from evidently.legacy.calculations.stattests.jensenshannon import jensenshannon_stat_test
from evidently.legacy.core import ColumnType
from steward import demo
from steward.config import load_engagement
from steward.monitoring import drift
eng = load_engagement(Path(sys.argv[1]))
ref = demo._churn_frame(np.random.default_rng(1), 2000, 0, 0.0, False)
cur = demo._churn_frame(np.random.default_rng(3), 1000, 20_000, 1.0, False)
for frame in (ref, cur):
    frame["prediction"] = (frame["monthly_charges"] / 200.0).clip(0, 1)
plain = {c: repr(jensenshannon_stat_test(ref[c], cur[c], ColumnType.Categorical, 0.1).drift_score)
         for c in eng.categorical_features}
night = drift.detect_drift(eng, ref, cur, Path(tempfile.mkdtemp()))
print(json.dumps({"plain": plain, "steward": {c: [repr(e["score"]), repr(e["p_value"]), repr(e["p_value_corrected"])]
                                              for c, e in night["features"].items()}}))
"""


def _night_under(seed: str) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run([sys.executable, "-c", NIGHT, str(ENGAGEMENTS / "churn_telco.yaml")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_categorical_drift_scores_are_the_same_under_any_hash_seed(churn):
    one, three = _night_under("1"), _night_under("3")
    # Evidently alone sums over the categories in hash order: these seeds give different last digits
    assert one["plain"]["payment_method"] != three["plain"]["payment_method"]
    assert set(one["steward"]) == set(churn.features)
    assert one["steward"] == three["steward"]  # every score and p-value, to the last digit


@pytest.mark.parametrize("values", [["two-year", "month-to-month", "one-year"], [3, 1, 2], ["b", 1, 2.5, "a", b"x"]])
def test_the_ordered_set_iterates_in_one_order_and_unions_stay_ordered(values):
    ordered = stable_categories.OrderedIterationSet(values)
    expected = sorted(values, key=lambda v: (type(v).__name__, str(v)))
    assert list(ordered) == expected and len(ordered) == len(values)
    union = ordered | {"zz"}
    assert isinstance(union, stable_categories.OrderedIterationSet) and list(union)[-1] == "zz"
    assert isinstance({"zz"} | ordered, stable_categories.OrderedIterationSet)
    assert set(values) == ordered  # still a set: equality and membership as before
