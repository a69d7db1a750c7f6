"""Drift and performance monitoring with Evidently 0.7 (the new `evidently.Report` API).

Evidently's API changed twice in a year, so it is used only here; callers get plain dicts.
Two snapshots per run: data + prediction drift (batch vs reference, all rows) and model
performance (labelled rows of the batch scored by the champion). Each is saved as HTML and JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.config import Engagement

if TYPE_CHECKING:
    import pandas as pd

PREDICTION = "prediction"
PROBA = "prediction_proba"
# Evidently metric name prefix -> steward metric name.
_PERF_METRICS = {
    "Accuracy(": "accuracy",
    "Precision(": "precision",
    "Recall(": "recall",
    "F1Score(": "f1",
    "RocAuc(": "roc_auc",
    "RMSE(": "rmse",
    "MAE(": "mae",
    "R2Score(": "r2",
    "MAPE(": "mape",
}


P_VALUE_TESTS = frozenset({"ks", "chisquare", "z"})
_CATEGORICAL_CAPABLE = frozenset({"psi", "jensenshannon", "chisquare", "kl_div", "hellinger", "z"})


def _categorical_method(stattest: str) -> str:
    """Numeric-only tests (wasserstein, ks) fall back to Jensen-Shannon for categorical features."""
    return stattest if stattest in _CATEGORICAL_CAPABLE else "jensenshannon"


def _value(v: Any) -> float | None:
    if isinstance(v, dict):  # MAE / MAPE report {"mean": .., "std": ..}
        v = v.get("mean")
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _drift_definition(eng: Engagement, with_prediction: bool) -> Any:
    from evidently import DataDefinition

    numeric = list(eng.numeric_features)
    categorical = list(eng.categorical_features)
    if with_prediction:
        (categorical if eng.problem_type == "multiclass_classification" else numeric).append(PREDICTION)
    return DataDefinition(id_column=eng.id_column, numerical_columns=numeric, categorical_columns=categorical)


def detect_drift(
    eng: Engagement,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    out_dir: Path,
) -> dict[str, Any]:
    """Per-feature drift (config stat test and threshold) and prediction drift.

    Both frames must carry the champion's predictions in column `prediction`. One Evidently ValueDrift
    per column: DataDriftPreset computes every column's test three times over (its table, the dataset
    verdict and the per-column metrics), a third of the work gives the same verdicts (ADR 0010); the
    drifted share is counted here from the per-column verdicts.
    """
    from evidently import Dataset, Report
    from evidently.metrics import ValueDrift

    features = list(eng.features)
    policy = eng.drift

    def method(column: str) -> str:
        chosen = policy.per_feature[column].stattest if column in policy.per_feature else policy.stattest
        categorical = column in eng.categorical_features or (
            column == PREDICTION and eng.problem_type == "multiclass_classification")
        return _categorical_method(chosen) if categorical else chosen

    def threshold(column: str) -> float:
        return policy.per_feature[column].threshold if column in policy.per_feature else policy.threshold

    metrics = [ValueDrift(column=c, method=method(c), threshold=threshold(c)) for c in [*features, PREDICTION]]
    definition = _drift_definition(eng, with_prediction=True)
    cols = [eng.id_column, *features, PREDICTION]
    snapshot = Report(metrics).run(
        current_data=Dataset.from_pandas(current[cols], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[cols], data_definition=definition),
    )
    per_feature: dict[str, dict[str, Any]] = {}
    prediction_drift: dict[str, Any] | None = None
    for m in snapshot.dict()["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith(":ValueDrift"):
            column = cfg["column"]
            limit = threshold(column)
            score = _value(m["value"])
            # Evidently's convention: distances drift when >= threshold, p-value tests when < threshold.
            p_value_test = str(cfg.get("method")) in P_VALUE_TESTS
            drifted = bool(score is not None and (score < limit if p_value_test else score >= limit))
            entry = {"stattest": cfg.get("method"), "score": score, "threshold": limit, "drifted": drifted}
            if column == PREDICTION:
                prediction_drift = entry
            else:
                per_feature[column] = entry
    drifted = [c for c, e in per_feature.items() if e["drifted"]]
    share = len(drifted) / len(per_feature) if per_feature else 0.0
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / "drift_report.html", out_dir / "drift_report.json"
    _save(snapshot, html_path, json_path)
    return {
        "engine": "evidently " + _evidently_version(),
        "features": per_feature,
        "drifted_features": drifted,
        "drift_share": round(share, 4),
        "share_threshold": policy.drift_share,
        "dataset_drift": share >= policy.drift_share,
        "prediction_drift": prediction_drift,
        "report_html": str(html_path),
        "report_json": str(json_path),
    }


def measure_performance(eng: Engagement, labelled: pd.DataFrame, out_dir: Path) -> dict[str, Any]:
    """Model performance on the labelled rows (target + champion prediction columns present)."""
    from evidently import (
        BinaryClassification,
        DataDefinition,
        Dataset,
        MulticlassClassification,
        Regression,
        Report,
    )
    from evidently.presets import ClassificationPreset, RegressionPreset

    if eng.problem_type == "regression":
        definition = DataDefinition(id_column=eng.id_column, regression=[Regression(target=eng.target, prediction=PREDICTION)])
        preset = RegressionPreset()
    elif eng.problem_type == "binary_classification":
        definition = DataDefinition(
            id_column=eng.id_column,
            classification=[BinaryClassification(target=eng.target, prediction_labels=PREDICTION, prediction_probas=PROBA)],
        )
        preset = ClassificationPreset()
    else:
        definition = DataDefinition(
            id_column=eng.id_column,
            classification=[MulticlassClassification(target=eng.target, prediction_labels=PREDICTION)],
        )
        preset = ClassificationPreset()
    snapshot = Report([preset]).run(current_data=Dataset.from_pandas(labelled, data_definition=definition))
    values: dict[str, float | None] = {}
    for m in snapshot.dict()["metrics"]:
        for prefix, name in _PERF_METRICS.items():
            if m["metric_name"].startswith(prefix):
                values[name] = _value(m["value"])
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / "performance_report.html", out_dir / "performance_report.json"
    _save(snapshot, html_path, json_path)
    return {"metrics": values, "rows": int(len(labelled)), "report_html": str(html_path), "report_json": str(json_path)}


def _save(snapshot: Any, html_path: Path, json_path: Path) -> None:
    """Evidently writes straight to the path it is given: write beside it and rename, so a full disk or a
    killed worker never leaves a truncated report."""
    from steward.batches import atomic_target

    with atomic_target(html_path) as tmp:
        snapshot.save_html(str(tmp))
    with atomic_target(json_path) as tmp:
        snapshot.save_json(str(tmp))


def _evidently_version() -> str:
    from importlib.metadata import version

    return version("evidently")
