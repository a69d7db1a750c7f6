"""Global feature importance per model version: permutation importance on the holdout (scikit-learn).

Chosen over SHAP: it works for every allow-listed estimator through the whole pipeline (one-hot
included), needs no extra native dependency, and is measured on held-out data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.config import Engagement

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

_SCORING = {"roc_auc": "roc_auc", "accuracy": "accuracy", "f1": "f1_macro", "precision": "precision_macro",
            "recall": "recall_macro", "rmse": "neg_root_mean_squared_error", "mae": "neg_mean_absolute_error",
            "r2": "r2", "mape": "neg_mean_absolute_percentage_error"}


def permutation_importance(eng: Engagement, model: Pipeline, holdout: pd.DataFrame, repeats: int = 5) -> dict[str, Any]:
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    scoring = _SCORING[eng.promotion.metric]
    if scoring.endswith("_macro") and eng.problem_type == "binary_classification":
        scoring = scoring.removesuffix("_macro")
    from steward.models.metrics import encode_target, finite_or_none, unmeasurable
    from steward.models.training import features_of

    x = features_of(eng, holdout)
    y = encode_target(eng, holdout[eng.target])
    why_not = unmeasurable(eng, eng.promotion.metric, y)
    if why_not is not None:  # e.g. a one-class holdout has no ROC AUC to permute
        return {"method": "permutation_importance", "scoring": scoring, "n_repeats": repeats, "rows": int(len(x)),
                "features": [{"feature": f, "importance_mean": None, "importance_std": None} for f in eng.features],
                "not_computable": why_not}
    result = sk_permutation_importance(model, x, y, scoring=scoring, n_repeats=repeats, random_state=0, n_jobs=1)
    ranked = sorted(
        ({"feature": f, "importance_mean": finite_or_none(round(float(m), 6)),
          "importance_std": finite_or_none(round(float(s), 6))}
         for f, m, s in zip(eng.features, result.importances_mean, result.importances_std, strict=True)),
        key=lambda r: r["importance_mean"] if r["importance_mean"] is not None else float("-inf"), reverse=True,
    )
    return {"method": "permutation_importance", "scoring": scoring, "n_repeats": repeats, "rows": int(len(x)),
            "features": ranked}


def plot(importance: dict[str, Any], title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(reversed(importance["features"]))
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    ax.barh([r["feature"] for r in rows], [r["importance_mean"] or 0.0 for r in rows],
            xerr=[r["importance_std"] or 0.0 for r in rows], color="#3b7dd8")
    if importance.get("not_computable"):
        ax.text(0.5, 0.5, f"not computable: {importance['not_computable']}", transform=ax.transAxes, ha="center",
                wrap=True)
    ax.set_xlabel(f"drop in {importance['scoring']} when the feature is shuffled (holdout)")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    from steward.sources.batches import atomic_target

    with atomic_target(Path(path)) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
