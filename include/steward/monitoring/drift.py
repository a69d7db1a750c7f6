"""Drift and performance monitoring with Evidently 0.7 (the new `evidently.Report` API).

Evidently's API changed twice in a year, so it is used only here; callers get plain dicts.
Two snapshots per run: data + prediction drift (batch vs reference, all rows) and model
performance (labelled rows of the batch scored by the champion). Each is saved as HTML and JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.config import Engagement
from steward.models.metrics import finite_or_none
from steward.monitoring import report_figures, report_library, stable_categories

if TYPE_CHECKING:
    import pandas as pd

PREDICTION = "prediction"
PROBA = "prediction_proba"

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


def _drift_definition(eng: Engagement, with_prediction: bool, only: set[str] | None = None) -> Any:
    from evidently import DataDefinition

    numeric = list(eng.numeric_features)
    categorical = list(eng.categorical_features)
    if with_prediction:
        (categorical if eng.problem_type == "multiclass_classification" else numeric).append(PREDICTION)
    if only is not None:
        numeric, categorical = [c for c in numeric if c in only], [c for c in categorical if c in only]
    return DataDefinition(id_column=eng.id_column, numerical_columns=numeric, categorical_columns=categorical)


def detect_drift(
    eng: Engagement,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    out_dir: Path,
) -> dict[str, Any]:
    """Per-feature drift and prediction drift: an effect size AND a significance test (ADR 0012).

    Both frames must carry the champion's predictions in column `prediction`. Per column, two Evidently
    tests: a distance as a ValueDrift metric in the report (the effect size: the configured stattest, or
    Wasserstein / Jensen-Shannon when the stattest is a p-value test) and a p-value test (`_p_value`: KS
    numeric, chi-square categorical, or the configured p-value stattest). The features' p-values are
    corrected for multiple testing (Benjamini-Hochberg by default); a feature drifts when its corrected
    p-value is under the level and its effect reaches the minimum. Small samples thus do not drift on noise,
    huge ones not on trivia.
    """
    from evidently import Dataset, Report
    from evidently.metrics import ValueDrift

    report_figures.install()
    stable_categories.install()
    features = list(eng.features)
    policy = eng.drift
    tests = {c: _tests_for(eng, c) for c in [*features, PREDICTION]}
    not_computable = {c: why for c in [*features, PREDICTION] if (why := _undriftable(reference, current, c))}
    measured = [c for c in [*features, PREDICTION] if c not in not_computable]
    definition = _drift_definition(eng, with_prediction=True, only=set(measured))
    cols = [eng.id_column, *measured]
    current_set = Dataset.from_pandas(_drift_frame(current[cols]), data_definition=definition)
    reference_set = Dataset.from_pandas(_drift_frame(reference[cols]), data_definition=definition)
    # The report (and its HTML) holds the effect sizes; the p-values come from the same Evidently tests on the
    # same columns, without a second ValueDrift per column whose widget would draw the same distributions
    # again (drawing was a fifth of a night's drift task).
    metrics = [ValueDrift(column=c, method=tests[c]["effect_method"], threshold=tests[c]["min_effect"]) for c in measured]
    snapshot = Report(metrics).run(current_data=current_set, reference_data=reference_set)
    effects: dict[str, float | None] = {}  # one ValueDrift per column: the effect size
    for m in snapshot.dict()["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith(":ValueDrift"):
            effects[cfg["column"]] = finite_or_none(_value(m["value"]))
    raw_p = {c: _p_value(reference_set, current_set, c, tests[c]["test"], tests[c]["level"]) for c in measured}
    adjusted = correct([raw_p[c] for c in measured if c != PREDICTION and raw_p[c] is not None], policy.correction)
    adjusted_p = dict(zip([c for c in measured if c != PREDICTION and raw_p[c] is not None], adjusted, strict=True))
    adjusted_p[PREDICTION] = raw_p.get(PREDICTION)  # one prediction column: nothing to correct for
    entries: dict[str, dict[str, Any]] = {}
    for column in [*features, PREDICTION]:
        t = tests[column]
        entry: dict[str, Any] = {"stattest": t["effect_method"], "score": None, "threshold": t["min_effect"],
                                 "p_value_test": t["test"], "p_value": None, "p_value_corrected": None,
                                 "significance": t["level"], "drifted": False}
        if column in not_computable:
            entry["not_computable"] = not_computable[column]
        else:
            effect, p, q = effects.get(column), raw_p[column], adjusted_p.get(column)
            entry.update(score=effect, p_value=p, p_value_corrected=q)
            if effect is None or q is None:
                entry["not_computable"] = f"{t['effect_method'] if effect is None else t['test']} gave no finite value"
            else:
                entry["drifted"] = bool(q < t["level"] and effect >= t["min_effect"])
        entries[column] = entry
    per_feature = {c: entries[c] for c in features}
    judged = [c for c, e in per_feature.items() if "not_computable" not in e]
    drifted = [c for c in judged if per_feature[c]["drifted"]]
    share = len(drifted) / len(judged) if judged else 0.0
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / "drift_report.html", out_dir / "drift_report.json"
    _save(snapshot, html_path, json_path)
    return {
        "engine": "evidently " + _evidently_version(),
        "state": "judged",
        "features": per_feature,
        "drifted_features": drifted,
        "drift_share": round(share, 4),
        "share_threshold": policy.drift_share,
        "dataset_drift": bool(judged) and share >= policy.drift_share,
        "correction": policy.correction,
        "features_not_computable": {c: e["not_computable"] for c, e in per_feature.items() if "not_computable" in e},
        "prediction_drift": entries[PREDICTION],
        "report_html": str(html_path),
        "report_json": str(json_path),
    }


def _p_value(reference: Any, current: Any, column: str, test: str, level: float) -> float | None:
    """The p-value of Evidently's `test` on one column, computed as its ValueDrift metric computes it: on the
    datasets' own frames, infinities and missing values dropped."""
    import numpy as np
    from evidently.legacy.calculations.stattests import get_stattest

    column_type = current.column(column).type
    ref, cur = (d.as_dataframe()[column].replace([-np.inf, np.inf], np.nan).dropna() for d in (reference, current))
    stattest = get_stattest(ref, cur, column_type, test)
    return finite_or_none(_value(stattest(ref, cur, column_type, level).drift_score))


