"""Estimated performance while labels are pending: confidence-based performance estimation (CBPE).

The approach NannyML calls CBPE: once a binary classifier's scores are calibrated, each score *is* the
probability that the row is positive, so the confusion matrix the labels will produce can be estimated
before they arrive (expected TP = sum of calibrated scores over rows predicted positive, and so on),
and from it accuracy, precision, recall, F1 and ROC AUC.

What it cannot see: a change in how features relate to the target (concept shift). The model's
confidence is unchanged, so the estimate stays put while the realised metric falls. That is why an
estimate may raise an early warning but never retrains, promotes or rolls back (ADR 0008); its error
against the realised metric is stored per prediction date once labels land.

Calibration: isotonic regression of the champion's scores on the reference holdout rows (labelled data
that no version is trained on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

ESTIMABLE = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})


def calibrator(scores: np.ndarray, labels: np.ndarray):  # -> IsotonicRegression
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, labels)


def estimate(metric: str, calibrated: np.ndarray, predicted: np.ndarray) -> float | None:
    """Expected value of `metric` given calibrated positive-class probabilities and predicted labels."""
    import numpy as np

    p = np.asarray(calibrated, dtype=float)
    pred = np.asarray(predicted).astype(int)
    if metric not in ESTIMABLE or len(p) == 0:
        return None
    if metric == "roc_auc":
        return _expected_roc_auc(p)
    tp = float(p[pred == 1].sum())
    fp = float((1 - p[pred == 1]).sum())
    fn = float(p[pred == 0].sum())
    tn = float((1 - p[pred == 0]).sum())
    if metric == "accuracy":
        return (tp + tn) / len(p)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    if metric == "precision":
        return precision
    if metric == "recall":
        return recall
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _expected_roc_auc(p: np.ndarray) -> float | None:
    """Area under the expected ROC curve: rank by score; each row adds p to the expected positives
    and 1-p to the expected negatives above every threshold below it."""
    import numpy as np

    order = np.argsort(-p, kind="stable")
    ps = p[order]
    positives, negatives = ps.sum(), (1 - ps).sum()
    if positives <= 0 or negatives <= 0:
        return None
    tpr = np.concatenate([[0.0], np.cumsum(ps) / positives])
    fpr = np.concatenate([[0.0], np.cumsum(1 - ps) / negatives])
    return float(np.trapezoid(tpr, fpr))
