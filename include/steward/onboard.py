"""`steward onboard`: profile a reference dataset and write a complete, commented engagement file.

Everything is checked before anything is written: a bad dataset gets an OnboardError saying what is
wrong and what to do, and the engagements folder and the data root stay untouched.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.config import SAFE_ID, load_engagement

if TYPE_CHECKING:
    import pandas as pd

MAX_CATEGORIES = 20
REGRESSION_MIN_UNIQUE = 20


class OnboardError(ValueError):
    """The dataset or the request cannot become an engagement; the message says why and what to do."""


@dataclass
class Request:
    data: Path
    target: str
    engagement_id: str
    client: str
    use_case: str
    owner: str
    sensitive: list[str]
    id_column: str | None
    region: str
    start_date: dt.date
    force: bool = False


def read_reference(path: Path, progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Read CSV in chunks (reporting bytes read) or Parquet; parse errors become OnboardError."""
    import pandas as pd

    if not path.is_file():
        raise OnboardError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise OnboardError(f"{path}: expected a .csv or .parquet file")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        total = path.stat().st_size
        if total == 0:
            raise OnboardError(f"{path} is empty (0 bytes): export the reference data with a header row and rows")
        chunks = []
        with path.open("rb") as fh:
            for chunk in pd.read_csv(fh, chunksize=200_000, low_memory=False):
                chunks.append(chunk)
                if progress:
                    progress(fh.tell(), total)
        return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()
    except OnboardError:
        raise
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise OnboardError(f"{path}: cannot be parsed as {suffix[1:]}: {str(exc).splitlines()[0]}") from None


def _mixed_types(series: pd.Series) -> tuple[str, str] | None:
    """A text column where some values are numbers and others are not (a typical broken export)."""
    import pandas as pd

    values = series.dropna().astype(str)
    if values.empty:
        return None
    numeric = pd.to_numeric(values, errors="coerce")
    share = numeric.notna().mean()
    if 0.05 <= share <= 0.95:
        return values[numeric.notna()].iloc[0], values[numeric.isna()].iloc[0]
    return None


def check(df: pd.DataFrame, req: Request) -> None:
    import pandas as pd

    if not SAFE_ID.match(req.engagement_id):
        raise OnboardError(f"--id {req.engagement_id!r} is not a safe name: use lowercase letters, digits and "
                           "underscores, starting with a letter (e.g. churn_acme)")
    if len(df) == 0:
        raise OnboardError(f"{req.data} has a header but no rows: export the reference data with its rows")
    if req.target not in df.columns:
        raise OnboardError(f"target column {req.target!r} is not in {req.data} (columns: {', '.join(map(str, df.columns))}); "
                           "pass --target with one of them")
    labels = df[req.target].dropna()
    if labels.nunique() < 2:
        only = labels.iloc[0] if len(labels) else "nothing (all empty)"
        raise OnboardError(f"target {req.target!r} has a single value ({only}): there is nothing to learn; "
                           "use reference data that contains every outcome")
    for col in df.columns:
        if df[col].isna().all():
            raise OnboardError(f"column {col!r} is entirely empty: drop it from the reference data or fill it")
        if df[col].dtype == object and not pd.api.types.is_numeric_dtype(df[col]):
            mixed = _mixed_types(df[col])
            if mixed:
                raise OnboardError(f"column {col!r} mixes numbers and text (e.g. {mixed[0]!r} and {mixed[1]!r}): "
                                   "clean the export so each column has one type")
    for col in req.sensitive:
        if col not in df.columns or col in {req.target, req.id_column}:
            raise OnboardError(f"--sensitive {col!r} is not a feature column of {req.data}")
    if req.id_column is not None and req.id_column not in df.columns:
        raise OnboardError(f"--id-column {req.id_column!r} is not in {req.data}")


def find_id_column(df: pd.DataFrame, target: str) -> str:
    for col in df.columns:
        name = str(col).lower()
        if col != target and (name == "id" or name.endswith("_id") or name.endswith("id")) and df[col].is_unique \
                and df[col].notna().all():
            return str(col)
    raise OnboardError("no id column found (a unique, never-empty column named like 'id' or '*_id'): "
                       "pass --id-column")


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(float(v), 4)


def infer(df: pd.DataFrame, req: Request) -> dict[str, Any]:
    import pandas as pd

    id_column = req.id_column or find_id_column(df, req.target)
    y = df[req.target].dropna()
    numeric_target = pd.api.types.is_numeric_dtype(y)
    if numeric_target and y.nunique() > REGRESSION_MIN_UNIQUE:
        problem = "regression"
    else:
        problem = "binary_classification" if y.nunique() == 2 else "multiclass_classification"
    features: dict[str, str] = {}
    columns: dict[str, dict[str, Any]] = {id_column: {"not_null": True, "unique": True}}
    for col in df.columns:
        if col in {id_column, req.target}:
            continue
        s = df[col]
        kind = "numeric" if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) else "categorical"
        features[str(col)] = kind
        rules: dict[str, Any] = {}
        null_share = float(s.isna().mean())
        if null_share == 0:
            rules["not_null"] = True
        else:
            rules["max_null_share"] = round(min(1.0, null_share * 2 + 0.01), 4)
        if kind == "numeric":
            lo, hi = float(s.min()), float(s.max())
            margin = (hi - lo) * 0.25 or abs(hi) * 0.25 or 1.0
            rules["min"] = _num(max(0.0, lo - margin) if lo >= 0 else lo - margin)
            rules["max"] = _num(hi + margin)
        elif s.nunique() <= MAX_CATEGORIES:
            rules["allowed_values"] = sorted(map(str, s.dropna().unique()))
        columns[str(col)] = rules
    if problem != "regression":
        values = sorted(y.unique().tolist())
        columns[req.target] = {"allowed_values": [v.item() if hasattr(v, "item") else v for v in values]}
    return {"id_column": id_column, "problem_type": problem, "features": features, "columns": columns,
            "rows": len(df), "target_std": float(y.std()) if problem == "regression" else None}