def _tests_for(eng: Engagement, column: str) -> dict[str, Any]:
    """The effect-size distance and the p-value test of a column, with their thresholds."""
    policy = eng.drift
    chosen = policy.per_feature[column].stattest if column in policy.per_feature else policy.stattest
    limit = policy.per_feature[column].threshold if column in policy.per_feature else policy.threshold
    categorical = column in eng.categorical_features or (
        column == PREDICTION and eng.problem_type == "multiclass_classification")
    method = _categorical_method(chosen) if categorical else chosen
    if method in P_VALUE_TESTS:
        return {"test": method, "level": limit, "effect_method": "jensenshannon" if categorical else "wasserstein",
                "min_effect": policy.min_effect}
    return {"test": "chisquare" if categorical else "ks", "level": policy.significance, "effect_method": method,
            "min_effect": limit}


def correct(p_values: list[float], method: str) -> list[float]:
    """Multiple-testing correction of one night's p-values: Benjamini-Hochberg (false discovery rate),
    Bonferroni (family-wise error) or none. Returns the adjusted p-values in the given order."""
    m = len(p_values)
    if method == "none" or m <= 1:
        return list(p_values)
    if method == "bonferroni":
        return [min(1.0, p * m) for p in p_values]
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):  # step-up: the adjusted value is the smallest p * m / rank at or above it
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


def _undriftable(reference: pd.DataFrame, current: pd.DataFrame, column: str) -> str | None:
    """Why a column's drift cannot be measured tonight (Evidently refuses an empty column outright)."""
    if current[column].notna().sum() == 0:
        return f"no values in tonight's batch ({len(current)} rows, all null)"
    if reference[column].notna().sum() == 0:
        return "no values in the reference"
    return None


