"""scikit-learn pipelines from the estimator allow-list: build, split, train, predict, score.

The YAML names an estimator; the class behind each name is fixed here, so config can never
import arbitrary code. Model files are written with skops, and loaded only with the reviewed
types below (never an unreviewed pickle).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from steward.config import Engagement

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

ESTIMATOR_CLASSES: dict[str, str] = {
    "logistic_regression": "sklearn.linear_model.LogisticRegression",
    "random_forest_classifier": "sklearn.ensemble.RandomForestClassifier",
    "hist_gradient_boosting_classifier": "sklearn.ensemble.HistGradientBoostingClassifier",
    "ridge": "sklearn.linear_model.Ridge",
    "random_forest_regressor": "sklearn.ensemble.RandomForestRegressor",
    "hist_gradient_boosting_regressor": "sklearn.ensemble.HistGradientBoostingRegressor",
}
# Types skops does not trust by default that our allow-listed pipelines contain. Reviewed: these are
# plain data holders of scikit-learn/numpy (tree arrays, dtypes), with no code-execution hooks.
REVIEWED_SKOPS_TYPES: list[str] = [
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]
RANDOM_STATE = 42


def build_pipeline(eng: Engagement) -> Pipeline:
    """Impute + scale numerics, impute + one-hot categoricals, then the configured estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    module_name, cls_name = ESTIMATOR_CLASSES[eng.retraining.estimator.name].rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), cls_name)
    params = eng.retraining.estimator.params.model_dump()
    if "random_state" in cls().get_params():
        params["random_state"] = RANDOM_STATE
    transformers = []
    if eng.numeric_features:
        transformers.append(
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
             eng.numeric_features)
        )
    if eng.categorical_features:
        transformers.append(
            ("categorical",
             Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                       ("onehot", OneHotEncoder(handle_unknown="ignore"))]),
             eng.categorical_features)
        )
    return Pipeline([("features", ColumnTransformer(transformers)), ("model", cls(**params))])


def labelled(eng: Engagement, df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a target (none when the batch carries no target: its labels arrive later)."""
    if eng.target not in df.columns:
        return df.iloc[0:0].assign(**{eng.target: []})
    return df[df[eng.target].notna()]


def split_holdout(eng: Engagement, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic split by a hash of the id: the same rows land in the holdout on every rerun."""
    import pandas as pd

    buckets = pd.util.hash_pandas_object(df[eng.id_column].astype(str), index=False) % 1000
    is_holdout = (buckets < int(eng.retraining.holdout_fraction * 1000)).to_numpy()
    return df[~is_holdout], df[is_holdout]


def train(eng: Engagement, df: pd.DataFrame) -> Pipeline:
    model = build_pipeline(eng)
    y = df[eng.target]
    if eng.is_classification:
        y = y.astype(str) if y.dtype == object else y.astype(int)
    model.fit(df[list(eng.features)], y)
    return model


def predict(eng: Engagement, model: Pipeline, df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` with `prediction` (and `prediction_proba` for binary classifiers)."""
    from steward.drift import PREDICTION, PROBA

    out = df.copy()
    x = df[list(eng.features)]
    out[PREDICTION] = model.predict(x)
    if eng.problem_type == "binary_classification":
        out[PROBA] = model.predict_proba(x)[:, 1]
    return out


def score(eng: Engagement, model: Pipeline, df: pd.DataFrame, metric: str) -> float:
    """One metric on labelled rows, computed with sklearn.metrics (the gate's yardstick)."""
    from sklearn import metrics as m

    y_true = df[eng.target]
    x = df[list(eng.features)]
    if metric == "roc_auc":
        return float(m.roc_auc_score(y_true.astype(int), model.predict_proba(x)[:, 1]))
    y_pred = model.predict(x)
    average = "binary" if eng.problem_type == "binary_classification" else "macro"
    fns: dict[str, Any] = {
        "accuracy": lambda: m.accuracy_score(y_true, y_pred),
        "f1": lambda: m.f1_score(y_true, y_pred, average=average),
        "precision": lambda: m.precision_score(y_true, y_pred, average=average, zero_division=0),
        "recall": lambda: m.recall_score(y_true, y_pred, average=average),
        "rmse": lambda: m.root_mean_squared_error(y_true, y_pred),
        "mae": lambda: m.mean_absolute_error(y_true, y_pred),
        "r2": lambda: m.r2_score(y_true, y_pred),
        "mape": lambda: m.mean_absolute_percentage_error(y_true, y_pred),
    }
    return float(fns[metric]())


def holdout_metrics(eng: Engagement, model: Pipeline, df: pd.DataFrame) -> dict[str, float]:
    names = ["accuracy", "f1", "roc_auc"] if eng.problem_type == "binary_classification" else (
        ["accuracy", "f1"] if eng.is_classification else ["rmse", "mae", "r2"]
    )
    return {n: round(score(eng, model, df, n), 6) for n in names}


def save_model(model: Pipeline, path: str) -> None:
    import skops.io

    skops.io.dump(model, path)


def load_model(path: str) -> Pipeline:
    """Load a skops file trusting only the reviewed types (fails loudly on anything else)."""
    import skops.io

    return skops.io.load(path, trusted=REVIEWED_SKOPS_TYPES)
