"""`steward onboard`: profile a reference dataset and write a complete, commented engagement file.

Everything is checked before anything is written: a bad dataset or request gets an OnboardError saying
what is wrong and what to do, and the engagements folder and the data root stay untouched.

Column types come from `steward.sources.schema.infer_type` on the raw text of the reference (and of the sample
batches, when given): the same module reads every nightly batch with the types written here, so what
onboarding saw is what the reader reads (booleans, integers with nulls, dates, timestamps, ids ...).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward import clients
from steward.config import (
    SAFE_ID,
    EngagementConfigError,
    LabelsSource,
    _default_positive,
    load_engagement,
    read_mapping,
)
from steward.sources import schema

if TYPE_CHECKING:
    import pandas as pd

MAX_CATEGORIES = 50           # more distinct values than this: carried, not a feature
CATEGORY_SHARE = 0.2          # ... or more distinct values than this share of the rows
REGRESSION_MIN_UNIQUE = 20
FREE_TEXT_CHARS = 40          # mean length of a text column above which it is free text
BROKEN_NULL_RISE = 0.5         # a null share this far above the reference's quarantines: the column is broken
TOLERANCE = 0.95              # GX `mostly` of the quarantine tier for feature values; any bad row warns
DATE_IN_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")
DEFAULT_CLIENT = "TBD client"   # the CLI's defaults: `--like` fills them from the engagement it names
DEFAULT_OWNER = "owner@example.invalid"


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
    labels: str | None = None            # folder where label files arrive (absolute, or under the data root)
    label_delay: int | None = None       # nights between a batch and its labels
    rows_per_night: int | None = None    # expected nightly volume
    batches: Path | None = None          # a folder of sample nightly batches
    client_defaults: str | None = None   # a client file (include/clients/<name>.yaml) to inherit from
    inherited: frozenset[str] = frozenset()  # dotted fields the client file gives: not written again
    sql: SqlTable | None = None          # a database table instead of files (steward onboard --sql)
    like: Path | None = None             # an existing engagement file whose conventions the new one takes
    owners: list[str] | None = None      # governance owners (default: [owner]); --like takes them
    retention_days: int = 365
    label_delay_source: str = "--label-delay"
    model: str | None = None             # a pipeline to adopt as champion v1: a skops file or models:/ URI (ADR 0032)
    trust: tuple[str, ...] = ()          # types a person reviewed for that model (--trust)
    adopted_by: str = ""                 # who adopted it (the CLI: the OS user)


@dataclasses.dataclass(frozen=True)
class SqlTable:
    """Where a SQL engagement's nights come from, and what onboarding read of them (sql_source.sample_table)."""

    conn_id: str
    table: str
    date_column: str
    counts: list[int]
    nights: list[str]


def from_table(req: Request, engine: Any, conn_id: str, table: str, date_column: str | None, workdir: Path) -> Request:
    """The request for an engagement on a database table: its latest nights become the reference (written
    as Parquet in `workdir`, then copied under the data root like any reference) and their row counts give
    the expected volume."""
    from steward.sources import sql_source

    try:
        sample = sql_source.sample_table(engine, table, date_column)
    except (sql_source.SqlSourceError, sql_source.SqlSourceUnavailableError) as exc:
        raise OnboardError(f"--sql {conn_id} --table {table}: {exc}") from None
    reference = workdir / "reference.parquet"
    sample["frame"].to_parquet(reference, index=False)
    return dataclasses.replace(req, data=reference, sql=SqlTable(conn_id, table, sample["date_column"],
                                                                 sample["counts"], sample["nights"]))


