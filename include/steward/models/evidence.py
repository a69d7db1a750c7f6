"""How sure the labelled rows are that a challenger beats the champion: a paired test suited to the metric,
pooled over whole nights, with the minimum detectable effect of the rows at hand (ADR 0024).

Both models are scored on the same labelled rows. Every metric the gate uses is written as a function of
per-row quantities, and its first-order influence on each row is computed in closed form:

- ROC AUC: DeLong's structural components (each positive's share of negatives ranked below it, each
  negative's share of positives ranked above it); the paired variance of the difference is DeLong's test.
- accuracy, precision, recall, F1, MAE, MAPE, MSE (RMSE by the delta method): ratios of sums Σa/Σb, whose
  influence is (a - R·b) / Σb; R² differences are MSE differences over the rows' total sum of squares.

The variance of the difference is the larger of the row-level one and the one clustered by night (rows of
one night share its weather, its campaign, its outage): a gain that only one night carries does not count
as many independent rows. Everything is computed from the rows; no resampling, so a rerun gives the same
numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from steward.config import Engagement, improvement, lower_is_better

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

POWER = 0.8  # the minimum detectable effect is the gain found with this probability at the rows at hand
DEFAULT_TARGET_SHARE = 0.02  # error metrics: the gain worth finding, as a share of the champion's error
DEFAULT_TARGET_GAIN = 0.02  # bounded metrics (AUC, accuracy, F1, R² ...): the gain worth finding


@dataclass(frozen=True)
class Evidence:
    """Both models on the same labelled rows; `gain` > 0 means the challenger is better."""

    metric: str
    rows: int
    nights: int
    challenger: float
    champion: float
    gain: float
    se: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Bounds:
    """The one-sided test of `gain > required` at level `alpha`, and what the rows could detect."""

    alpha: float
    z: float
    lower: float
    upper: float
    p_value: float
    mde: float  # the smallest true gain above `required` found with probability POWER on these rows

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) for k, v in asdict(self).items()}


def bounds(ev: Evidence, required: float, alpha: float) -> Bounds:
    """Confidence bounds of the gain at one-sided level `alpha`; p-value of H0: gain <= required."""
    normal = NormalDist()
    z = normal.inv_cdf(1 - alpha)
    se = max(ev.se, 1e-12)
    p = 1 - normal.cdf((ev.gain - required) / se)
    return Bounds(alpha=alpha, z=z, lower=ev.gain - z * se, upper=ev.gain + z * se, p_value=p,
                  mde=(z + normal.inv_cdf(POWER)) * ev.se)


def target_gain(eng: Engagement, champion_value: float) -> float:
    """The gain worth finding: `promotion.detectable_gain`, else 0.02 (bounded metrics) or 2% of the
    champion's error (error metrics, whose scale is the target's)."""
    if eng.promotion.detectable_gain is not None:
        return eng.promotion.detectable_gain
    if lower_is_better(eng.promotion.metric):
        return max(abs(champion_value) * DEFAULT_TARGET_SHARE, 1e-9)
    return DEFAULT_TARGET_GAIN


def outputs(eng: Engagement, model: Any, x: pd.DataFrame) -> tuple[Any, Any]:
    """A fitted pipeline's (predictions, P(positive) for binary classification else None) on features `x`."""
    import numpy as np

    from steward.models import metrics

    proba = metrics.positive_scores(model, x) if eng.problem_type == "binary_classification" else None
    return np.asarray(model.predict(x)), proba


def paired(eng: Engagement, metric: str, y: np.ndarray, challenger: tuple[Any, Any], champion: tuple[Any, Any],
           nights: np.ndarray) -> tuple[Evidence | None, str | None]:
    """The paired comparison from both models' (predictions, P(positive)) on encoded labels `y`."""
    import numpy as np

    values, influence = [], []
    for pred, proba in (challenger, champion):
        got = _influence(eng, metric, y, np.asarray(pred), None if proba is None else np.asarray(proba, dtype=float))
        if isinstance(got, str):
            return None, got
        values.append(got[0])
        influence.append(got[1])
    gain = improvement(metric, values[0], values[1])
    diff = improvement(metric, influence[0], influence[1])
    n = len(diff)
    row_var = float((diff ** 2).sum()) * n / max(n - 1, 1)
    groups = np.unique(nights)
    method = {"roc_auc": "DeLong paired test"}.get(metric, "paired influence-function test")
    variance = row_var
    if len(groups) >= 2:
        sums = np.array([diff[nights == g].sum() for g in groups])
        clustered = float((sums ** 2).sum()) * len(groups) / (len(groups) - 1)
        if clustered > row_var:
            variance = clustered
            method += ", variance clustered by night"
    return Evidence(metric=metric, rows=int(n), nights=int(len(groups)), challenger=float(values[0]),
                    champion=float(values[1]), gain=float(gain), se=math.sqrt(max(variance, 0.0)),
                    method=method), None


