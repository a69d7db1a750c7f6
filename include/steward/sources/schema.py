"""One schema for the onboarder and the nightly reader: how each column's text becomes a typed value.

`steward onboard` infers a column type from the reference file's raw text with `infer_type`; every
nightly batch, label file and the reference are then read with `read_csv`/`cast` using the types the
engagement file declares. Because both sides go through this module, a column the onboarder calls
boolean is read as boolean every night, whatever tonight's values look like (all null, all one value,
no decimal point tonight...). Pandas' own per-file inference would change its mind from night to night.

Types and their in-memory dtypes:

| type      | text                                   | dtype                 |
|-----------|----------------------------------------|-----------------------|
| string    | anything                               | object (str)          |
| integer   | digits with an optional sign           | Int64 (nullable)      |
| float     | any number (1, 1.5, 1e3, inf)          | float64               |
| boolean   | true / false, any case                 | boolean (nullable)    |
| date      | YYYY-MM-DD                             | datetime64[ns]        |
| timestamp | ISO 8601 date and time, any offset     | datetime64[ns], UTC   |

Empty cells and pandas' usual null words (NA, null, NaN ...) are nulls in every type. A value that does
not fit its type leaves the whole column as text, so the quality stage fails the column's type check and
`mismatches` names the rows (the batch is quarantined with the examples; nothing is coerced silently).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

INTEGER_TEXT = re.compile(r"^[+-]?\d+$")
DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIMESTAMP_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
BOOLEAN_WORDS = {"true": True, "false": False}

# What Great Expectations reports as a column's type once a frame of these dtypes reaches it
# (it converts pandas' nullable Int64/boolean to numpy's int64/bool).
# (GX names pandas' nullable dtypes by class: Int64Dtype, BooleanDtype. Text columns are checked value by
# value, so their names are Python's. Timestamps are kept as naive UTC: GX cannot name a tz-aware dtype.)
_DATETIMES = ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"]
GX_TYPE_NAMES: dict[str, list[str]] = {
    "string": ["str", "object", "string"],
    "integer": ["Int64Dtype", "int64", "int32", "int16", "int8"],
    "float": ["float64", "float32", "Float64Dtype", "Int64Dtype", "int64", "int32"],
    "boolean": ["BooleanDtype", "bool"],
    "date": _DATETIMES,
    "timestamp": _DATETIMES,
}
_READ_DTYPES = {"string": str, "integer": "Int64", "float": "float64", "boolean": "boolean"}


def infer_type(raw: pd.Series) -> str:
    """The type of a column of raw text (nulls as NaN), as the nightly reader will read it.

    Conservative on purpose: a column written with a decimal point is float even when every value is
    whole (an export of a nullable integer as 129.0 stays float, so 129.5 next month still reads).
    """
    import pandas as pd

    values = raw.dropna().astype(str).str.strip()
    values = values[values != ""]
    if values.empty:
        return "string"
    if values.str.lower().isin(list(BOOLEAN_WORDS)).all():
        return "boolean"
    if values.str.fullmatch(INTEGER_TEXT).all():
        return "integer"
    if pd.to_numeric(values, errors="coerce").notna().all():
        return "float"
    if values.str.fullmatch(DATE_TEXT).all() and pd.to_datetime(values, format="%Y-%m-%d", errors="coerce").notna().all():
        return "date"
    if values.str.fullmatch(TIMESTAMP_TEXT).all() and _to_timestamp(values).notna().all():
        return "timestamp"
    return "string"


def _to_timestamp(values: pd.Series) -> pd.Series:
    """ISO 8601 text -> naive UTC datetimes (an offset is applied, then dropped)."""
    import pandas as pd

    return pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce").dt.tz_localize(None)


def read_raw_csv(source: Any, **kwargs: Any) -> pd.DataFrame:
    """Every column as text (nulls as NaN): what `infer_type` looks at."""
    import pandas as pd

    return pd.read_csv(source, dtype=str, keep_default_na=True, encoding="utf-8", on_bad_lines="error", **kwargs)


def read_csv(path: Path | str, types: Mapping[str, str]) -> pd.DataFrame:
    """Read a CSV with the declared types; columns not in `types` are read as text.

    The C parser converts typed columns directly; when a value does not fit, the file is read as text
    and each column is converted on its own, leaving the columns that do not fit as text.
    """
    import pandas as pd

    dtypes = {c: _READ_DTYPES.get(t, str) for c, t in types.items()}
    try:
        frame = pd.read_csv(path, dtype=dtypes, keep_default_na=True, encoding="utf-8", on_bad_lines="error",
                            low_memory=False)
    except UnicodeDecodeError:
        raise
    except (ValueError, TypeError):  # a value that does not fit its type: find which, column by column
        return cast(read_raw_csv(path, low_memory=False), types)
    for col, kind in types.items():  # the C parser leaves dates and timestamps as text
        if col in frame.columns and kind in {"date", "timestamp"}:
            frame[col] = _convert(frame[col], kind)
    return frame


def cast(frame: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    """Convert each declared column of a frame (text from CSV, or Parquet's own types) to its dtype.

    A column with a value that does not fit is left as it was (as text): the type check then fails.
    """
    out = frame.copy()
    for col, kind in types.items():
        if col in out.columns:
            out[col] = _convert(out[col], kind)
    return out


def _convert(series: pd.Series, kind: str) -> pd.Series:
    import pandas as pd

    if _has_dtype(series, kind):
        return series
    bad = _bad_mask(series, kind)
    if bad.any():
        return series
    if kind == "string":
        return series.where(series.isna(), series.astype(str)).astype(object)
    text = series.where(series.isna(), series.astype(str).str.strip())
    if kind == "integer":
        return pd.to_numeric(text).astype("Int64")
    if kind == "float":
        return pd.to_numeric(text).astype("float64")
    if kind == "boolean":
        return text.str.lower().map(BOOLEAN_WORDS).astype("boolean")
    if kind == "date":
        return pd.to_datetime(text, format="%Y-%m-%d")
    return _to_timestamp(text)


def _has_dtype(series: pd.Series, kind: str) -> bool:
    import pandas as pd

    dtype = series.dtype
    if kind == "string":
        return pd.api.types.is_object_dtype(dtype) and series.dropna().map(type).eq(str).all()
    if kind == "integer":
        return str(dtype) == "Int64"
    if kind == "float":
        return str(dtype) == "float64"
    if kind == "boolean":
        return str(dtype) == "boolean"
    return pd.api.types.is_datetime64_dtype(dtype) and getattr(dtype, "tz", None) is None  # date, timestamp


def _bad_mask(series: pd.Series, kind: str) -> pd.Series:
    """Rows whose value is present but does not fit `kind`."""
    import numpy as np
    import pandas as pd

    present = series.notna()
    if kind == "string":
        return pd.Series(False, index=series.index)
    if pd.api.types.is_bool_dtype(series.dtype) and kind == "boolean":
        return pd.Series(False, index=series.index)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        if kind == "float":
            return pd.Series(False, index=series.index)
        if kind == "integer":
            values = series.astype("float64")
            return present & ~(np.isfinite(values) & (values == np.floor(values)))
    text = series.where(~present, series.astype(str).str.strip())
    if kind == "integer":
        number = pd.to_numeric(text, errors="coerce")
        whole = number.notna() & np.isfinite(number.astype(float)) & (number == np.floor(number.astype(float)))
        return present & ~whole
    if kind == "float":
        return present & pd.to_numeric(text, errors="coerce").isna()
    if kind == "boolean":
        return present & ~text.str.lower().isin(list(BOOLEAN_WORDS))
    if kind == "date":
        return present & (~text.str.fullmatch(DATE_TEXT, na=False)
                          | pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").isna())
    return present & _to_timestamp(text).isna()


def mismatches(frame: pd.DataFrame, types: Mapping[str, str], examples: int = 5) -> dict[str, dict[str, Any]]:
    """Columns left as text because a value does not fit the declared type: how many rows, and which values."""
    out: dict[str, dict[str, Any]] = {}
    for col, kind in types.items():
        if col not in frame.columns or _has_dtype(frame[col], kind):
            continue
        bad = _bad_mask(frame[col], kind)
        if bad.any():
            out[col] = {"type": kind, "rows": int(bad.sum()),
                        "examples": [str(v) for v in frame.loc[bad, col].head(examples)]}
    return out


def model_input(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The feature columns in dtypes every scikit-learn transformer accepts: nullable integers become
    float64 with NaN, nullable booleans become objects (True/False/NaN) for the categorical pipeline."""
    import numpy as np
    import pandas as pd

    out = frame[columns].copy()
    for col in columns:
        dtype = out[col].dtype
        if str(dtype) in {"Int64", "Int32", "Int16", "Int8", "Float64", "Float32"}:
            out[col] = out[col].astype("float64")
        elif str(dtype) == "boolean":
            out[col] = out[col].astype(object).where(out[col].notna(), np.nan)
        elif isinstance(dtype, pd.StringDtype):
            out[col] = out[col].astype(object).where(out[col].notna(), np.nan)
    return out
