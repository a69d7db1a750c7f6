"""Per-group metrics for sensitive attributes with fairlearn's MetricFrame, and the gap between groups.

Computed every night on the champion's labelled predictions and on each candidate's holdout before
promotion; the gate refuses a candidate whose gap exceeds `governance.fairness.max_gap`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from steward.config import Engagement

if TYPE_CHECKING:
    import pandas as pd


def _metrics(eng: Engagement) -> dict[str, Any]:
    from fairlearn.metrics import selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, mean_absolute_error

    if eng.problem_type == "binary_classification":
        return {"selection_rate": selection_rate, "true_positive_rate": true_positive_rate, "accuracy": accuracy_score}
    if eng.is_classification:
        return {"accuracy": accuracy_score}
    return {"mean_absolute_error": mean_absolute_error}


def group_metrics(eng: Engagement, scored: pd.DataFrame) -> dict[str, Any] | None:
    """{attribute: {"by_group": {group: {metric: value}}, "gap": {metric: max difference}, "count": {...}}}.

    `scored` carries the target and a `prediction` column. None when no sensitive attribute is declared.
    """
    if not eng.governance.sensitive_attributes or scored.empty:
        return None
    from fairlearn.metrics import MetricFrame

    from steward.models.metrics import encode_target
    from steward.monitoring.drift import PREDICTION

    out: dict[str, Any] = {}
    y_true = encode_target(eng, scored[eng.target])
    y_pred = scored[PREDICTION]
    if eng.problem_type == "binary_classification":
        y_true, y_pred = y_true.astype(int), y_pred.astype(int)
    for attribute in eng.governance.sensitive_attributes:
        frame = MetricFrame(metrics=_metrics(eng), y_true=y_true, y_pred=y_pred,
                            sensitive_features=scored[attribute].astype(str))
        by_group = frame.by_group
        out[attribute] = {
            # A group without positives has no true positive rate: null (not NaN), and no gap from it.
            "by_group": {str(g): {m: _rounded(v) for m, v in row.items()} for g, row in by_group.iterrows()},
            "count": {str(g): int(n) for g, n in scored[attribute].astype(str).value_counts().items()},
            "gap": {m: _rounded(v) for m, v in frame.difference(method="between_groups").items()},
        }
    return out


def _rounded(value: Any) -> float | None:
    from steward.models.metrics import finite_or_none

    number = finite_or_none(value)
    return None if number is None else round(number, 6)


def worst_gap(eng: Engagement, result: dict[str, Any] | None) -> tuple[str, float] | None:
    """(attribute, gap) of the configured fairness metric with the largest gap, if a policy is set."""
    policy = eng.governance.fairness
    if policy is None or not result:
        return None
    attribute, gaps = max(result.items(), key=lambda kv: kv[1]["gap"].get(policy.metric) or 0.0)
    return attribute, gaps["gap"].get(policy.metric) or 0.0
