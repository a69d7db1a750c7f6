"""Model metrics that say when they cannot be computed, instead of returning NaN or raising.

Real nights are small and lopsided: a label day with one class has no ROC AUC, a day without positive
predictions has no precision, a constant target has no R². Each metric here returns either a finite
value or `None` with the reason in words; the reason goes into the audit record, the history tables
and the UI ("not computable: one class only (24 rows, all 0)"), never NaN into an XCom or a JSON file.

Targets are encoded once (`encode_target`): a binary target becomes 1 for the positive class and 0 for
the other (stored as int8, which marks it as encoded), a multiclass target becomes text, a regression
target float. Every model, metric and report downstream sees the encoded target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from steward.config import Engagement

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

ENCODED_BINARY = "int8"


def class_key(value: Any) -> str:
    """A class value as text, the same whether it was read as a bool, an integer, a float or a string."""
    if isinstance(value, bool) or type(value).__name__ in {"bool_", "bool"}:
        return "true" if bool(value) else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item") and not isinstance(value, str):
        return class_key(value.item())
    text = str(value).strip()
    return text.lower() if text.lower() in {"true", "false"} else text


def outside_classes(eng: Engagement, target: pd.Series) -> pd.Series:
    """Rows whose (present) target value is not one of the engagement's classes."""
    import pandas as pd

    classes = eng.classes
    if classes is None or not eng.is_classification or str(target.dtype) == ENCODED_BINARY:
        return pd.Series(False, index=target.index)
    keys = {class_key(c) for c in classes}
    return target.notna() & ~target.map(lambda v: class_key(v) in keys if not _is_null(v) else True)


def _is_null(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value)) if not isinstance(value, list | tuple) else False


def encode_target(eng: Engagement, target: pd.Series) -> pd.Series:
    """The target as models and metrics see it (rows must be present and inside the classes).

    Idempotent: an already encoded binary target (int8) is returned as it is.
    """
    if eng.problem_type == "regression":
        return target.astype("float64")
    if eng.problem_type == "multiclass_classification":
        return target.map(class_key).astype(object)
    if str(target.dtype) == ENCODED_BINARY:
        return target
    positive = class_key(eng.positive)
    return target.map(lambda v: class_key(v) == positive).astype(ENCODED_BINARY)


@dataclass
class Metrics:
    """Computed values and, for the others, why not."""

    values: dict[str, float] = field(default_factory=dict)
    not_computable: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> float | None:
        return self.values.get(name)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": {**dict.fromkeys(self.not_computable), **self.values},
                "not_computable": dict(self.not_computable)}


def names_for(eng: Engagement) -> list[str]:
    """The metrics reported for a problem type (the performance report and the holdout metrics)."""
    if eng.problem_type == "binary_classification":
        return ["accuracy", "precision", "recall", "f1", "roc_auc"]
    if eng.is_classification:
        return ["accuracy", "precision", "recall", "f1"]
    return ["rmse", "mae", "r2", "mape"]


def describe_classes(y_true: Any) -> str:
    import pandas as pd

    counts = pd.Series(y_true).value_counts()
    return ", ".join(f"{k}: {v}" for k, v in counts.items())


