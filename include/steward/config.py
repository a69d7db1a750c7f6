"""Pydantic models of an engagement file (`include/engagements/<id>.yaml`).

The YAML holds values only: estimators are named from an allow-list defined here, never by import
path. Every model forbids unknown keys so a typo is an error naming the field, not a silent default.
This module must stay light: the DAG factory imports it at parse time (pydantic and yaml only).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, cast, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

SAFE_ID = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
MAX_CONFIG_BYTES = 256 * 1024


class EngagementConfigError(ValueError):
    """An engagement file is invalid. The message names the file and the field."""

    def __init__(self, path: Path | str, field: str, message: str):
        self.path = str(path)
        self.field = field
        self.reason = message
        super().__init__(f"{self.path}: field '{field}': {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ProblemType = Literal["binary_classification", "multiclass_classification", "regression"]
FeatureType = Literal["numeric", "categorical"]
ClassificationMetric = Literal["accuracy", "f1", "roc_auc", "precision", "recall"]
RegressionMetric = Literal["rmse", "mae", "r2", "mape"]
Metric = Literal["accuracy", "f1", "roc_auc", "precision", "recall", "rmse", "mae", "r2", "mape"]
LOWER_IS_BETTER: frozenset[str] = frozenset({"rmse", "mae", "mape"})


# Metric direction, decided here only: every comparison of two values of a metric goes through these.
def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


def improvement(metric: str, new: Any, old: Any) -> Any:
    """How much better `new` is than `old` in the metric's units (positive: better), whatever its direction.
    Works on numbers and on numpy arrays alike."""
    return old - new if metric in LOWER_IS_BETTER else new - old


def within(metric: str, value: float, threshold: float) -> bool:
    """Does `value` meet `threshold`: a ceiling for error metrics, a floor for the others."""
    return value <= threshold if metric in LOWER_IS_BETTER else value >= threshold


def threshold_kind(metric: str) -> str:
    return "ceiling" if metric in LOWER_IS_BETTER else "floor"
CLASSIFICATION_METRICS: frozenset[str] = frozenset({"accuracy", "f1", "roc_auc", "precision", "recall"})
StatTest = Literal["ks", "psi", "wasserstein", "jensenshannon", "chisquare", "z", "kl_div", "hellinger"]
# How a column is read, nightly and at onboarding (steward.sources.schema): one vocabulary for both.
ColumnType = Literal["string", "integer", "float", "boolean", "date", "timestamp"]
Severity = Literal["quarantine", "warn"]
ClassValue = bool | int | str  # bool first: YAML `true` must stay a boolean, not become 1


def _relative_path(value: str) -> str:
    """Paths in config are relative to the data root and may not climb out of it."""
    p = PurePosixPath(value)
    if p.is_absolute() or ".." in p.parts or value.strip() == "":
        raise ValueError(f"must be a relative path inside the data root, got {value!r}")
    return value


def _date_pattern(value: str) -> str:
    if "{date}" not in value or "/" in value or ".." in value:
        raise ValueError("must contain '{date}' and no path separators")
    return value


class _DatedFiles(_Strict):
    """A folder of files named by date under the data root (nightly batches, late labels)."""

    directory: str = Field(description="directory under the data root")
    pattern: str = Field("{date}.csv", description="file name; {date} is the date YYYY-MM-DD")
    format: Literal["csv", "parquet"] = "csv"

    @field_validator("directory")
    @classmethod
    def _inside_data_root(cls, v: str) -> str:
        return _relative_path(v)

    @field_validator("pattern")
    @classmethod
    def _pattern_has_date(cls, v: str) -> str:
        return _date_pattern(v)


class DataSource(_DatedFiles):
    """Where nightly batches land: one file per logical date."""

    source: Literal["files"] = "files"
    reference: str = Field(description="reference data file under the data root")
    wait_minutes: float = Field(0, ge=0, le=24 * 60, description="how long to wait for a late batch before skipping the night")

    @field_validator("reference")
    @classmethod
    def _reference_inside_data_root(cls, v: str) -> str:
        return _relative_path(v)


CONN_ID = r"^[A-Za-z0-9_.-]{1,250}$"
SQL_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
SQL_TABLE = r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$"
LOGICAL_DATE_PARAMETER = ":logical_date"


def _check_bound_query(v: str | None) -> str | None:
    """A SQL query from YAML: one SELECT that takes the logical date as the bound parameter, nothing else."""
    if v is None:
        return v
    text = v.strip().rstrip(";").strip()
    if LOGICAL_DATE_PARAMETER not in text:
        raise ValueError(f"must take the logical date as the bound parameter {LOGICAL_DATE_PARAMETER} "
                         "(e.g. WHERE event_date = :logical_date)")
    if ";" in text:
        raise ValueError("must be one statement (no ';' inside)")
    if not re.match(r"(?is)^\s*(select|with)\b", text):
        raise ValueError("must be a SELECT (or WITH ... SELECT) query")
    if re.search(r"\{[^}]*\}|%\(", text):
        raise ValueError("must not carry {placeholders} or %(...)s: the only parameter is :logical_date, bound")
    return text


class _SqlRelation(_Strict):
    """Rows of one night in a database: a table's rows whose date column is the night, or a query with the
    night bound as `:logical_date`, through an Airflow connection id."""

    conn_id: str = Field(pattern=CONN_ID, description="Airflow connection id (Postgres)")
    table: str | None = Field(None, pattern=SQL_TABLE, description="[schema.]table")
    date_column: str | None = Field(None, pattern=SQL_NAME, description="the column whose value is the night")
    query: str | None = Field(None, min_length=1, description="SELECT ... WHERE day = :logical_date")

    @field_validator("query")
    @classmethod
    def _bound_query(cls, v: str | None) -> str | None:
        return _check_bound_query(v)

    @model_validator(mode="after")
    def _table_or_query(self) -> _SqlRelation:
        if (self.table is None) == (self.query is None):
            raise ValueError("give either `table` (with `date_column`) or `query`, not both and not neither")
        if self.table is not None and self.date_column is None:
            raise ValueError("`date_column` is required with `table`: the column whose value is the night")
        return self

    @property
    def relation(self) -> str:
        """What lineage and messages call the source: the table, or 'query'."""
        return self.table or "query"


class SqlSource(_SqlRelation):
    """Nightly batches in a database (ADR 0023), named by an Airflow connection id: the rows of a table whose
    `date_column` is the logical date, or a `query` that takes the logical date as the bound parameter
    `:logical_date` (never formatted into the text). Each night's rows are snapshotted into
    `<staging_schema>` in the same database (the client's tables are only read) and checked there."""

    source: Literal["sql"]
    staging_schema: str = Field("steward", pattern=SQL_NAME,
                                description="schema steward may create and write in: night snapshots, quarantine")
    snapshot: Literal["copy", "view"] = Field(
        "copy", description="copy: each night's rows are copied into the staging schema (the raw input kept, "
        "reruns exact); view: a view over the client's table (nothing copied: warehouse scale; a changed "
        "source is still detected, and a quarantined night is copied)")
    sample_rows: int = Field(
        100_000, ge=1_000, description="a larger night lands a seeded sample drawn in the database (drift, "
        "training); it is checked and scored whole, in the database and in chunks")
    reference: str = Field(description="reference data file under the data root")
    wait_minutes: float = Field(0, ge=0, le=24 * 60, description="how long to wait for a late batch before skipping the night")

    format: Literal["parquet"] = Field("parquet", description="the landed copy's format (fixed)")

    @field_validator("reference")
    @classmethod
    def _reference_inside_data_root(cls, v: str) -> str:
        return _relative_path(v)

    @property
    def pattern(self) -> str:  # the landed copy's name
        return "{date}.parquet"


class ObjectStorageSource(_Strict):
    """Nightly batches in object storage (S3, or `file://` for a mounted share), read through Airflow's
    ObjectStoragePath with an Airflow connection id: one object per night, named by a URL with `{date}`
    (a partition such as `s3://bucket/exports/dt={date}/part-0.parquet`). Landed byte for byte (ADR 0023)."""

    source: Literal["object_storage"]
    url: str = Field(description="scheme://bucket/path with {date} (YYYY-MM-DD), one object per night")
    conn_id: str | None = Field(None, pattern=CONN_ID, description="Airflow connection id (aws for s3://)")
    format: Literal["csv", "parquet"] = "parquet"
    reference: str = Field(description="reference data file under the data root")
    wait_minutes: float = Field(0, ge=0, le=24 * 60, description="how long to wait for a late batch before skipping the night")

    @field_validator("url")
    @classmethod
    def _dated_object(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9+]*://[^\s]+", v):
            raise ValueError(f"must be a URL such as s3://bucket/exports/dt={{date}}/part-0.parquet, got {v!r}")
        if v.count("{date}") != 1 or re.search(r"\{(?!date\})[^}]*\}", v):
            raise ValueError("must contain {date} once and no other {placeholder}")
        if v.endswith("/") or "/../" in v or v.endswith("/.."):
            raise ValueError("must name one object per night (not a folder), without '..'")
        return v

    @field_validator("reference")
    @classmethod
    def _reference_inside_data_root(cls, v: str) -> str:
        return _relative_path(v)

    @property
    def pattern(self) -> str:  # the landed copy's name
        return "{date}." + self.format

    @property
    def relation(self) -> str:
        return self.url


def _source_kind(value: Any) -> str:
    raw = value.get("source", "files") if isinstance(value, dict) else getattr(value, "source", "files")
    return raw if raw in ("files", "sql", "object_storage") else "files"


BatchSource = Annotated[
    Annotated[DataSource, Tag("files")] | Annotated[SqlSource, Tag("sql")]
    | Annotated[ObjectStorageSource, Tag("object_storage")], Discriminator(_source_kind)]


class PredictionsSink(_Strict):
    """A table the client reads the night's predictions from (with the model version and logical date);
    each night replaces its own rows in one transaction (ADR 0023)."""

    conn_id: str = Field(pattern=CONN_ID, description="Airflow connection id (Postgres)")
    table: str = Field(pattern=SQL_TABLE, description="[schema.]table; created when missing")


class PredictionsOutput(_Strict):
    sink: PredictionsSink | None = None


class ColumnExpectations(_Strict):
    """Rules for one column. `severity` says what a failed rule does: `quarantine` the batch, or `warn`
    (recorded, alerted, the batch proceeds). `mostly` is Great Expectations' own: the share of rows that
    must meet the row rules (not_null, range, allowed values, unique). `warn_mostly` adds a stricter twin
    that only warns, so a small share of bad rows warns and a large share quarantines (ADR 0011)."""

    not_null: bool = False
    max_null_share: float | None = Field(None, ge=0, le=1)
    min: float | None = None
    max: float | None = None
    allowed_values: list[bool | int | float | str] | None = None
    unique: bool = False
    severity: Severity = "quarantine"
    mostly: float = Field(1.0, gt=0, le=1, description="share of rows that must meet the row rules")
    warn_mostly: float | None = Field(None, gt=0, le=1, description="a stricter share that only warns")

    @model_validator(mode="after")
    def _range_ordered(self) -> ColumnExpectations:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.warn_mostly is not None:
            if self.severity == "warn":
                raise ValueError("warn_mostly needs severity: quarantine (a warn rule already only warns)")
            if self.warn_mostly <= self.mostly:
                raise ValueError(f"warn_mostly ({self.warn_mostly}) must be stricter (higher) than mostly ({self.mostly})")
        return self


class RowCount(_Strict):
    min: int = Field(1, ge=0)
    max: int | None = Field(None, ge=1)


class QualityPolicy(_Strict):
    row_count: RowCount = RowCount()
    rates: QualityRates = Field(default_factory=lambda: QualityRates())
    allow_extra_columns: bool = False
    # One rule set per column, or a list of them for different severities on one column (e.g. a range
    # that only warns beside a sign that quarantines).
    columns: dict[str, ColumnExpectations | list[ColumnExpectations]] = {}

    def rules_for(self, column: str) -> list[ColumnExpectations]:
        rules = self.columns.get(column)
        return [] if rules is None else rules if isinstance(rules, list) else [rules]


class FeatureDrift(_Strict):
    stattest: StatTest
    threshold: float = Field(gt=0, le=1)


class Persistence(_Strict):
    """Dataset drift must hold on `nights` of the last `of_last` judged nights before it alarms or retrains."""

    nights: int = Field(2, ge=1, le=30)
    of_last: int = Field(3, ge=1, le=60)

    @model_validator(mode="after")
    def _ordered(self) -> Persistence:
        if self.nights > self.of_last:
            raise ValueError(f"nights ({self.nights}) is more than of_last ({self.of_last})")
        return self



RateKind = Literal["null", "out_of_range", "unseen", "constant"]


class QualityRates(_Strict):
    """Data-quality drift (ADR 0027): per feature, the share of nulls, of values outside the reference's
    range, of unseen categories and of one repeated value, each tested every night against the reference's
    own rate; nights smaller than `min_rows` pooled; an alarm only when a rate persists."""

    enabled: bool = True
    kinds: list[RateKind] = Field(default_factory=lambda: list(get_args(RateKind)))
    significance: float = Field(
        0.01, gt=0, lt=1, description="false discovery rate across one night's rates (Benjamini-Hochberg)")
    tolerance: float = Field(
        0.02, ge=0, lt=1, description="a rate must exceed the reference's 95% upper bound by more than this "
        "(absolute share) to be a fault: small enough to see 10% -> 17%, large enough that a real feed's "
        "night-to-night wobble is not one")
    range_margin: float = Field(
        1.0, ge=0, le=100, description="`out_of_range`: outside the reference's [min, max] widened by this "
        "share of its span on each side (a unit change lands far outside; a cold month does not)")
    min_rows: int = Field(200, ge=1, description="smaller nights are pooled with the accepted nights before them")
    max_window_nights: int = Field(7, ge=1, le=60)
    persistence: Persistence = Field(default_factory=lambda: Persistence(nights=2, of_last=3))


class DriftPolicy(_Strict):
    """A feature drifts when its distance (the effect size) reaches the threshold AND a significance test
    says the difference is not sampling noise, after correcting for testing many features at once
    (ADR 0012). Dataset drift is a share of drifted features; it alarms and retrains only when it persists."""

    stattest: StatTest = "wasserstein"
    threshold: float = Field(0.1, gt=0, le=1)
    per_feature: dict[str, FeatureDrift] = {}
    drift_share: float = Field(0.3, gt=0, le=1, description="share of drifted features that counts as drift")
    reference: Literal["champion", "file"] = Field(
        "champion", description="judge against the champion's own training data (file: the reference file, always)")
    significance: float = Field(
        0.01, gt=0, lt=1, description="level of the significance test (KS numeric, chi-square categorical), "
        "after the correction; with a p-value stattest the stattest's own threshold is the level")
    min_effect: float = Field(
        0.1, gt=0, le=1, description="effect size a p-value stattest must also reach (Wasserstein numeric, "
        "Jensen-Shannon categorical)")
    correction: Literal["benjamini_hochberg", "bonferroni", "none"] = Field(
        "benjamini_hochberg", description="multiple-testing correction across the features of a night")
    min_rows: int = Field(
        200, ge=1, description="a smaller night is judged on a window of the latest accepted nights up to this size")
    max_window_nights: int = Field(14, ge=1, le=90, description="nights a small-batch window may reach back")
    persistence: Persistence = Persistence()
    sample_rows: int | None = Field(
        100_000, ge=1_000,
        description="drift compares at most this many rows per side, drawn uniformly with a seed from the night "
        "(null: every row); validation always reads every row (ADR 0010)")


class PerformancePolicy(_Strict):
    metric: Metric
    threshold: float = Field(description="floor for higher-is-better metrics, ceiling for rmse/mae/mape")
    min_labelled_rows: int = Field(
        100, ge=1, description="fewer labelled rows do not judge a night's metric, nor let a refit or growth candidate "
        "through the gate on a holdout that does not contradict it (ADR 0035)")


# --- estimator allow-list: one params model per estimator, so unknown parameters name the field ----


class LogisticRegressionParams(_Strict):
    C: float = Field(1.0, gt=0)
    max_iter: int = Field(1000, ge=10, le=100_000)
    class_weight: Literal["balanced"] | None = None


class RandomForestParams(_Strict):
    n_estimators: int = Field(100, ge=1, le=2000)
    max_depth: int | None = Field(None, ge=1, le=100)
    min_samples_leaf: int = Field(1, ge=1)


class HistGradientBoostingParams(_Strict):
    learning_rate: float = Field(0.1, gt=0, le=1)
    max_iter: int = Field(100, ge=1, le=5000)
    max_depth: int | None = Field(None, ge=1, le=100)
    l2_regularization: float = Field(0.0, ge=0)


class RidgeParams(_Strict):
    alpha: float = Field(1.0, ge=0)


class LightGBMParams(_Strict):
    n_estimators: int = Field(100, ge=1, le=5000)
    learning_rate: float = Field(0.1, gt=0, le=1)
    num_leaves: int = Field(31, ge=2, le=4096)
    max_depth: int = Field(-1, ge=-1, le=100, description="-1: no limit (LightGBM's own default)")
    min_child_samples: int = Field(20, ge=1)
    reg_lambda: float = Field(0.0, ge=0)


class XGBoostParams(_Strict):
    n_estimators: int = Field(100, ge=1, le=5000)
    learning_rate: float = Field(0.3, gt=0, le=1)
    max_depth: int = Field(6, ge=0, le=100)
    min_child_weight: float = Field(1.0, ge=0)
    reg_lambda: float = Field(1.0, ge=0)


class NoParams(_Strict):
    """An adopted pipeline keeps the parameters it was built with (steward onboard --model, ADR 0032)."""


class LogisticRegressionSpec(_Strict):
    name: Literal["logistic_regression"]
    params: LogisticRegressionParams = LogisticRegressionParams()


class RandomForestClassifierSpec(_Strict):
    name: Literal["random_forest_classifier"]
    params: RandomForestParams = RandomForestParams()


class HistGradientBoostingClassifierSpec(_Strict):
    name: Literal["hist_gradient_boosting_classifier"]
    params: HistGradientBoostingParams = HistGradientBoostingParams()


class RidgeSpec(_Strict):
    name: Literal["ridge"]
    params: RidgeParams = RidgeParams()


class RandomForestRegressorSpec(_Strict):
    name: Literal["random_forest_regressor"]
    params: RandomForestParams = RandomForestParams()


class HistGradientBoostingRegressorSpec(_Strict):
    name: Literal["hist_gradient_boosting_regressor"]
    params: HistGradientBoostingParams = HistGradientBoostingParams()


class LightGBMClassifierSpec(_Strict):
    name: Literal["lightgbm_classifier"]
    params: LightGBMParams = LightGBMParams()


class LightGBMRegressorSpec(_Strict):
    name: Literal["lightgbm_regressor"]
    params: LightGBMParams = LightGBMParams()


class XGBoostClassifierSpec(_Strict):
    name: Literal["xgboost_classifier"]
    params: XGBoostParams = XGBoostParams()


class XGBoostRegressorSpec(_Strict):
    name: Literal["xgboost_regressor"]
    params: XGBoostParams = XGBoostParams()


SHA256_HEX = r"^[0-9a-f]{64}$"


class AdoptedSpec(_Strict):
    """A pipeline built outside steward and adopted as champion v1 (`steward onboard --model`, ADR 0032).
    Candidates are fresh clones of it (`sklearn.base.clone`) fitted on the training window. The file is
    loaded with skops, trusting only the reviewed types (include/reviewed-skops-types.txt), never pickle;
    its digest is pinned here, so a file swapped on the state volume is refused, not served."""

    name: Literal["adopted"]
    kind: Literal["classifier", "regressor"] = Field(description="what the adopted estimator is (checked at onboarding)")
    file: str = Field(description="the skops file under the data root (written by steward onboard --model)")
    sha256: str = Field(pattern=SHA256_HEX, description="the file's digest when it was adopted")
    source: str = Field(max_length=1000, description="where it came from: the path or the models:/ URI given")
    adopted_by: str = Field(max_length=200, description="who adopted it")
    adopted_on: dt.date = Field(description="when")
    params: NoParams = NoParams()

    @field_validator("file")
    @classmethod
    def _inside_data_root(cls, v: str) -> str:
        return _relative_path(v)


EstimatorSpec = Annotated[
    LogisticRegressionSpec
    | RandomForestClassifierSpec
    | HistGradientBoostingClassifierSpec
    | LightGBMClassifierSpec
    | XGBoostClassifierSpec
    | RidgeSpec
    | RandomForestRegressorSpec
    | HistGradientBoostingRegressorSpec
    | LightGBMRegressorSpec
    | XGBoostRegressorSpec
    | AdoptedSpec,
    Field(discriminator="name"),
]
CLASSIFIERS = frozenset({"logistic_regression", "random_forest_classifier", "hist_gradient_boosting_classifier",
                         "lightgbm_classifier", "xgboost_classifier"})
REGRESSORS = frozenset({"ridge", "random_forest_regressor", "hist_gradient_boosting_regressor",
                        "lightgbm_regressor", "xgboost_regressor"})

# refit: the periodic-refit baseline beats the champion on the labelled nights since it took over (ADR 0025)
RetrainTrigger = Literal["drift", "performance", "schedule", "refit", "growth"]


class RetrainingPolicy(_Strict):
    triggers: list[RetrainTrigger] = Field(
        ["drift", "performance", "schedule", "refit", "growth"],
        description="what trains a candidate: persistent drift, a performance breach, the scheduled refresh, "
        "`refit`: the periodic-refit baseline beating the champion on the labelled nights since it took over "
        "(a paired test, ADR 0025), and `growth`: the labelled rows since the champion was trained reaching "
        "`growth_factor` times the rows it learnt from (ADR 0028)")
    growth_factor: float = Field(
        1.0, gt=0, le=100,
        description="trigger `growth`: a candidate when the accepted labelled rows the newest model trained (the "
        "champion, or a candidate since) has not learnt reach this multiple of the rows it learnt from (1: its "
        "training data would double), at most once per "
        "`baselines.refit_every_days` after the champion was trained. Promoted at the gate, without shadow "
        "nights, unless its holdout points the other way: the same recipe on more of the same feed (ADR 0034). "
        "Onboarding sizes it from the nightly volume it sees")
    refresh_every_days: int = Field(
        30, ge=1, description="scheduled refresh: days since the last model was trained (champion or candidate)")
    window: Literal["expanding", "sliding"] = Field(
        "expanding",
        description="what a candidate learns from (ADR 0024): `expanding`, the champion's own training rows plus "
        "every accepted labelled night since (so a candidate never knows less than the champion); `sliding`, the "
        "newest `window_rows` labelled rows (nights newest first, then the champion's rows), or without "
        "`window_rows` the newest `window_days` nights only")
    window_days: int = Field(3, ge=1, le=365, description="sliding window without `window_rows`: the newest "
                             "accepted labelled nights used for training")
    window_rows: int | None = Field(
        None, ge=10, le=50_000_000,
        description="rows a candidate learns from, newest first: the size of a sliding window; the cap of an "
        "expanding one (the champion's oldest rows drop first). Onboarding sizes it from the volume it sees")
    recency_half_life_days: float | None = Field(
        None, gt=0, le=3650,
        description="weight each training row by 0.5 ** (its age in nights / this), passed to the estimator as "
        "`sample_weight` (the champion's rows are as old as the champion); unset: every row weighs the same")
    breach_window_days: int = Field(
        1, ge=1, le=365,
        description="window when performance breached the floor: older batches describe a concept that no longer holds",
    )
    holdout_fraction: float = Field(0.3, gt=0.05, lt=0.9)
    holdout: Literal["newest_nights", "sample"] = Field(
        "newest_nights",
        description="how the gate's holdout is drawn from the window: its newest batches, out of time (a candidate "
        "is judged on days it was not trained on, as it will serve; ADR 0013), or a hash-selected share of every "
        "batch. A window of one batch always uses the share.")
    final_fit: Literal["window", "training_rows"] = Field(
        "window",
        description="what the registered version is fitted on (ADR 0026): `window`, every row of the window, the "
        "gate's holdout included (the gate judged the same recipe fitted without the holdout; that fit is kept "
        "beside the version and answers for it on the holdout nights); `training_rows`, the model the gate judged, "
        "exactly (the newest nights of the window are then never learnt from)")
    accept_flagged_nights: list[dt.date] = Field(
        default_factory=list,
        description="nights a data-quality alarm flagged that may be learnt from all the same (ADR 0027): by "
        "default such a night leaves every training window, so that a candidate does not learn the fault")
    min_days_between: int = Field(
        3, ge=0, le=365, description="cooldown: days after a candidate before the same triggers train another")
    max_candidates_per_30_days: int = Field(4, ge=1, le=31, description="budget of candidates in any 30 days")
    max_quiet_candidates_per_30_days: int | None = Field(
        None, ge=0, le=31,
        description="of those, the candidates trained on quiet nights (no drift or performance trigger, no "
        "data-quality alarm: only growth, the refit's evidence or the scheduled refresh asked) in any 30 days: the "
        "monitoring budget of ADR 0012 (at most 2 model versions per 30 stable nights), enforced (ADR 0034). "
        "Onboarding writes 2; unset, quiet nights share `max_candidates_per_30_days` only (files written before)")
    estimator: EstimatorSpec


APPROVER = r"^[A-Za-z0-9_.@+-]{1,128}$"


class ApprovalPolicy(_Strict):
    """A named person approves every promotion (issue 35): a challenger that passes the gate (and its shadow
    nights) waits in Airflow's Required Actions (the standard provider's ApprovalOperator) in a DAG of its own,
    `<id>__approval`; the nightly DAG never waits. Reject and timeout never promote."""

    required: bool = Field(False, description="every promotion waits for an approval")
    approvers: list[str] = Field(
        [], description="the Airflow users who may answer (their user names); only they can approve or reject")
    timeout_hours: float = Field(
        72, gt=0, le=24 * 30, description="after this long without an answer the request ends as rejected "
        "(fractions allowed)")

    @model_validator(mode="after")
    def _named(self) -> ApprovalPolicy:
        if self.required and not self.approvers:
            raise ValueError("approval.required needs approvers: the Airflow users who may answer")
        for user in self.approvers:
            if not re.match(APPROVER, user):
                raise ValueError(f"approver {user!r} is not an Airflow user name")
        return self


class PromotionGate(_Strict):
    approval: ApprovalPolicy = Field(ApprovalPolicy(), description="a person approves each promotion (default off)")
    metric: Metric
    min_improvement: float = Field(0.0, ge=0, description="required gain over the champion on the same holdout")
    min_win_share: float | None = Field(
        None, ge=0.5, le=1.0, description="no longer used (ADR 0024 replaced the bootstrap win share with a paired "
        "test pooled over nights, `promotion.alpha`); accepted so that files written before still validate")
    alpha: float = Field(
        0.1, gt=0, lt=0.5,
        description="the chance, over the whole judging period, of promoting a challenger whose true gain does not "
        "exceed `min_improvement` (one-sided; split evenly over the looks: the gate and each shadow night)")
    detectable_gain: float | None = Field(
        None, gt=0,
        description="the gain worth finding, in the metric's units: the evidence is pooled until it could detect "
        "this gain (power 80%), then the challenger is promoted or retired. Unset: 0.02 for bounded metrics "
        "(ROC AUC, accuracy, F1, R²), 2% of the champion's error for error metrics (RMSE, MAE, MAPE)")
    shadow_nights: int = Field(
        0, ge=0, le=14,
        description="the fewest labelled nights after the gate a challenger is judged on before it may be promoted "
        "(ADR 0015, 0024): until then, and while the pooled evidence is not conclusive, it serves in shadow. 0 "
        "promotes at the gate when the holdout alone is conclusive. Onboarding writes 0 (ADR 0035; 2 before).")
    shadow_max_days: int = Field(
        14, ge=1, le=90,
        description="a challenger whose evidence is still not conclusive this many days after the gate is retired")

    @model_validator(mode="after")
    def _shadow_fits(self) -> PromotionGate:
        if self.shadow_nights and self.shadow_max_days <= self.shadow_nights:
            raise ValueError(f"shadow_max_days ({self.shadow_max_days}) must exceed shadow_nights "
                             f"({self.shadow_nights}): the labels of the shadow nights need time to arrive")
        return self


FairnessMetric = Literal["selection_rate", "true_positive_rate", "accuracy", "mean_absolute_error"]


class BaselinePolicy(_Strict):
    """The counterfactual baselines scored every night next to the champion, never served (ADR 0025)."""

    enabled: bool = Field(True, description="score the never-retrained model and a periodic refit every night, to "
                          "measure what operating the model added on the same labelled rows")
    refit_every_days: int = Field(7, ge=1, le=365, description="the periodic refit baseline: refit on the "
                                  "reference plus every label known so far every this many nights, no gate")


class FairnessPolicy(_Strict):
    """Largest allowed gap of a per-group metric between groups of each sensitive attribute."""

    metric: FairnessMetric = "selection_rate"
    max_gap: float = Field(0.2, gt=0)


# EU AI Act, Art. 19(1) and 26(6): logs of a high-risk system kept for at least six months
HIGH_RISK_MIN_RETENTION_DAYS = 183


class Governance(_Strict):
    owners: list[str] = Field(min_length=1)
    region: str = Field(pattern=r"^[a-z]{2}-[a-z]+-\d$")
    sensitive_attributes: list[str] = []
    fairness: FairnessPolicy | None = None
    retention_days: int = Field(365, ge=1)
    decision_log: str = ""
    risk_class: Literal["high", "limited", "minimal"] | None = Field(
        None, description="the risk class the client assigned (EU AI Act: high-risk systems, limited-risk "
        "transparency duties, minimal risk). `high` requires retention of at least 183 days (Art. 19, 26(6)) and "
        "an approval before every promotion (`promotion.approval`). Unset: not classified (the monitoring plan "
        "says so)")

    @model_validator(mode="after")
    def _high_risk_keeps_logs(self) -> Governance:
        if self.risk_class == "high" and self.retention_days < HIGH_RISK_MIN_RETENTION_DAYS:
            raise _FieldError("governance.retention_days",
                              f"{self.retention_days} days is too short for risk_class high: the EU AI Act (Art. 19(1), "
                              f"26(6)) asks for logs kept at least six months ({HIGH_RISK_MIN_RETENTION_DAYS} days)")
        return self


class Execution(_Strict):
    """Where the engagement's tasks run: a Celery queue and an Airflow pool per client keep one heavy
    client from starving the others (create the pool with `airflow pools set`; start workers with
    `airflow celery worker --queues NAME`). Empty means the deployment's defaults."""

    queue: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    pool: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")


class LabelsSource(_DatedFiles):
    """Ground truth that arrives after the predictions: one file per arrival night, joined on the id column.

    A label file holds the id column and the target. The nightly batch may then leave the target out.
    """

    source: Literal["files"] = "files"
    expected_delay_days: int = Field(3, ge=0, le=90, description="typical delay; nights younger are 'pending'")
    lookback_days: int = Field(60, ge=1, le=730, description="oldest prediction date a label may still belong to")


class SqlLabelsSource(_SqlRelation):
    """Ground truth in a database (ADR 0023): the rows of `table` whose `date_column` is the arrival night
    (or a `query` taking `:logical_date`), holding the id column and the target. Each night's rows are landed
    as a Parquet file under STEWARD_HOME/labels (kept as the raw input) and joined like a label file."""

    source: Literal["sql"]
    expected_delay_days: int = Field(3, ge=0, le=90, description="typical delay; nights younger are 'pending'")
    lookback_days: int = Field(60, ge=1, le=730, description="oldest prediction date a label may still belong to")
    format: Literal["parquet"] = Field("parquet", description="the landed copy's format (fixed)")


LabelsKind = Annotated[Annotated[LabelsSource, Tag("files")] | Annotated[SqlLabelsSource, Tag("sql")],
                       Discriminator(_source_kind)]


class PerformanceSLA(_Strict):
    """Realised performance (labels joined to the served predictions) over the last prediction dates."""

    threshold: float = Field(description="floor for higher-is-better metrics, ceiling for rmse/mae/mape")
    window_days: int = Field(3, ge=1, le=90, description="prediction dates with labels, pooled")
    min_labelled_rows: int = Field(100, ge=1)
    max_window_days: int = Field(
        30, ge=1, le=365, description="small label days: older prediction dates are pooled until min_labelled_rows")


class DeadlineSLA(_Strict):
    """A deadline counted from the run's scheduled time (its logical date), enforced by an Airflow Deadline Alert."""

    minutes_after_schedule: float = Field(gt=0, le=7 * 24 * 60)


class QuarantineSLA(_Strict):
    max_share: float = Field(0.2, ge=0, le=1, description="largest share of quarantined nights in the window")
    window_days: int = Field(7, ge=1, le=365)


class ServiceLevels(_Strict):
    performance: PerformanceSLA | None = None
    freshness: DeadlineSLA | None = Field(None, description="the batch must have landed by then")
    completion: DeadlineSLA | None = Field(None, description="the nightly run must have finished by then")
    quarantine: QuarantineSLA | None = None


Response = Literal["notify", "retrain", "rollback"]
Condition = Literal["performance", "freshness", "completion", "quarantine", "quality", "quality_warning", "drift",
                    "estimated_performance", "quality_drift"]


class Responses(_Strict):
    """What the system does by itself on each condition (every condition also notifies)."""

    performance: Response = "notify"
    quality: Literal["notify"] = "notify"
    quality_warning: Literal["notify"] = "notify"
    # data-quality drift (ADR 0027): `hold` notifies and trains no candidate for drift or a performance breach
    # while the alarm lasts (ADR 0034: growth, the schedule and the refit on unflagged dates still do); `notify` only
    # notifies. Either way the nights it flagged leave training windows unless accepted
    # (retraining.accept_flagged_nights): a retrain on a fault would learn the fault
    quality_drift: Literal["notify", "hold"] = "hold"
    drift: Literal["notify", "retrain"] = "notify"
    freshness: Literal["notify"] = "notify"
    completion: Literal["notify"] = "notify"
    quarantine: Literal["notify"] = "notify"
    # An estimate may warn early; it never retrains, promotes or rolls back on its own.
    estimated_performance: Literal["notify"] = "notify"


class SmtpChannel(_Strict):
    type: Literal["smtp"]
    conn_id: str = Field("smtp_default", pattern=r"^[A-Za-z0-9_.-]{1,250}$")
    to: list[str] = Field(min_length=1)
    from_email: str | None = Field(None, description="sender; default: the connection's from_email")


class SlackWebhookChannel(_Strict):
    type: Literal["slack_webhook"]
    conn_id: str = Field("slack_default", pattern=r"^[A-Za-z0-9_.-]{1,250}$")


AlertChannel = Annotated[SmtpChannel | SlackWebhookChannel, Field(discriminator="type")]


class Alerts(_Strict):
    """Channels beyond the local incident log (always written, so the embedded mode alerts offline).
    Credentials live in Airflow connections named here, never in this file."""

    channels: list[AlertChannel] = []
    max_attempts: int = Field(5, ge=1, le=50, description="per notification, across nights, before giving up")
    conditions: list[Condition] = ["performance", "freshness", "completion", "quarantine", "quality",
                                   "quality_warning", "drift", "estimated_performance", "quality_drift"]


class AdoptionFeedback(_DatedFiles):
    """Whether the client acted on each scored row: one file per night, the id column and `acted_column`
    (true/false, yes/no, 1/0), dated by the prediction date it answers."""

    acted_column: str = Field("acted", min_length=1)


class BusinessValue(_Strict):
    """What the model's decisions are worth to the client, from realised outcomes (steward.operations.value, ADR 0022).
    Binary classification: a value per true positive and a cost per false positive and false negative;
    regression: a cost per unit of absolute error. Pending labels are shown as pending, never guessed."""

    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    value_per_true_positive: float | None = Field(None, ge=0)
    cost_per_false_positive: float | None = Field(None, ge=0)
    cost_per_false_negative: float | None = Field(None, ge=0)
    cost_per_unit_error: float | None = Field(None, ge=0)
    minutes_saved_per_decision: float = Field(0, ge=0, le=24 * 60, description="per scored row (automated decision)")
    adoption: AdoptionFeedback | None = None


class Engagement(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(description="DAG id; lowercase letters, digits and underscores")
    client: str = Field(min_length=1, description="the client's display name (reports, portfolio)")
    client_defaults: str | None = Field(
        None, description="a client file (include/clients/<name>.yaml) whose values this file inherits and may "
        "override field by field (steward.clients)")
    use_case: str = Field(min_length=1, description="what the model decides, in the client's words")
    owner: str = Field(min_length=1, description="the DAG owner shown in Airflow")
    schedule: str = Field("0 2 * * *", description="cron expression")
    start_date: dt.date = Field(description="the first logical date (YYYY-MM-DD)")
    data: BatchSource = Field(description="where nightly batches come from: files (default), `sql`, `object_storage`")
    id_column: str = Field(description="the column that identifies a row (labels join on it)")
    target: str = Field(description="the column the model predicts")
    target_classes: list[ClassValue] | None = Field(
        None, min_length=2, description="classification: every value the target may take (label files are checked)")
    positive_class: ClassValue | None = Field(
        None, description="binary: the class that counts as positive (default 1 / true / 'yes' when present)")
    features: dict[str, FeatureType] = Field(min_length=1, description="the modelled columns and their kind")
    column_types: dict[str, ColumnType] | None = Field(
        None, alias="schema",
        description="how each column is read (steward.sources.schema); columns beyond the id, target and features are "
        "carried through, not modelled")
    problem_type: ProblemType
    quality: QualityPolicy = Field(QualityPolicy(), description="checks on every batch (Great Expectations) and "
                                   "data-quality drift")
    drift: DriftPolicy = Field(DriftPolicy(), description="feature drift against the reference (Evidently)")
    performance: PerformancePolicy = Field(description="the metric and threshold a labelled night is judged on")
    retraining: RetrainingPolicy = Field(description="what trains a candidate, on which rows, with which estimator")
    promotion: PromotionGate = Field(description="when a candidate replaces the champion")
    baselines: BaselinePolicy = Field(BaselinePolicy(), description="the counterfactuals scored every night, never "
                                      "served (ADR 0025)")
    governance: Governance = Field(description="owners, region, retention, fairness, the decision log")
    execution: Execution = Field(Execution(), description="retries, timeouts and pools of the nightly DAG")
    labels: LabelsKind | None = Field(None, description="late ground truth: files or a table (ADR 0008)")
    sla: ServiceLevels = Field(ServiceLevels(), description="promises to the client, each measured every night")
    responses: Responses = Field(Responses(), description="what each condition does: notify, retrain, rollback")
    alerts: Alerts = Field(Alerts(), description="channels (Airflow connection ids) and who is told what")
    business: BusinessValue | None = Field(None, description="what outcomes are worth (ADR 0022)")
    predictions: PredictionsOutput = Field(PredictionsOutput(), description="where predictions are written")

    @field_validator("id")
    @classmethod
    def _safe_id(cls, v: str) -> str:
        if not SAFE_ID.match(v):
            raise ValueError(f"{v!r} is not a safe name: use ^[a-z][a-z0-9_]{{1,62}}$")
        return v

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        fields = v.split()
        if v.startswith("@"):
            if v not in {"@daily", "@hourly", "@weekly", "@monthly"}:
                raise ValueError(f"unsupported preset {v!r}")
        elif len(fields) != 5 or not all(re.fullmatch(r"[\d*/,\-]+", f) for f in fields):
            raise ValueError(f"{v!r} is not a 5-field cron expression")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Engagement:
        is_clf = self.problem_type != "regression"
        name: str = self.retraining.estimator.name
        if isinstance(self.retraining.estimator, AdoptedSpec):  # the adopted estimator's own kind, checked at onboarding
            if is_clf != (self.retraining.estimator.kind == "classifier"):
                raise _FieldError("retraining.estimator.kind",
                                  f"the adopted model is a {self.retraining.estimator.kind}; problem_type is {self.problem_type}")
        elif is_clf and name not in CLASSIFIERS:
            raise _FieldError("retraining.estimator.name", f"{name} is a regressor; problem_type is {self.problem_type}")
        elif not is_clf and name not in REGRESSORS:
            raise _FieldError("retraining.estimator.name", f"{name} is a classifier; problem_type is regression")
        for field_name, metric in (("performance.metric", self.performance.metric), ("promotion.metric", self.promotion.metric)):
            if (metric in CLASSIFICATION_METRICS) != is_clf:
                raise _FieldError(field_name, f"{metric} does not apply to {self.problem_type}")
        if self.performance.metric == "roc_auc" and self.problem_type == "multiclass_classification":
            raise _FieldError("performance.metric", "roc_auc is only supported for binary classification")
        if self.target in self.features or self.id_column in self.features:
            raise _FieldError("features", "must not contain the target or the id column")
        known = set(self.features) | {self.id_column, self.target} | set(self.column_types or {})
        for col in self.quality.columns:
            if col not in known:
                raise _FieldError(f"quality.columns.{col}", "is not a feature, the id column, the target or a schema column")
        self._check_schema()
        self._check_classes()
        for col in self.drift.per_feature:
            if col not in self.features:
                raise _FieldError(f"drift.per_feature.{col}", "is not a declared feature")
        fairness = self.governance.fairness
        if fairness is not None:
            if not self.governance.sensitive_attributes:
                raise _FieldError("governance.fairness", "needs governance.sensitive_attributes")
            if (fairness.metric == "mean_absolute_error") == is_clf:
                raise _FieldError("governance.fairness.metric", f"{fairness.metric} does not apply to {self.problem_type}")
            if fairness.metric in {"selection_rate", "true_positive_rate"} and self.problem_type != "binary_classification":
                raise _FieldError("governance.fairness.metric", f"{fairness.metric} needs binary classification")
        if self.responses.performance != "notify" and self.sla.performance is None:
            raise _FieldError("responses.performance", f"'{self.responses.performance}' needs sla.performance")
        if self.responses.performance == "retrain" and "performance" not in self.retraining.triggers:
            raise _FieldError("responses.performance", "'retrain' needs 'performance' in retraining.triggers")
        for col in self.governance.sensitive_attributes:
            if col not in self.features:
                raise _FieldError("governance.sensitive_attributes", f"{col!r} is not a declared feature")
        if self.governance.risk_class == "high" and not self.promotion.approval.required:
            raise _FieldError("promotion.approval.required", "risk_class high needs an approval before every "
                              "promotion: set required: true and name the approvers")
        self._check_business()
        return self

    def _check_business(self) -> None:
        b = self.business
        if b is None:
            return
        confusion = {"value_per_true_positive": b.value_per_true_positive,
                     "cost_per_false_positive": b.cost_per_false_positive,
                     "cost_per_false_negative": b.cost_per_false_negative}
        if self.problem_type == "regression":
            for name, value in confusion.items():
                if value is not None:
                    raise _FieldError(f"business.{name}", "counts classification outcomes; problem_type is regression "
                                      "(use cost_per_unit_error)")
            if b.cost_per_unit_error is None:
                raise _FieldError("business.cost_per_unit_error", "is required for regression")
            return
        if b.cost_per_unit_error is not None:
            raise _FieldError("business.cost_per_unit_error", f"applies to regression; problem_type is {self.problem_type}")
        if self.problem_type != "binary_classification":
            raise _FieldError("business", "values per outcome need binary classification (true/false positives)")
        missing = [name for name, value in confusion.items() if value is None]
        if missing:
            raise _FieldError(f"business.{missing[0]}", "is required for binary classification (0 when it has none)")

    def _check_schema(self) -> None:
        types = self.column_types
        if types is None:
            return
        for col in [self.id_column, self.target, *self.features]:
            if col not in types:
                raise _FieldError(f"schema.{col}", "is missing: the schema must give the type of the id, the target "
                                  "and every feature")
        for col, kind in self.features.items():
            if kind == "numeric" and types[col] not in {"integer", "float"}:
                raise _FieldError(f"schema.{col}", f"{types[col]} cannot be a numeric feature (integer or float)")
            if types[col] in {"date", "timestamp"}:
                raise _FieldError(f"features.{col}", f"a {types[col]} column is carried, not modelled")
        if self.problem_type == "regression" and types[self.target] not in {"integer", "float"}:
            raise _FieldError(f"schema.{self.target}", "a regression target must be integer or float")

    def _check_classes(self) -> None:
        if self.target_classes is None and self.positive_class is None:
            return
        if not self.is_classification:
            raise _FieldError("target_classes", "applies to classification only")
        classes = self.classes
        if classes is not None and len(set(map(str, classes))) != len(classes):
            raise _FieldError("target_classes", "lists a class twice")
        if self.problem_type == "binary_classification" and classes is not None and len(classes) != 2:
            raise _FieldError("target_classes", f"binary classification needs exactly 2 classes, got {len(classes)}")
        if self.positive_class is not None:
            if self.problem_type != "binary_classification":
                raise _FieldError("positive_class", "applies to binary classification only")
            if classes is not None and str(self.positive_class) not in map(str, classes):
                raise _FieldError("positive_class", f"{self.positive_class!r} is not one of {classes}")
        elif self.problem_type == "binary_classification" and classes is not None and _default_positive(classes) is None:
            raise _FieldError("positive_class", f"say which of {classes} is the positive class")

    # --- derived, read-only views -------------------------------------------------------------
    @property
    def classes(self) -> list[ClassValue] | None:
        """The target's classes: `target_classes`, else the target's allowed values in the quality rules."""
        if not self.is_classification:
            return None
        if self.target_classes is not None:
            return list(self.target_classes)
        for rules in self.quality.rules_for(self.target):
            if rules.allowed_values is not None:  # a classification target's allowed values are its classes
                return cast(list[ClassValue], list(rules.allowed_values))
        return None

    @property
    def positive(self) -> ClassValue:
        """The positive class of a binary target (1 when nothing says otherwise)."""
        if self.positive_class is not None:
            return self.positive_class
        return _default_positive(self.classes or [0, 1]) or 1

    @property
    def modelled_columns(self) -> list[str]:
        return [self.id_column, *self.features, self.target]

    @property
    def carried_columns(self) -> list[str]:
        """Schema columns that are neither the id, the target nor a feature: read, checked, not modelled."""
        return [c for c in (self.column_types or {}) if c not in self.modelled_columns]

    @property
    def numeric_features(self) -> list[str]:
        return [c for c, t in self.features.items() if t == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        return [c for c, t in self.features.items() if t == "categorical"]

    @property
    def batch_columns(self) -> list[str]:
        """Columns a nightly batch carries: the target only when labels do not arrive separately."""
        return [self.id_column, *self.features, *([] if self.labels else [self.target]), *self.carried_columns]

    @property
    def is_classification(self) -> bool:
        return self.problem_type != "regression"

    @property
    def registered_model_name(self) -> str:
        return f"steward.{self.id}"

    def batch_filename(self, logical_date: dt.date) -> str:
        return self.data.pattern.format(date=logical_date.isoformat())


_POSITIVE_WORDS = ("1", "true", "yes", "y", "positive", "pos")


def _default_positive(classes: list[ClassValue]) -> ClassValue | None:
    """1, true or a yes-like word among two classes; None when the classes do not say."""
    for word in _POSITIVE_WORDS:
        for c in classes:
            if str(c).strip().lower() == word:
                return c
    return None


class _FieldError(ValueError):
    """Raised inside validators to name the exact field in a cross-field check."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def config_hash(path: Path) -> str:
    """The engagement's configuration hash: its file's sha256, or, when it inherits client defaults, the sha256
    of every file it is made of (steward.clients.config_sources), so a change to a client file changes it."""
    from steward import clients

    sources = clients.config_sources(path)
    if len(sources) == 1:
        return sources[0].sha256
    listing = json.dumps([[s.name, s.sha256] for s in sources], separators=(",", ":"))
    return hashlib.sha256(listing.encode()).hexdigest()


def _safe_load_without_aliases(text: str) -> Any:
    """YAML's safe subset without anchors/aliases: an alias bomb is refused before anything expands.

    libyaml's C parser does both passes (the event scan, then the load): a tenth of the pure-Python loader's
    time, which every task pays when it parses its DAG file.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not allowed in engagement files", event.start_mark
            )
    return yaml.load(text, Loader=loader)  # noqa: S506 - libyaml's SafeLoader


def _loc(loc: tuple) -> str:
    """Dotted field path as written in YAML: pydantic inserts the union tag after 'estimator'."""
    parts = [str(p) for i, p in enumerate(loc) if not (i and loc[i - 1] == "estimator" and p in CLASSIFIERS | REGRESSORS | {"adopted"})
             and not (i and loc[i - 1] in ("data", "labels") and p in ("files", "sql", "object_storage"))]
    return ".".join(parts) if parts else "(root)"


def read_mapping(path: Path) -> tuple[dict[str, Any], bytes]:
    """Read a YAML file of fields (an engagement or a client file) safely: size-capped, UTF-8, no aliases.

    Raises:
        EngagementConfigError: naming the file and where it is unreadable.
    """
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise EngagementConfigError(path, "(file)", f"cannot read: {exc.strerror or exc}") from None
    if len(raw_bytes) > MAX_CONFIG_BYTES:
        raise EngagementConfigError(path, "(file)", f"larger than {MAX_CONFIG_BYTES} bytes")
    try:
        raw = _safe_load_without_aliases(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError:
        raise EngagementConfigError(path, "(file)", "is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}" if mark else "(yaml)"
        raise EngagementConfigError(path, where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(raw, dict):
        raise EngagementConfigError(path, "(root)", "must be a mapping of fields")
    return raw, raw_bytes


def load_engagement(path: Path | str) -> Engagement:
    """Read and validate one engagement file, with the client defaults it names (steward.clients).

    Raises:
        EngagementConfigError: naming the file (the engagement's, or the client file a bad value came from)
        and the first invalid field.
    """
    from steward import clients

    path = Path(path)
    raw, _ = read_mapping(path)
    merged, origin = clients.resolve(path, raw)
    try:
        engagement = Engagement.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        ctx_err = (err.get("ctx") or {}).get("error")
        field, message = ((ctx_err.field, str(ctx_err).split(": ", 1)[1]) if isinstance(ctx_err, _FieldError)
                          else (_loc(err["loc"]), err["msg"]))
        raise EngagementConfigError(clients.source_of(field, origin, path), field, message) from None
    if engagement.id != path.stem:
        raise EngagementConfigError(path, "id", f"{engagement.id!r} must match the file name {path.stem!r}")
    return engagement


def discover(engagements_dir: Path) -> list[Path]:
    """Engagement files in name order (hidden files and templates starting with '_' are skipped)."""
    return sorted(p for p in engagements_dir.glob("*.yaml") if not p.name.startswith(("_", ".")))


def load_all(engagements_dir: Path) -> tuple[dict[str, Engagement], list[EngagementConfigError]]:
    """Load every engagement; bad files are returned as errors and never stop the good ones."""
    good: dict[str, Engagement] = {}
    errors: list[EngagementConfigError] = []
    for path in discover(engagements_dir):
        try:
            eng = load_engagement(path)
        except EngagementConfigError as exc:
            errors.append(exc)
            continue
        good[eng.id] = eng
    return good, errors
