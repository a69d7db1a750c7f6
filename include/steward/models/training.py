"""scikit-learn pipelines from the estimator allow-list: build, split, train, predict, score.

The YAML names an estimator; the class behind each name is fixed here, so config can never
import arbitrary code. Model files are written with skops, and loaded only with the reviewed
types below (never an unreviewed pickle).
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.config import AdoptedSpec, Engagement
from steward.models import trust

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
    "lightgbm_classifier": "lightgbm.LGBMClassifier",
    "lightgbm_regressor": "lightgbm.LGBMRegressor",
    "xgboost_classifier": "xgboost.XGBClassifier",
    "xgboost_regressor": "xgboost.XGBRegressor",
}
# Fixed, not configurable: one thread (the nightly tasks of several engagements share two cores, and a
# single thread makes the boosters' fits reproducible), no console chatter in the task logs.
FIXED_PARAMS: dict[str, dict[str, Any]] = {
    "lightgbm_classifier": {"n_jobs": 1, "verbose": -1},
    "lightgbm_regressor": {"n_jobs": 1, "verbose": -1},
    "xgboost_classifier": {"n_jobs": 1, "verbosity": 0},
    "xgboost_regressor": {"n_jobs": 1, "verbosity": 0},
}
# Types skops does not trust by default that our pipelines contain (steward.models.trust: the built-in
# reviewed list plus the repository's allow-list file).
REVIEWED_SKOPS_TYPES: list[str] = list(trust.BUILT_IN)
RANDOM_STATE = 42


def build_pipeline(eng: Engagement) -> Pipeline:
    """Impute + scale numerics, impute + one-hot categoricals, then the configured estimator; for an adopted
    pipeline, a fresh clone of it (same steps and parameters, nothing fitted: ADR 0032)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if isinstance(eng.retraining.estimator, AdoptedSpec):
        from sklearn.base import clone

        from steward.models import adoption

        return clone(adoption.template(eng))
    module_name, cls_name = ESTIMATOR_CLASSES[eng.retraining.estimator.name].rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), cls_name)
    params = {**eng.retraining.estimator.params.model_dump(), **FIXED_PARAMS.get(eng.retraining.estimator.name, {})}
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
    """Rows with a usable target, the target encoded (steward.models.metrics.encode_target); none when the batch
    carries no target (its labels arrive later). Values outside the classes are not usable: the quality
    rules quarantine a batch that carries them, and label files set them aside with the reason."""
    from steward.models import metrics

    if eng.target not in df.columns:
        return df.iloc[0:0].assign(**{eng.target: []})
    usable = df[df[eng.target].notna() & ~metrics.outside_classes(eng, df[eng.target])]
    return usable.assign(**{eng.target: metrics.encode_target(eng, usable[eng.target])})


def features_of(eng: Engagement, df: pd.DataFrame) -> pd.DataFrame:
    """The feature columns in dtypes every scikit-learn transformer accepts (steward.sources.schema.model_input)."""
    from steward.sources.schema import model_input

    return model_input(df, list(eng.features))