def compute(eng: Engagement, metric: str, y_true: Any, y_pred: Any, proba: Any = None) -> tuple[float | None, str | None]:
    """One metric on encoded targets: (value, None) or (None, reason)."""
    import numpy as np
    from sklearn import metrics as m

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = len(y_true)
    if n == 0:
        return None, "no labelled rows"
    value: float
    if eng.is_classification:
        binary = eng.problem_type == "binary_classification"
        present = set(y_true.tolist())
        if metric == "roc_auc":
            if len(present) < 2:
                return None, f"one class only in {n} labelled rows ({describe_classes(y_true)})"
            if proba is None:
                return None, "no scores for ROC AUC"
            value = m.roc_auc_score(y_true.astype(int), np.asarray(proba, dtype=float))
        elif metric == "accuracy":
            value = m.accuracy_score(y_true, y_pred)
        elif binary:
            actual, predicted = int((y_true == 1).sum()), int((y_pred == 1).sum())
            if metric == "recall" and actual == 0:
                return None, f"no positive rows among {n} (recall is undefined)"
            if metric == "precision" and predicted == 0:
                return None, f"no positive predictions among {n} rows (precision is undefined)"
            if metric == "f1" and actual == 0 and predicted == 0:
                return None, f"no positive rows and no positive predictions among {n} (F1 is undefined)"
            fn = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}[metric]
            value = fn(y_true.astype(int), y_pred.astype(int), zero_division=0)
        else:
            fn = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}[metric]
            value = fn(y_true.astype(str), y_pred.astype(str), average="macro", zero_division=0)
    else:
        y_true, y_pred = y_true.astype(float), y_pred.astype(float)
        if metric == "rmse":
            value = m.root_mean_squared_error(y_true, y_pred)
        elif metric == "mae":
            value = m.mean_absolute_error(y_true, y_pred)
        elif metric == "r2":
            if n < 2 or float(np.ptp(y_true)) == 0.0:
                return None, f"the target is constant over {n} labelled row(s) (R² is undefined)"
            value = m.r2_score(y_true, y_pred)
        elif metric == "mape":
            zeros = int((y_true == 0).sum())
            if zeros:
                return None, f"the target is 0 on {zeros} of {n} rows (MAPE is undefined)"
            value = m.mean_absolute_percentage_error(y_true, y_pred)
        else:
            return None, f"{metric} does not apply to regression"
    value = float(value)
    if not math.isfinite(value):
        return None, f"not finite ({value}) on {n} rows"
    return round(value, 6), None


def unmeasurable(eng: Engagement, metric: str, y_true: Any) -> str | None:
    """Why `metric` cannot tell models apart on these (encoded) labels, whatever they predict; None if it can."""
    import numpy as np

    y = np.asarray(y_true)
    n = len(y)
    if n == 0:
        return "no labelled rows"
    if eng.problem_type == "binary_classification":
        if metric == "roc_auc" and len(set(y.tolist())) < 2:
            return f"one class only ({describe_classes(y)})"
        if metric in {"precision", "recall", "f1"} and not (y == 1).any():
            return f"no positive rows ({describe_classes(y)})"
    elif not eng.is_classification:
        if metric == "r2" and (n < 2 or float(np.ptp(y.astype(float))) == 0.0):
            return f"the target is constant over {n} row(s)"
        if metric == "mape" and (y.astype(float) == 0).any():
            return "the target is 0 on some rows"
    return None


def compute_all(eng: Engagement, names: list[str], y_true: Any, y_pred: Any, proba: Any = None) -> Metrics:
    out = Metrics()
    for name in names:
        value, reason = compute(eng, name, y_true, y_pred, proba)
        if value is None:
            out.not_computable[name] = reason or "not computable"
        else:
            out.values[name] = value
    return out


def of_model(eng: Engagement, model: Any, frame: pd.DataFrame, names: list[str]) -> Metrics:
    """Metrics of a fitted pipeline on labelled rows (target encoded)."""
    from steward.models import training

    if frame.empty:
        return compute_all(eng, names, [], [])
    x = training.features_of(eng, frame)
    y_pred = model.predict(x)
    proba = positive_scores(model, x) if eng.problem_type == "binary_classification" else None
    return compute_all(eng, names, encode_target(eng, frame[eng.target]), y_pred, proba)


def positive_scores(model: Any, x: pd.DataFrame) -> np.ndarray | None:
    """P(positive) from a binary classifier trained on the encoded target (None if it saw one class)."""
    import numpy as np

    classes = list(getattr(model, "classes_", []))
    if 1 not in classes:
        return None if len(classes) != 1 else np.zeros(len(x))
    proba = model.predict_proba(x)
    return proba[:, classes.index(1)]


def finite_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