def read_reference(path: Path, progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The reference as raw text (CSV, read in chunks reporting bytes read) or Parquet; errors become
    OnboardError."""
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
            for chunk in schema.read_raw_csv(fh, chunksize=200_000, low_memory=False):
                chunks.append(chunk)
                if progress:
                    progress(fh.tell(), total)
        return pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()
    except OnboardError:
        raise
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise OnboardError(f"{path}: cannot be parsed as {suffix[1:]}: {str(exc).splitlines()[0]}") from None


def _type_of(series: pd.Series) -> str:
    """The schema type of a column: inferred from its text (CSV), or from Parquet's own dtype."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "timestamp"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "date" if (series.dropna().dt.normalize() == series.dropna()).all() else "timestamp"
    return schema.infer_type(series)


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
        if df[col].dtype == object:
            mixed = _mixed_types(df[col])
            if mixed:
                raise OnboardError(f"column {col!r} mixes numbers and text (e.g. {mixed[0]!r} and {mixed[1]!r}): "
                                   "clean the export so each column has one type")
    for col in req.sensitive:
        if col not in df.columns or col in {req.target, req.id_column}:
            raise OnboardError(f"--sensitive {col!r} is not a feature column of {req.data}")
    if req.id_column is not None and req.id_column not in df.columns:
        raise OnboardError(f"--id-column {req.id_column!r} is not in {req.data}")
    if req.label_delay is not None and not 0 <= req.label_delay <= 90:
        raise OnboardError(f"--label-delay {req.label_delay} must be between 0 and 90 nights")
    if req.label_delay is not None and req.labels is None:
        raise OnboardError("--label-delay needs --labels DIR (the folder where the label files arrive)")
    if req.rows_per_night is not None and req.rows_per_night < 1:
        raise OnboardError(f"--rows-per-night {req.rows_per_night} must be at least 1")


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


def _class_value(v: Any) -> Any:
    v = v.item() if hasattr(v, "item") else v
    return _num(v) if isinstance(v, float) else v


def column_role(typed: pd.Series, kind: str) -> tuple[str | None, str]:
    """(feature kind or None, why) for a column that is neither the id nor the target."""
    values = typed.dropna()
    distinct = int(values.nunique())
    if distinct <= 1:
        return None, "constant in the reference: nothing to learn from"
    if kind in {"date", "timestamp"}:
        return None, f"a {kind}: carried through, not modelled (derive features from it upstream)"
    if kind in {"integer", "float"}:
        return "numeric", ""
    if kind == "boolean":
        return "categorical", ""
    text = values.astype(str)
    if text.str.len().mean() > FREE_TEXT_CHARS:
        return None, "free text: carried through, not modelled"
    if distinct > MAX_CATEGORIES or distinct > CATEGORY_SHARE * len(values):
        return None, f"high-cardinality text ({distinct} distinct values): carried through, not modelled"
    return "categorical", ""


def infer(raw: pd.DataFrame, req: Request, samples: pd.DataFrame | None = None) -> dict[str, Any]:
    """Types, roles, problem type and expectations from the reference (and sample batches' text)."""
    import pandas as pd

    id_column = req.id_column or find_id_column(raw, req.target)
    both = raw if samples is None else pd.concat([raw, samples[[c for c in samples.columns if c in raw.columns]]],
                                                 ignore_index=True)
    types = {str(c): _type_of(both[c]) for c in raw.columns}
    types[id_column] = "string"  # ids are names, never numbers: 00123 stays 00123
    df = schema.cast(raw, types)
    y = df[req.target].dropna()
    numeric_target = types[req.target] in {"integer", "float"}
    if numeric_target and y.nunique() > REGRESSION_MIN_UNIQUE:
        problem = "regression"
    else:
        problem = "binary_classification" if y.nunique() == 2 else "multiclass_classification"
    features: dict[str, str] = {}
    carried: dict[str, str] = {}
    columns: dict[str, dict[str, Any]] = {id_column: {"not_null": True, "unique": True}}
    for col in df.columns:
        col = str(col)
        if col in {id_column, req.target}:
            continue
        kind, why = column_role(df[col], types[col])
        if kind is None:
            if col in req.sensitive:
                raise OnboardError(f"--sensitive {col!r} cannot be a feature: {why}")
            carried[col] = why
            continue
        features[col] = kind
        columns[col] = _feature_rules(df[col], kind, types[col])
    if not features:
        raise OnboardError(f"no column of {req.data} can be a feature (every column is the id, the target, "
                           f"constant, a date or free text): {carried}")
    classes = None
    if problem != "regression":
        classes = sorted((_class_value(v) for v in y.unique()), key=lambda v: (str(type(v)), v))
        if req.labels is None:  # the batch carries the target: its classes are checked like a column
            columns[req.target] = {"allowed_values": classes}
    return {"id_column": id_column, "problem_type": problem, "features": features, "columns": columns,
            "types": types, "carried": carried, "classes": classes,
            "positive": _positive(y, classes) if problem == "binary_classification" else None,
            "rows": len(df), "target_std": float(y.astype(float).std()) if problem == "regression" else None}


def _feature_rules(s: pd.Series, kind: str, type_: str) -> dict[str, Any] | list[dict[str, Any]]:
    """Feature expectations. Nulls and unseen categories: any bad row warns, more than 1 - TOLERANCE of the
    rows quarantines. Numeric ranges only warn (a colder month is data, not an error): values outside the
    reference's range widened by 25% of its span. A column whose reference minimum is exactly 0 (a count,
    an amount, a duration) also has a quarantine tier at 0: a negative value there is a broken export.
    (A column that merely happened to stay positive, like a dew point in January, gets no such tier.)"""
    rules: dict[str, Any] = {}
    null_share = float(s.isna().mean())
    if null_share == 0:
        rules["not_null"] = True
    else:
        # a hard cap for what is broken; a rate that merely rose is judged by quality.rates (ADR 0027)
        rules["max_null_share"] = round(min(1.0, null_share + BROKEN_NULL_RISE), 4)
    warn_range: dict[str, Any] | None = None
    if kind == "numeric":
        lo, hi = float(s.min()), float(s.max())
        margin = (hi - lo) * 0.25 or abs(hi) * 0.25 or 1.0
        warn_range = {"min": _num(max(0.0, lo - margin) if lo >= 0 else lo - margin), "max": _num(hi + margin),
                      "severity": "warn"}
        if lo == 0:
            rules["min"] = 0
    elif type_ != "boolean":  # a boolean's values are checked by its type
        rules["allowed_values"] = sorted(str(v) for v in s.dropna().unique())
    if set(rules) - {"max_null_share"}:
        rules.update(mostly=TOLERANCE, warn_mostly=1.0)
    return [rules, warn_range] if warn_range else rules


def _positive(y: pd.Series, classes: list[Any] | None) -> Any:
    """1, true or a yes-like class when there is one; else the rarer class (the event being predicted)."""
    named = _default_positive(classes or [])
    if named is not None:
        return named
    counts = y.map(str).value_counts()
    rarer = counts.index[-1]
    return next(c for c in classes or [] if str(c) == rarer)


# --- nightly files: batches and labels --------------------------------------------------------------


def _dated_files(folder: Path) -> tuple[list[Path], str]:
    """The dated files of a folder and their name pattern ('{date}.csv', 'batch_{date}.csv' ...)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and DATE_IN_NAME.search(p.name))
    patterns = {DATE_IN_NAME.sub("{date}", p.name, count=1) for p in files}
    if len(patterns) > 1:
        raise OnboardError(f"{folder}: files are named in more than one way ({', '.join(sorted(patterns))}): "
                           "keep one pattern per folder")
    return files, (patterns.pop() if patterns else "{date}.csv")


def read_samples(req: Request) -> tuple[pd.DataFrame, list[int], str]:
    """The sample batches (as raw text), their row counts and their file pattern."""
    import pandas as pd

    folder = req.batches
    assert folder is not None
    if not folder.is_dir():
        raise OnboardError(f"--batches {folder}: not a folder")
    files, pattern = _dated_files(folder)
    files = [f for f in files if f.suffix.lower() == ".csv"]
    if not files:
        raise OnboardError(f"--batches {folder}: no dated .csv files (names like 2026-03-01.csv)")
    frames, counts = [], []
    for f in files:
        try:
            frame = schema.read_raw_csv(f, low_memory=False)
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise OnboardError(f"sample batch {f} cannot be parsed as csv: {str(exc).splitlines()[0]}") from None
        frames.append(frame)
        counts.append(len(frame))
    return pd.concat(frames, ignore_index=True), counts, pattern


def row_bounds(req: Request, counts: list[int] | None) -> tuple[dict[str, int], str]:
    """Expected nightly volume -> row-count bounds (a quarter of the low end to 4x the high end)."""
    if req.rows_per_night is not None:
        n = req.rows_per_night
        return {"min": max(1, n // 4), "max": n * 4}, f"--rows-per-night {n}"
    if counts:
        lo, hi = min(counts), max(counts)
        return ({"min": max(1, lo // 4), "max": max(hi * 4, 10)},
                f"{len(counts)} sample batches of {lo} to {hi} rows")
    return {"min": 1}, "no expected volume given: set min/max to the expected nightly volume"


WINDOW_NIGHTS = 90  # an expanding window keeps about this many nights beyond the reference's rows
MIN_WINDOW_ROWS, MAX_WINDOW_ROWS = 2_000, 1_000_000


def training_rows(reference_rows: int, median_rows: int | None) -> tuple[int, str]:
    """The cap of the expanding training window, from the volume onboarding sees (ADR 0024): the reference's
    rows plus about WINDOW_NIGHTS nights at the median nightly volume, within MIN/MAX_WINDOW_ROWS."""
    nightly = median_rows or 0
    rows = min(max(reference_rows + WINDOW_NIGHTS * nightly, MIN_WINDOW_ROWS), MAX_WINDOW_ROWS)
    if not nightly:
        return rows, f"the reference's {reference_rows} rows (no nightly volume seen: set it)"
    return rows, f"the reference's {reference_rows} rows + about {WINDOW_NIGHTS} nights of {nightly}"


GROWTH_NIGHTS = 14  # trigger `growth` asks for a candidate about every two weeks of labels at go-live volume
MIN_GROWTH_FACTOR, MAX_GROWTH_FACTOR = 0.25, 0.5


def growth_factor(reference_rows: int, median_rows: int | None) -> tuple[float, str]:
    """`retraining.growth_factor` from the volume onboarding sees (ADR 0034): the share of the rows learnt that
    about GROWTH_NIGHTS nights bring, between MIN_GROWTH_FACTOR and MAX_GROWTH_FACTOR (half again). On 30
    applications a night against a reference of 1,200, waiting for the data to double put the first candidate 45
    nights out; at volume, the refit period and the quiet-night budget bound it. The factor is of the rows
    learnt, so candidates come ever more slowly."""
    nightly = median_rows or 0
    if not nightly or not reference_rows:
        return MAX_GROWTH_FACTOR, "half again the rows the model learnt from (no nightly volume seen)"
    factor = min(max(round(GROWTH_NIGHTS * nightly / reference_rows, 2), MIN_GROWTH_FACTOR), MAX_GROWTH_FACTOR)
    return factor, (f"about {max(1, round(factor * reference_rows / nightly))} nights of {nightly} rows against "
                    f"the {reference_rows} the model learnt from")


def relative_folder(value: str | Path, data_root: Path, flag: str) -> str:
    """A folder given on the command line as a path relative to the data root (refused if outside it)."""
    path = Path(value)
    full = path if path.is_absolute() else data_root / path
    full = full.resolve()
    root = data_root.resolve()
    if full != root and root not in full.parents:
        raise OnboardError(f"{flag} {value}: must be under the data root {root} (where the nightly files arrive)")
    if full.exists() and not full.is_dir():
        raise OnboardError(f"{flag} {value}: is a file, not a folder")
    return full.relative_to(root).as_posix()


def infer_label_delay(eng_id: str, id_column: str, batch_dir: Path | None, label_dir: Path) -> int | None:
    """Median nights between a batch and the label file its ids came back in (None if it cannot be seen)."""

    if batch_dir is None or not batch_dir.is_dir() or not label_dir.is_dir():
        return None
    served: dict[str, dt.date] = {}
    for f in _dated_files(batch_dir)[0]:
        try:
            ids = schema.read_raw_csv(f, usecols=[id_column])[id_column].dropna()
        except (ValueError, OSError):
            continue
        day = dt.date.fromisoformat(DATE_IN_NAME.search(f.name).group())  # type: ignore[union-attr]
        served.update(dict.fromkeys(ids, day))
    delays = []
    for f in _dated_files(label_dir)[0]:
        try:
            ids = schema.read_raw_csv(f, usecols=[id_column])[id_column].dropna()
        except (ValueError, OSError):
            continue
        day = dt.date.fromisoformat(DATE_IN_NAME.search(f.name).group())  # type: ignore[union-attr]
        delays += [(day - served[i]).days for i in ids if i in served]
    return int(statistics.median(delays)) if delays else None


# --- the file ---------------------------------------------------------------------------------------


def _yaml_value(v: Any) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    return str(v)


def _flow(rules: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in rules.items()) + "}"


def render(req: Request, inferred: dict[str, Any], reference_name: str, nightly: dict[str, Any]) -> str:
    problem = inferred["problem_type"]
    if problem == "binary_classification":
        metric, threshold, kind, estimator, margin = "roc_auc", 0.7, "floor", "random_forest_classifier", 0.005
    elif problem == "multiclass_classification":
        metric, threshold, kind, estimator, margin = "accuracy", 0.6, "floor", "random_forest_classifier", 0.005
    else:
        std = inferred["target_std"] or 1.0
        metric, threshold, kind, estimator, margin = "rmse", round(std, 4), "ceiling", "random_forest_regressor", 0.0
    types, carried = inferred["types"], inferred["carried"]
    id_column = inferred["id_column"]

    def schema_line(col: str) -> str:
        note = ("the id" if col == id_column else "the target" if col == req.target
                else f"not a feature: {carried[col]}" if col in carried else "")
        line = f"  {_yaml_value(col) if not re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*', col) else col}: {types[col]}"
        return f"{line:<34}# {note}" if note else line

    schema_lines = "\n".join(schema_line(c) for c in types)
    feature_lines = "\n".join(f"  {name}: {kind_}" for name, kind_ in inferred["features"].items())
    column_lines = "\n".join(
        f"    {name}: {'[' + ', '.join(_flow(r) for r in rules) + ']' if isinstance(rules, list) else _flow(rules)}"
        for name, rules in inferred["columns"].items() if rules)
    sensitive = _yaml_value(req.sensitive)
    fairness = ("\n  fairness: {metric: selection_rate, max_gap: 0.2}   # promotion refused above this gap"
                if req.sensitive and problem == "binary_classification" else "")

    def own(field: str, line: str) -> str:
        """A line of this file, unless the client file gives the field (then it is inherited, not repeated)."""
        return "" if field in req.inherited else line

    inherits = (f"client_defaults: {req.client_defaults}   # inherits include/clients/{req.client_defaults}.yaml: "
                f"{', '.join(sorted(req.inherited))}\n" if req.client_defaults else "")
    governance = "".join([
        own("governance.owners", f"\n  owners: {_yaml_value(req.owners or [req.owner])}"),
        own("governance.region", f"\n  region: {req.region}"),
        own("governance.sensitive_attributes", f"\n  sensitive_attributes: {sensitive}{fairness}"),
        own("governance.retention_days", f"\n  retention_days: {req.retention_days}"),
    ])
    today = dt.date.today().isoformat()
    classes = ""
    if inferred["classes"] is not None:
        classes = f"target_classes: {_yaml_value(inferred['classes'])}   # label values outside these are set aside"
        if inferred["positive"] is not None:
            classes += (f"\npositive_class: {_yaml_value(inferred['positive'])}   # what roc_auc, precision and recall "
                        "count as positive")
        classes += "\n"
    labels = ""
    if nightly["labels"] is not None:
        lab = nightly["labels"]
        labels = f"""
labels:                          # the batches carry no target: labels arrive in their own files
  directory: {lab['directory']}
  pattern: "{lab['pattern']}"
  format: csv
  expected_delay_days: {lab['delay']}          # {lab['delay_source']}
  lookback_days: {max(60, 3 * lab['delay'])}              # a label may still belong to a prediction this old
"""
    rows = nightly["row_count"]
    delay = nightly["labels"]["delay"] if nightly["labels"] is not None else 0
    shadow_days = max(7, delay + 2 + 5)  # a week of labelled nights after an inconclusive gate's next labels arrive
    window_rows, window_source = training_rows(inferred["rows"], nightly.get("median_rows"))
    growth, growth_source = growth_factor(inferred["rows"], nightly.get("median_rows"))
    return f"""# {req.client}: {req.use_case}
# Written by `steward onboard` on {today} from {req.data.name} ({inferred['rows']} rows). Review the
# inferred values (types, ranges, thresholds), then commit. `steward validate-config` checks this file.
id: {req.engagement_id}
{inherits}{own("client", f"client: {_yaml_value(req.client)}{chr(10)}")}use_case: {_yaml_value(req.use_case)}
{own("owner", f"owner: {_yaml_value(req.owner)}{chr(10)}")}{own("schedule", 'schedule: "0 2 * * *"           # nightly at 02:00 UTC' + chr(10))}start_date: {req.start_date.isoformat()}   # first night that can run or be backfilled

{_data_block(req, nightly, reference_name)}
{labels}
id_column: {id_column}
target: {req.target}
problem_type: {problem}   # inferred from the target
{classes}features:                 # numbers -> numeric; booleans and short text -> categorical
{feature_lines}

schema:                   # how each column is read, at onboarding and every night (one reader)
{schema_lines}

quality:
  row_count: {_flow(rows)}     # {nightly['row_source']}
  allow_extra_columns: false
  columns:                # the id quarantines on any null or duplicate. Features: nulls, unseen categories and
                          # negative values (where the reference has none) warn on any row and quarantine
                          # above {1 - TOLERANCE:.0%} of rows (mostly: {TOLERANCE}); values outside the reference's
                          # range widened by 25% of its span only warn; a null share 50 points above the
                          # reference's quarantines (broken)
{column_lines}
  rates:                  # data-quality drift (ADR 0027): each feature's share of nulls, of values far outside the
    significance: 0.01    # reference's range, of unseen categories and of one repeated value, tested every night
    tolerance: 0.02       # against the reference's own rate (its 95% bound + 2 points), nights below min_rows
    min_rows: 200         # pooled with the nights before; an alarm when flagged on 2 of the last 3 nights. It
    persistence: {{nights: 2, of_last: 3}}   # warns, names the columns, and holds retraining (responses)

drift:
  reference: champion     # judged against the champion's own training data (after a promotion: the new data)
  stattest: wasserstein   # effect size for numeric features; categorical ones use Jensen-Shannon
  threshold: 0.1          # ... and the effect must also be significant (KS / chi-square at 1%, corrected
  significance: 0.01      # across features by Benjamini-Hochberg), so small nights do not drift on noise
  drift_share: 0.5        # half the features drifting counts as dataset drift
  min_rows: 200           # smaller nights are judged on a window of the latest nights up to this size
  persistence: {{nights: 2, of_last: 3}}   # drift must hold before it alarms or retrains

performance:
  metric: {metric}
  threshold: {threshold}   # {kind}{' (the std of the target: worse than predicting the mean)' if kind == 'ceiling' else ''}
  min_labelled_rows: 100   # nights with fewer labelled rows are not judged

retraining:
  triggers: [drift, performance, schedule, refit, growth]   # refit: the periodic refit beats the champion (ADR 0025)
  growth_factor: {growth:g}       # growth: a candidate when the labelled rows since reach this share of the rows the model learnt from: {growth_source} (ADR 0028, 0034)
  refresh_every_days: 30   # counted from the last model trained (champion or refused candidate)
  min_days_between: 3      # cooldown for the same triggers
  max_candidates_per_30_days: 6   # a shift a weekly refit can follow needs about 4 a month, and some are retired
  max_quiet_candidates_per_30_days: 2   # ... but at most 2 on nights nothing alarmed on: the monitoring budget (ADR 0034)
  window: expanding        # a candidate learns from the champion's own rows + every labelled night since (ADR 0024)
  window_rows: {window_rows}     # ... the newest {window_rows} rows: {window_source}
  breach_window_days: 1    # after a performance breach: the newest labelled night only (the concept changed)
  holdout_fraction: 0.3
  holdout: newest_nights   # the gate judges a candidate on the newest nights of the window, out of time
{_estimator_block(req, inferred, estimator)}

promotion:
  metric: {metric}
  min_improvement: {margin}
  alpha: 0.1              # chance of promoting a challenger no better than the margin, over all looks (ADR 0024)
  shadow_nights: 0        # a conclusive holdout promotes at the gate; an inconclusive one pools the nights after it in shadow (ADR 0035)
  shadow_max_days: {shadow_days}     # retired when still not conclusive: labels {delay} night(s) late + 2 nights + 5

governance:{governance}
  decision_log: |
    {today} Onboarded with `steward onboard` from {req.data.name}{f" like {req.like.stem}" if req.like else ""}.
"""


def _estimator_block(req: Request, inferred: dict[str, Any], estimator: str) -> str:
    adopted = inferred.get("adopted")
    if adopted is None:
        return f"""  estimator:
    name: {estimator}
    params: {{n_estimators: 100, min_samples_leaf: 2}}"""
    return f"""  estimator:               # adopted with `steward onboard --model` (ADR 0032): v1 is this file as handed
    name: adopted          # over; candidates are fresh clones of it (same steps and parameters) fitted on the window
    kind: {adopted['kind']}
    file: {req.engagement_id}/{adopted['file']}   # under the data root; its digest is pinned below
    sha256: {adopted['sha256']}
    source: {_yaml_value(adopted['source'])}
    adopted_by: {_yaml_value(req.adopted_by or req.owner)}
    adopted_on: {dt.date.today().isoformat()}"""


def _data_block(req: Request, nightly: dict[str, Any], reference_name: str) -> str:
    if req.sql is not None:
        return f"""data:                     # nightly rows from the client's database (ADR 0023)
  source: sql
  conn_id: {req.sql.conn_id}          # an Airflow connection (Postgres)
  table: {req.sql.table}
  date_column: {req.sql.date_column}      # a night's batch: the rows whose {req.sql.date_column} is the logical date
  reference: {req.engagement_id}/{reference_name}   # the table's latest nights at onboarding ({', '.join(req.sql.nights[-1:] + req.sql.nights[:1])})
# predictions:            # uncomment to write each night's predictions back to the database
#   sink: {{conn_id: {req.sql.conn_id}, table: {req.sql.table.rpartition('.')[0] or 'public'}.{req.engagement_id}_predictions}}"""
    return f"""data:
  directory: {nightly['directory']}   # nightly batches land here, under the data root
  pattern: "{nightly['pattern']}"
  format: csv
  reference: {req.engagement_id}/{reference_name}"""


def nightly_files(req: Request, data_root: Path, inferred: dict[str, Any], counts: list[int] | None,
                  batch_pattern: str | None) -> dict[str, Any]:
    """Where batches and labels arrive, their patterns, the expected volume and the label delay."""
    directory = f"{req.engagement_id}/incoming"
    if req.batches is not None and batch_pattern is not None:
        try:
            directory = relative_folder(req.batches, data_root, "--batches")
        except OnboardError:  # sample batches kept elsewhere: only used to infer types and volume
            pass
    row_count, row_source = row_bounds(req, counts)
    labels = None
    if req.labels is not None:
        label_dir = relative_folder(req.labels, data_root, "--labels")
        full = data_root / label_dir
        pattern = _dated_files(full)[1] if full.is_dir() else "{date}.csv"
        delay, source = req.label_delay, req.label_delay_source
        if delay is None:
            batch_dir = data_root / directory
            delay = infer_label_delay(req.engagement_id, inferred["id_column"], batch_dir, full)
            source = "inferred from the ids of the sample batches and label files"
            if delay is None:
                delay, source = 3, "default: no sample batches and labels to measure it on; set it"
        labels = {"directory": label_dir, "pattern": pattern, "delay": delay, "delay_source": source}
    if req.sql is not None:
        row_count, row_source = row_bounds(req, req.sql.counts)
        row_source = f"the table's latest {len(req.sql.counts)} nights: {min(req.sql.counts)} to {max(req.sql.counts)} rows"
    seen = req.sql.counts if req.sql is not None else counts
    median = int(statistics.median(seen)) if seen else req.rows_per_night
    return {"directory": directory, "pattern": batch_pattern or "{date}.csv", "row_count": row_count,
            "row_source": row_source, "labels": labels, "median_rows": median}


def _check_samples(samples: pd.DataFrame, raw: pd.DataFrame, req: Request) -> None:
    missing = [c for c in raw.columns if c not in samples.columns and c != req.target]
    if missing:
        raise OnboardError(f"the sample batches lack column(s) {missing} of the reference: the nightly export must "
                           "carry the same columns")
    if req.target not in samples.columns and req.labels is None:
        raise OnboardError(f"the sample batches carry no {req.target!r} column: pass --labels DIR for the folder "
                           "where the label files arrive (and --label-delay N)")


# What `--like ENGAGEMENT` takes from the existing engagement: the client's conventions, not the data's. These
# sections are copied as they are; of governance, the owners, region and retention (not what belongs to the data,
# the sensitive attributes and fairness, nor the engagement's own history, the decision log).
LIKE_SECTIONS = ("schedule", "sla", "responses", "alerts", "execution")
_TOP_LEVEL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):", re.MULTILINE)