def _yaml_value(v: Any) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    return str(v)


def render(req: Request, inferred: dict[str, Any], reference_name: str) -> str:
    problem = inferred["problem_type"]
    if problem == "binary_classification":
        metric, threshold, kind, estimator, margin = "roc_auc", 0.7, "floor", "random_forest_classifier", 0.005
    elif problem == "multiclass_classification":
        metric, threshold, kind, estimator, margin = "accuracy", 0.6, "floor", "random_forest_classifier", 0.005
    else:
        std = inferred["target_std"] or 1.0
        metric, threshold, kind, estimator, margin = "rmse", round(std, 4), "ceiling", "random_forest_regressor", 0.0
    feature_lines = "\n".join(f"  {name}: {kind_}" for name, kind_ in inferred["features"].items())
    column_lines = "\n".join(
        f"    {name}: {{{', '.join(f'{k}: {_yaml_value(v)}' for k, v in rules.items())}}}"
        for name, rules in inferred["columns"].items() if rules
    )
    sensitive = _yaml_value(req.sensitive)
    fairness = ("\n  fairness: {metric: selection_rate, max_gap: 0.2}   # promotion refused above this gap"
                if req.sensitive and problem == "binary_classification" else "")
    today = dt.date.today().isoformat()
    return f"""# {req.client}: {req.use_case}
# Written by `steward onboard` on {today} from {req.data.name} ({inferred['rows']} rows). Review the
# inferred values (types, ranges, thresholds), then commit. `steward validate-config` checks this file.
id: {req.engagement_id}
client: {_yaml_value(req.client)}
use_case: {_yaml_value(req.use_case)}
owner: {_yaml_value(req.owner)}
schedule: "0 2 * * *"           # nightly at 02:00 UTC
start_date: {req.start_date.isoformat()}   # first night that can run or be backfilled

data:
  directory: {req.engagement_id}/incoming   # nightly batches land here, under the data root
  pattern: "{{date}}.csv"
  format: csv
  reference: {req.engagement_id}/{reference_name}

id_column: {inferred['id_column']}
target: {req.target}
problem_type: {problem}   # inferred from the target
features:                 # inferred: numeric dtype -> numeric, anything else -> categorical
{feature_lines}

quality:
  row_count: {{min: 1}}     # set min/max to the expected nightly volume
  allow_extra_columns: false
  columns:                # from the reference: ranges widened by 25% of the span, categories as seen,
                          # null shares bounded at twice the reference's
{column_lines}

drift:
  stattest: wasserstein   # numeric features; categorical ones use Jensen-Shannon
  threshold: 0.1
  drift_share: 0.5        # half the features drifting counts as dataset drift

performance:
  metric: {metric}
  threshold: {threshold}   # {kind}{' (the std of the target: worse than predicting the mean)' if kind == 'ceiling' else ''}
  min_labelled_rows: 100

retraining:
  triggers: [drift, performance, schedule]
  refresh_every_days: 7
  window_days: 7
  breach_window_days: 1
  holdout_fraction: 0.3
  estimator:
    name: {estimator}
    params: {{n_estimators: 100, min_samples_leaf: 2}}

promotion:
  metric: {metric}
  min_improvement: {margin}

governance:
  owners: [{_yaml_value(req.owner)}]
  region: {req.region}
  sensitive_attributes: {sensitive}{fairness}
  retention_days: 365
  decision_log: |
    {today} Onboarded with `steward onboard` from {req.data.name}.
"""


def onboard(req: Request, engagements_dir: Path, data_root: Path,
            progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Validate, infer, render, check the result parses, then write the YAML and copy the reference."""
    target_yaml = engagements_dir / f"{req.engagement_id}.yaml"
    if not SAFE_ID.match(req.engagement_id):
        check(_empty(), req)  # raises the unsafe-id message
    if target_yaml.exists() and not req.force:
        raise OnboardError(f"{target_yaml} already exists: pass --force to overwrite it")
    df = read_reference(req.data, progress)
    check(df, req)
    inferred = infer(df, req)
    reference_name = f"reference{req.data.suffix.lower()}"
    text = render(req, inferred, reference_name)
    with tempfile.TemporaryDirectory() as tmp:  # prove the file parses before writing anything
        probe = Path(tmp) / target_yaml.name
        probe.write_text(text)
        eng = load_engagement(probe)
    reference_target = data_root / req.engagement_id / reference_name
    reference_target.parent.mkdir(parents=True, exist_ok=True)
    (data_root / req.engagement_id / "incoming").mkdir(exist_ok=True)
    shutil.copyfile(req.data, reference_target)
    engagements_dir.mkdir(parents=True, exist_ok=True)
    tmp_yaml = target_yaml.with_suffix(".yaml.tmp")
    tmp_yaml.write_text(text)
    tmp_yaml.replace(target_yaml)
    return {"path": str(target_yaml), "reference": str(reference_target), "problem_type": eng.problem_type,
            "features": len(eng.features), "id_column": eng.id_column, "rows": inferred["rows"]}


def _empty() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame()