def _influence(eng: Engagement, metric: str, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None
               ) -> tuple[float, np.ndarray] | str:
    """(metric value, per-row influence on it), or why it cannot be computed."""
    import numpy as np

    n = len(y)
    if metric == "roc_auc":
        if proba is None:
            return "no scores for ROC AUC"
        return _auc_influence(y.astype(int), proba)
    if eng.is_classification:
        binary = eng.problem_type == "binary_classification"
        if metric == "accuracy":
            return _ratio(pred.astype(str) == y.astype(str), np.ones(n))
        if not binary:
            return f"{metric} (macro average) has no paired test here: use accuracy or a binary target"
        truth, said = y.astype(int) == 1, pred.astype(int) == 1
        tp = truth & said
        if metric == "recall":
            return _ratio(tp, truth) if truth.any() else "no positive rows (recall is undefined)"
        if metric == "precision":
            return _ratio(tp, said) if said.any() else "no positive predictions (precision is undefined)"
        if metric == "f1":
            return _ratio(2.0 * tp, truth.astype(float) + said) if (truth | said).any() else "F1 is undefined"
        return f"{metric} does not apply to classification"
    truth_f, pred_f = y.astype(float), pred.astype(float)
    error = pred_f - truth_f
    if metric == "mae":
        return _ratio(np.abs(error), np.ones(n))
    if metric == "mape":
        if (truth_f == 0).any():
            return "the target is 0 on some rows (MAPE is undefined)"
        return _ratio(np.abs(error) / np.abs(truth_f), np.ones(n))
    mse, psi = _ratio(error ** 2, np.ones(n))
    if metric == "rmse":
        rmse = math.sqrt(mse)
        return rmse, psi / (2 * rmse) if rmse > 0 else psi
    if metric == "r2":
        total = float(((truth_f - truth_f.mean()) ** 2).sum())
        if total == 0:
            return "the target is constant (R² is undefined)"
        # R² = 1 - n·MSE / SST: on the same rows, a difference of R² is a difference of MSE scaled by n / SST
        return 1 - n * mse / total, -psi * n / total
    return f"{metric} does not apply to regression"


def _ratio(a: Any, b: Any) -> tuple[float, np.ndarray]:
    """R = Σa/Σb and the influence of each row on it, (a - R·b) / Σb."""
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    total = float(b.sum())
    value = float(a.sum()) / total
    return value, (a - value * b) / total


def _auc_influence(y: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray] | str:
    """ROC AUC with DeLong's structural components as each row's influence (midranks: ties count half)."""
    import numpy as np
    from scipy.stats import rankdata

    positive = y == 1
    m, k = int(positive.sum()), int((~positive).sum())
    if m == 0 or k == 0:
        return "one class only"
    ranks = rankdata(scores)
    within_pos = rankdata(scores[positive])
    within_neg = rankdata(scores[~positive])
    v10 = (ranks[positive] - within_pos) / k  # share of negatives each positive outranks
    v01 = 1 - (ranks[~positive] - within_neg) / m  # share of positives that outrank each negative
    auc = float(v10.mean())
    psi = np.empty(len(y))
    # DeLong: Var = S10/m + S01/k with sample variances; as per-row terms, each class on its own n-1 scale
    psi[positive] = (v10 - auc) / m * math.sqrt(m / max(m - 1, 1))
    psi[~positive] = (v01 - auc) / k * math.sqrt(k / max(k - 1, 1))
    n = len(y)
    return auc, psi * math.sqrt((n - 1) / n)  # `paired` scales the sum of squares by n / (n - 1)


def judged(eng: Engagement, ev: Evidence, alpha: float | None = None) -> dict[str, Any]:
    """The evidence as the record keeps it: with its bounds at this engagement's level per look (or `alpha`),
    the gain worth finding and the number of looks the level is split over (steward.policy.judge_evidence
    reads it)."""
    from steward import policy

    alpha = policy.alpha_per_look(eng) if alpha is None else alpha
    return {**ev.to_dict(), "bounds": bounds(ev, eng.promotion.min_improvement, alpha).to_dict(),
            "target": round(target_gain(eng, ev.champion), 6), "looks": policy.looks(eng)}


def on_nights(eng: Engagement, challenger: Any, champion: Any, frames: dict[Any, pd.DataFrame],
              challenger_on: dict[Any, Any] | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """`judged` evidence on labelled nights pooled (`frames`: night -> labelled rows), clustered by night.
    `challenger_on` names another fit of the challenger for some nights: on the gate's holdout nights, the
    fit the gate judged, which never learnt them (ADR 0026)."""
    import numpy as np
    import pandas as pd

    from steward.models import metrics, training

    frames = {d: f for d, f in frames.items() if len(f)}
    if not frames:
        return None, "no labelled rows"
    others = challenger_on or {}
    rows = pd.concat(list(frames.values()), ignore_index=True)
    y = np.asarray(metrics.encode_target(eng, rows[eng.target]))
    reason = metrics.unmeasurable(eng, eng.promotion.metric, y)
    if reason is not None:
        return None, reason
    parts = [(outputs(eng, others.get(d, challenger), training.features_of(eng, f)),
              outputs(eng, champion, training.features_of(eng, f))) for d, f in frames.items()]

    def joined(k: int, j: int) -> Any:
        got = [p[k][j] for p in parts]
        return None if got[0] is None else np.concatenate(got)

    nights = np.asarray([str(d) for d, f in frames.items() for _ in range(len(f))])
    ev, why = paired(eng, eng.promotion.metric, y, (joined(0, 0), joined(0, 1)), (joined(1, 0), joined(1, 1)),
                     nights)
    return (None, why) if ev is None else (judged(eng, ev), None)