def like_request(req: Request, like: Path) -> Request:
    """The request, completed from the engagement `like` (`steward onboard --like`): its client file, client,
    owner, label delay and a label folder of the new engagement's own when it receives labels in files. What the
    command line gives wins."""
    try:
        eng = load_engagement(like)
    except (EngagementConfigError, FileNotFoundError) as exc:
        raise OnboardError(f"--like: {exc}") from None
    raw, _ = read_mapping(like)
    changes: dict[str, Any] = {"like": like}
    if req.client_defaults is None and raw.get("client_defaults"):
        changes["client_defaults"] = raw["client_defaults"]
    if req.client == DEFAULT_CLIENT:
        changes["client"] = eng.client
    if req.owner == DEFAULT_OWNER:
        changes["owner"] = eng.owner
    if isinstance(eng.labels, LabelsSource):
        if req.labels is None:
            changes["labels"] = f"{req.engagement_id}/labels"
        if req.label_delay is None:
            changes.update(label_delay=eng.labels.expected_delay_days, label_delay_source=f"as in {like.name}")
    taken = set(raw.get("governance") or {}) & {"owners", "region", "retention_days"}
    changes.update(owners=list(eng.governance.owners) if "owners" in taken else None,
                   region=eng.governance.region if "region" in taken else req.region,
                   retention_days=eng.governance.retention_days if "retention_days" in taken else req.retention_days)
    return dataclasses.replace(req, **changes)