def _drift_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable integers and booleans in the dtypes Evidently's tests compute on."""
    from steward.sources.schema import model_input

    return model_input(frame, list(frame.columns))


def measure_performance(eng: Engagement, labelled: pd.DataFrame, out_dir: Path) -> dict[str, Any]:
    """Model performance on the labelled rows (target + champion prediction columns present).

    The values come from `steward.models.metrics` (scikit-learn, the gate's yardstick), each either finite or
    not computable with the reason. Evidently draws the report; when it cannot (one class on a small
    label day: its classification preset needs both), the reason is recorded and no report is written.
    """
    from steward.models import metrics

    frame = labelled.assign(**{eng.target: metrics.encode_target(eng, labelled[eng.target])})
    proba = frame[PROBA] if PROBA in frame.columns else None
    result = metrics.compute_all(eng, metrics.names_for(eng), frame[eng.target], frame[PREDICTION], proba)
    out: dict[str, Any] = {**result.to_dict(), "rows": int(len(frame)), "report_html": None, "report_json": None,
                           "report_error": None}
    why_not = _report_impossible(eng, frame)
    if why_not is not None:
        out["report_error"] = why_not
        return out
    html_path, json_path = out_dir / "performance_report.html", out_dir / "performance_report.json"
    try:
        snapshot = _performance_snapshot(eng, frame)
    except Exception as exc:  # Evidently's presets assume shapes real label days do not always have
        out["report_error"] = f"Evidently could not build the report: {type(exc).__name__}: {str(exc)[:200]}"
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    _save(snapshot, html_path, json_path)
    out.update(report_html=str(html_path), report_json=str(json_path))
    return out


def _report_impossible(eng: Engagement, frame: pd.DataFrame) -> str | None:
    if frame.empty:
        return "no labelled rows"
    if eng.is_classification and frame[eng.target].nunique() < 2:
        from steward.models.metrics import describe_classes

        return f"one class only ({describe_classes(frame[eng.target])}): Evidently's classification report needs both"
    return None


def _performance_snapshot(eng: Engagement, frame: pd.DataFrame) -> Any:
    from evidently import (
        BinaryClassification,
        DataDefinition,
        Dataset,
        MulticlassClassification,
        Regression,
        Report,
    )
    from evidently.presets import ClassificationPreset, RegressionPreset

    report_figures.install()
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
    columns = [eng.id_column, eng.target, PREDICTION, *([PROBA] if PROBA in frame.columns else [])]
    return Report([preset]).run(current_data=Dataset.from_pandas(frame[columns], data_definition=definition))


def _save(snapshot: Any, html_path: Path, json_path: Path) -> None:
    """Evidently writes straight to the path it is given: write beside it and rename, so a full disk or a
    killed worker never leaves a truncated report."""
    from steward.sources.batches import atomic_target

    report_library.install()
    with atomic_target(html_path) as tmp, _script_safe_json():
        snapshot.save_html(str(tmp))
    with atomic_target(json_path) as tmp:
        snapshot.save_json(str(tmp))


class _ScriptSafeJson:
    """`json` as Evidently's HTML template uses it, with <, > and & escaped as \u003c, \u003e, \u0026: the
    same data for the report's script, but a client's category value `</script><script>...` can no longer
    close the <script> block it is embedded in (docs/security.md)."""

    def __getattr__(self, name: str) -> Any:
        import json

        return getattr(json, name)

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        import json

        return json.dumps(obj, **kwargs).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _script_safe_json() -> Any:
    """While a report's HTML is rendered, Evidently's template module sees `_ScriptSafeJson` as `json`."""
    from unittest import mock

    from evidently.legacy.utils import dashboard

    return mock.patch.object(dashboard, "json", _ScriptSafeJson())


def _evidently_version() -> str:
    from importlib.metadata import version

    return version("evidently")