def split_holdout(eng: Engagement, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic split by a hash of the id: the same rows land in the holdout on every rerun."""
    import pandas as pd

    buckets = pd.util.hash_pandas_object(df[eng.id_column].astype(str), index=False) % 1000
    is_holdout = (buckets < int(eng.retraining.holdout_fraction * 1000)).to_numpy()
    return df[~is_holdout], df[is_holdout]


# Out of time, the holdout spans at least two batches (one more trains): one day can favour either model by
# chance (its weather, its campaign), two that agree are evidence (ADR 0013).
MIN_HOLDOUT_BATCHES = 2


def split_window(
    eng: Engagement, frames: dict[dt.date, pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame, list[dt.date]]:
    """Train rows, holdout rows and the batches the holdout comes from, for a window of labelled batches.

    `newest_nights` (the default): the newest batches, added newest first until they hold `holdout_fraction`
    of the window's rows and number at least MIN_HOLDOUT_BATCHES, while the oldest batch always stays for
    training. Rows of one day share that day's conditions (weather, a campaign, an outage); a holdout drawn from the days a candidate was trained on
    rewards fitting those days, not serving the next ones. A holdout on which the promotion metric is not
    computable takes older batches in; if that cannot help, and with `sample` or a window of one batch: a
    hash-selected share of every batch.
    """
    import pandas as pd

    days = sorted(frames)
    if eng.retraining.holdout == "sample" or len(days) < 2:
        return _share_of_every_batch(eng, frames)
    total = sum(len(f) for f in frames.values())
    held: list[dt.date] = []
    for d in reversed(days[1:]):
        held.append(d)
        enough = sum(len(frames[h]) for h in held) >= eng.retraining.holdout_fraction * total
        if enough and len(held) >= min(MIN_HOLDOUT_BATCHES, len(days) - 1):
            break
    from steward.models import metrics

    def measurable() -> bool:
        rows = pd.concat([frames[h] for h in held], ignore_index=True)
        return metrics.unmeasurable(eng, eng.promotion.metric, rows[eng.target]) is None

    # a holdout the promotion metric cannot be computed on (one class only on a label day) takes older
    # batches in, still out of time; if none can help, the window falls back to a share of every batch
    while not measurable() and len(held) < len(days) - 1:
        held.append(days[len(days) - 1 - len(held)])
    if not measurable():
        return _share_of_every_batch(eng, frames)
    held.sort()
    train = pd.concat([frames[d] for d in days if d not in held], ignore_index=True)
    return train, pd.concat([frames[d] for d in held], ignore_index=True), held


def _share_of_every_batch(
    eng: Engagement, frames: dict[dt.date, pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame, list[dt.date]]:
    import pandas as pd

    parts = [split_holdout(eng, frames[d]) for d in sorted(frames)]
    return (pd.concat([t for t, _ in parts], ignore_index=True),
            pd.concat([h for _, h in parts], ignore_index=True), sorted(frames))


MIN_TRAIN_ROWS = 10


def training_problems(eng: Engagement, train_df: pd.DataFrame, holdout: pd.DataFrame) -> list[str]:
    """Why a candidate cannot be trained and judged fairly on this window (empty list: it can).

    A one-class training window cannot teach a classifier anything; a holdout on which the promotion
    metric cannot be computed cannot tell a better model from a worse one. Both mean: no candidate
    tonight, and the reason goes into the record.
    """
    from steward.models import metrics

    problems = []
    if len(train_df) < MIN_TRAIN_ROWS:
        problems.append(f"training window has {len(train_df)} labelled rows (< {MIN_TRAIN_ROWS})")
    elif eng.is_classification and train_df[eng.target].nunique() < 2:
        problems.append(f"training window has one class only ({metrics.describe_classes(train_df[eng.target])})")
    reason = metrics.unmeasurable(eng, eng.promotion.metric, holdout[eng.target])
    if reason is not None:
        problems.append(f"holdout of {len(holdout)} rows cannot measure {eng.promotion.metric}: {reason}")
    return problems


def train(eng: Engagement, df: pd.DataFrame, sample_weight: Any = None) -> Pipeline:
    """Fit the configured pipeline; `sample_weight` (recency weights, ADR 0024) goes to the estimator."""
    from steward.models import metrics

    model = build_pipeline(eng)
    # the final step's name: "model" in steward's pipelines, whatever the team named it in an adopted one
    last = model.steps[-1][0] if hasattr(model, "steps") else None
    extra = {} if sample_weight is None else {f"{last}__sample_weight" if last else "sample_weight": sample_weight}
    model.fit(features_of(eng, df), metrics.encode_target(eng, df[eng.target]), **extra)
    return model


def predict(eng: Engagement, model: Pipeline, df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` with `prediction` (and `prediction_proba`, P(positive), for binary classifiers)."""
    from steward.models import metrics
    from steward.monitoring.drift import PREDICTION, PROBA

    out = df.copy()
    x = features_of(eng, df)
    if eng.problem_type == "binary_classification" and list(getattr(model, "classes_", [])) == [0, 1]:
        # one pass through the pipeline: every allowed classifier predicts the class of the higher probability
        scores = metrics.positive_scores(model, x)
        out[PREDICTION] = (scores > 0.5).astype(int)
        out[PROBA] = scores
        return out
    out[PREDICTION] = model.predict(x)
    if eng.problem_type == "binary_classification":
        out[PROBA] = metrics.positive_scores(model, x)
    return out


def score(eng: Engagement, model: Pipeline, df: pd.DataFrame, metric: str) -> float | None:
    """One metric on labelled rows (sklearn.metrics, the gate's yardstick); None when not computable."""
    from steward.models import metrics

    return metrics.of_model(eng, model, df, [metric]).value(metric)


def holdout_metrics(eng: Engagement, model: Pipeline, df: pd.DataFrame) -> dict[str, float]:
    """The computable metrics of the holdout (a metric that cannot be computed is left out, not NaN)."""
    from steward.models import metrics

    names = ["accuracy", "f1", "roc_auc"] if eng.problem_type == "binary_classification" else (
        ["accuracy", "f1"] if eng.is_classification else ["rmse", "mae", "r2"]
    )
    return metrics.of_model(eng, model, df, names).values


def save_model(model: Pipeline, path: str) -> None:
    trust.skops_io().dump(model, path)


# Loaded models by the digest of their file (and the reviewed types they were loaded with), newest last. A night
# loads the champion three to four times (scoring, monitoring, baselines, shadow); in one process (`steward backfill`,
# `steward demo`, the tests) that was up to a tenth of a night on a 100-tree forest. Keyed by content, so a
# changed file is a miss and is loaded (and checked) again; nothing steward does mutates a fitted model.
_LOADED: OrderedDict[tuple[str, tuple[str, ...]], Any] = OrderedDict()
_LOADED_MAX = 4


def load_model(path: str) -> Pipeline:
    """Load a skops file trusting only the reviewed types (fails loudly on anything else)."""
    import hashlib

    skops_io = trust.skops_io()
    data = Path(path).read_bytes()
    trusted = trust.reviewed()
    key = (hashlib.sha256(data).hexdigest(), tuple(trusted))
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    model = skops_io.loads(data, trusted=trusted)
    _LOADED[key] = model
    while len(_LOADED) > _LOADED_MAX:
        _LOADED.popitem(last=False)
    return model