def with_conventions(text: str, like: Path) -> str:
    """The rendered engagement file with the sections `like` sets (LIKE_SECTIONS) taken from it, values as they
    are there; the rest is what onboarding inferred from the data (`like_request` filled the request)."""
    import json

    import yaml

    raw, _ = read_mapping(like)
    blocks = _blocks(text)
    origin = f"  # as in {like.name} (steward onboard --like)"
    for key in LIKE_SECTIONS:
        if key not in raw:
            continue
        if isinstance(raw[key], str):
            blocks[key] = f"{key}: {json.dumps(raw[key])}{origin}\n"
            continue
        dumped = yaml.safe_dump({key: raw[key]}, sort_keys=False, default_flow_style=False, width=110)
        first, _, rest = dumped.partition("\n")
        blocks[key] = f"\n{first}{origin}\n{rest}" if key not in blocks else f"{first}{origin}\n{rest}\n"
    return "".join(blocks.values())


def _blocks(text: str) -> dict[str, str]:
    """The top-level sections of a rendered engagement file, in order, each with the lines after it (comments
    and blank lines before the first key belong to a header block)."""
    starts = [(m.group(1), m.start()) for m in _TOP_LEVEL.finditer(text)]
    out = {"": text[: starts[0][1]] if starts else text}
    for (key, begin), (_, end) in zip(starts, [*starts[1:], ("", len(text))], strict=True):
        out[key] = text[begin:end]
    return out


def onboard(req: Request, engagements_dir: Path, data_root: Path,
            progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Validate, infer, render, check the result parses, then write the YAML and copy the reference."""
    target_yaml = engagements_dir / f"{req.engagement_id}.yaml"
    if not SAFE_ID.match(req.engagement_id):
        check(_empty(), req)  # raises the unsafe-id message
    if target_yaml.exists() and not req.force:
        raise OnboardError(f"{target_yaml} already exists: pass --force to overwrite it")
    given_owner = req.owner != DEFAULT_OWNER  # the command line's --owner wins over a client file's
    if req.like is not None:
        req = like_request(req, req.like)
    if req.client_defaults is not None:  # start from the client file: what it gives is not written again
        try:
            given = clients.inherited_values(target_yaml, req.client_defaults)
        except EngagementConfigError as exc:
            raise OnboardError(str(exc)) from None
        req = dataclasses.replace(req, inherited=frozenset(given) - ({"owner"} if given_owner else set()),
                                  client=str(given.get("client", req.client)))
    raw = read_reference(req.data, progress)
    check(raw, req)
    samples, counts, pattern = None, None, None
    if req.batches is not None:
        samples, counts, pattern = read_samples(req)
        _check_samples(samples, raw, req)
    inferred = infer(raw, req, samples)
    adopted = None
    if req.model is not None:
        adopted = adopt(req, raw, inferred)
        inferred = with_adopted_features(inferred, adopted)
    nightly = nightly_files(req, data_root, inferred, counts, pattern)
    reference_name = f"reference{req.data.suffix.lower()}"
    text = render(req, inferred, reference_name, nightly)
    if req.like is not None:
        text = with_conventions(text, req.like)
    with tempfile.TemporaryDirectory() as tmp:  # prove the file parses before writing anything
        probe = Path(tmp) / "engagements" / target_yaml.name
        probe.parent.mkdir()
        (Path(tmp) / "clients").symlink_to(clients.clients_dir(target_yaml).resolve(), target_is_directory=True)
        probe.write_text(text)
        try:
            eng = load_engagement(probe)
        except EngagementConfigError as exc:  # only what --like copied can make the written file invalid
            raise OnboardError(f"the file written with --like {req.like.stem if req.like else ''} does not "
                               f"validate: {exc}") from None
    reference_target = data_root / req.engagement_id / reference_name
    reference_target.parent.mkdir(parents=True, exist_ok=True)
    if eng.data.source == "files":
        (data_root / eng.data.directory).mkdir(parents=True, exist_ok=True)
    if eng.labels is not None:
        (data_root / eng.labels.directory).mkdir(parents=True, exist_ok=True)
    if req.data.resolve() != reference_target.resolve():
        shutil.copyfile(req.data, reference_target)
    if adopted is not None:
        adopted.baseline = _adopted_baseline(eng, raw, inferred, adopted)
        (reference_target.parent / inferred["adopted"]["file"]).write_bytes(adopted.data)
    engagements_dir.mkdir(parents=True, exist_ok=True)
    tmp_yaml = target_yaml.with_suffix(".yaml.tmp")
    tmp_yaml.write_text(text)
    tmp_yaml.replace(target_yaml)
    if adopted is not None:
        _record_adoption(req, eng, adopted)
    return {"path": str(target_yaml), "reference": str(reference_target), "problem_type": eng.problem_type,
            "features": len(eng.features), "id_column": eng.id_column, "rows": inferred["rows"],
            "carried": inferred["carried"],
            "batches": str(data_root / eng.data.directory) if eng.data.source == "files" else
            f"{eng.data.relation} (connection {eng.data.conn_id}, rows where {eng.data.date_column} is the night)",
            "labels": str(data_root / eng.labels.directory) if eng.labels else None,
            "label_delay": eng.labels.expected_delay_days if eng.labels else None,
            "row_count": nightly["row_count"],
            "adopted": None if adopted is None else {
                "file": str(reference_target.parent / inferred["adopted"]["file"]), "sha256": adopted.sha256, "kind": adopted.kind,
                "columns": adopted.columns, "trusted": adopted.trusted_now, "baseline": adopted.baseline}}


def adopt(req: Request, raw: pd.DataFrame, inferred: dict[str, Any]) -> Any:
    """Fetch, load (reviewed types and --trust only) and check the model against the reference; OnboardError
    naming every problem, nothing written (ADR 0032)."""
    from steward.models import adoption, trust

    for name in req.trust:
        if not trust.TYPE_NAME.match(name) or trust.refused(name):
            raise OnboardError(f"--trust {name!r}: " + ("this type can run code when a file is loaded; steward never "
                               "trusts it" if trust.refused(name) else "not a dotted type name (module.Class)"))
    model_source = str(req.model)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = adoption.fetch(model_source, Path(tmp))
            unreviewed = adoption.untrusted(path)
            stray = [t for t in req.trust if t not in unreviewed]
            if stray:
                raise adoption.AdoptionError(f"--trust {', '.join(stray)}: the model holds no such unreviewed type "
                                             "(trust only what a model needs)")
            model = adoption.load(path, also=list(req.trust))
            kind, columns = adoption.check(
                model, problem_type=inferred["problem_type"], reference=schema.cast(raw, inferred["types"]),
                target=req.target, id_column=inferred["id_column"], target_classes=inferred["classes"])
            data = path.read_bytes()
        except adoption.AdoptionError as exc:
            raise OnboardError(f"--model {model_source}: {exc}") from None
    import hashlib

    found = adoption.Adopted(model=model, path=Path(model_source), source=model_source,
                             sha256=hashlib.sha256(data).hexdigest(), kind=kind, columns=columns,
                             trusted_now=list(dict.fromkeys(req.trust)), data=data)
    return found


def with_adopted_features(inferred: dict[str, Any], adopted: Any) -> dict[str, Any]:
    """The features are the adopted model's columns, in its order (scikit-learn checks the order); the other
    columns are carried. A column onboarding would have carried but the model reads becomes a feature."""
    from steward.models.adoption import ADOPTED_FILE

    features = {c: inferred["features"].get(c) or ("numeric" if inferred["types"][c] in {"integer", "float"}
                                                   else "categorical") for c in adopted.columns}
    carried = {c: why for c, why in inferred["carried"].items() if c not in features}
    carried.update({c: "not an input of the adopted model" for c in inferred["features"] if c not in features})
    return {**inferred, "features": features, "carried": carried,
            "adopted": {"kind": adopted.kind, "sha256": adopted.sha256, "source": adopted.source,
                        "file": ADOPTED_FILE}}


def _adopted_baseline(eng: Any, raw: pd.DataFrame, inferred: dict[str, Any], adopted: Any) -> dict[str, float]:
    """The adopted model's metrics on the labelled reference: what it did when it was handed over."""
    from steward.models import training

    ref = training.labelled(eng, schema.cast(raw, inferred["types"]))
    return {k: round(v, 4) for k, v in training.holdout_metrics(eng, adopted.model, ref).items()}


def _record_adoption(req: Request, eng: Any, adopted: Any) -> None:
    """The reviewed types go into the repository's allow-list file, and the adoption (source, digest, who,
    when, what was trusted, its baseline) into the engagement's ledger."""
    from steward.governance import ledger
    from steward.models import trust
    from steward.settings import StewardPaths

    spec = eng.retraining.estimator
    if adopted.trusted_now:
        trust.add(adopted.trusted_now, who=spec.adopted_by, why=f"reviewed for {eng.id}'s adopted model "
                  f"{spec.source} (sha256 {spec.sha256[:12]}…)")
    ledger.append(StewardPaths.from_env(), eng.id, "adoption", logical_date=spec.adopted_on.isoformat(), detail={
        "source": spec.source, "sha256": spec.sha256, "file": spec.file, "kind": spec.kind,
        "adopted_by": spec.adopted_by, "columns": adopted.columns, "trusted_types_added": adopted.trusted_now,
        "allow_list": str(trust.allow_list_file().name), "baseline_on_reference": adopted.baseline})


def _empty() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame()

