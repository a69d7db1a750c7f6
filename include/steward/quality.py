"""Data-quality validation with Great Expectations 1.x: a suite built from the engagement config.

GX objects are built at run time in an ephemeral context and never leave this module: callers get
a plain dict (`QualityResult`) that goes into XCom, the quarantine reason file and the audit record.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from steward.config import Engagement

if TYPE_CHECKING:
    import pandas as pd

NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "Int64", "float16", "float32", "float64", "Float64"]
QualityResult = dict[str, Any]
INT64_LIMIT = 2**63


def _column_rules(eng: Engagement) -> list[tuple[Any, Any]]:
    """Per column rule: (aggregate expectation, the per-row expectation with the same verdict).

    The aggregate reads one statistic per column (min, max, non-null share, distinct values), so a
    million-row batch validates in about a second; the per-row twin runs only when its aggregate fails,
    to name how many rows broke the rule and show a few of them (ADR 0010).
    """
    import great_expectations as gx

    E = gx.expectations
    out: list[tuple[Any, Any]] = []
    for col, rules in eng.quality.columns.items():
        if col not in eng.batch_columns:  # the target, when labels arrive separately
            continue
        if rules.not_null:
            out.append((E.ExpectColumnProportionOfNonNullValuesToBeBetween(column=col, min_value=1.0),
                        E.ExpectColumnValuesToNotBeNull(column=col)))
        if rules.max_null_share is not None:
            out.append((E.ExpectColumnProportionOfNonNullValuesToBeBetween(column=col, min_value=1 - rules.max_null_share),
                        None))
        if rules.min is not None or rules.max is not None:
            in_range = E.ExpectColumnValuesToBeBetween(column=col, min_value=rules.min, max_value=rules.max)
            if rules.min is not None:
                out.append((E.ExpectColumnMinToBeBetween(column=col, min_value=rules.min), in_range))
            if rules.max is not None:
                out.append((E.ExpectColumnMaxToBeBetween(column=col, max_value=rules.max), in_range))
        if rules.allowed_values is not None:
            out.append((E.ExpectColumnDistinctValuesToBeInSet(column=col, value_set=list(rules.allowed_values)),
                        E.ExpectColumnValuesToBeInSet(column=col, value_set=list(rules.allowed_values))))
        if rules.unique:
            out.append((E.ExpectColumnProportionOfUniqueValuesToBeBetween(column=col, min_value=1.0),
                        E.ExpectColumnValuesToBeUnique(column=col)))
    return out


def _schema_expectations(eng: Engagement) -> list[Any]:
    import great_expectations as gx

    E = gx.expectations
    expected_columns = eng.batch_columns
    out: list[Any] = [
        E.ExpectTableColumnsToMatchSet(column_set=expected_columns, exact_match=not eng.quality.allow_extra_columns),
        E.ExpectTableRowCountToBeBetween(min_value=eng.quality.row_count.min, max_value=eng.quality.row_count.max),
    ]
    out += [E.ExpectColumnToExist(column=col) for col in expected_columns]
    out += [E.ExpectColumnValuesToBeInTypeList(column=col, type_list=NUMERIC_TYPES) for col in eng.numeric_features]
    if not eng.is_classification and eng.target in expected_columns:
        out.append(E.ExpectColumnValuesToBeInTypeList(column=eng.target, type_list=NUMERIC_TYPES))
    return out


def build_expectations(eng: Engagement) -> list[Any]:
    """The GX expectations steward runs on every batch, in a stable order (table, then columns)."""
    return [*_schema_expectations(eng), *(aggregate for aggregate, _ in _column_rules(eng))]


def row_level_expectations(eng: Engagement) -> list[Any]:
    """The same rules written per row (the naive suite: what the benchmarks compare against)."""
    out = _schema_expectations(eng)
    for aggregate, per_row in _column_rules(eng):
        chosen = per_row or aggregate
        if not any(chosen is e for e in out):
            out.append(chosen)
    return out


def _json_safe(value: Any) -> Any:
    """GX results carry numpy scalars and NaN; the audit trail needs strict JSON."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= INT64_LIMIT:
        return str(value)  # XCom backends (msgspec, Postgres JSON) refuse integers beyond 64 bits
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _summarise(result: dict[str, Any]) -> dict[str, Any]:
    cfg = result["expectation_config"]
    kwargs = {k: v for k, v in cfg["kwargs"].items() if k != "batch_id"}
    detail = result.get("result") or {}
    exc = result.get("exception_info") or {}
    return _json_safe(
        {
            "expectation": cfg["type"],
            "column": kwargs.pop("column", None),
            "kwargs": kwargs,
            "success": bool(result["success"]),
            "observed_value": detail.get("observed_value"),
            "unexpected_count": detail.get("unexpected_count"),
            "unexpected_percent": detail.get("unexpected_percent"),
            "sample_unexpected": (detail.get("partial_unexpected_list") or [])[:5],
            "error": exc.get("exception_message") if exc.get("raised_exception") else None,
        }
    )


def _run(batch: Any, name: str, expectations: list[Any]) -> list[dict[str, Any]]:
    """Validate one suite; results in the order the expectations were given."""
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=name)
    for position, expectation in enumerate(expectations):
        expectation.meta = {"steward_position": position}  # GX gives no order guarantee; this restores it
        suite.add_expectation(expectation)
    raw = batch.validate(suite, result_format="SUMMARY").to_json_dict()["results"]
    return sorted(raw, key=lambda r: r["expectation_config"]["meta"]["steward_position"])


def validate_frame(eng: Engagement, df: pd.DataFrame) -> QualityResult:
    """Run the engagement's suite on a DataFrame and return a plain result.

    Column rules run as aggregates; the per-row twin of each failed aggregate then runs on its own
    column, so a failed check still says how many rows broke it and shows a few.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("steward")
        .add_dataframe_asset(name=eng.id)
        .add_batch_definition_whole_dataframe("nightly")
        .get_batch(batch_parameters={"dataframe": df})
    )
    suite_name = f"{eng.id}.nightly"
    schema, rules = _schema_expectations(eng), _column_rules(eng)
    results = _run(batch, suite_name, [*schema, *(aggregate for aggregate, _ in rules)])
    checks = [_summarise(r) for r in results[: len(schema)]]
    failed_twins: list[Any] = []
    for (_, per_row), result in zip(rules, results[len(schema):], strict=True):
        if result["success"] or per_row is None:
            checks.append(_summarise(result))
        elif not any(per_row is e for e in failed_twins):
            failed_twins.append(per_row)
            checks.append(per_row)  # replaced by its result below
    if failed_twins:
        detail = dict(zip(map(id, failed_twins), _run(batch, f"{suite_name}.detail", failed_twins), strict=True))
        checks = [_summarise(detail[id(c)]) if id(c) in detail else c for c in checks]
    return {
        "success": all(c["success"] for c in checks),
        "engine": f"great_expectations {gx.__version__}",
        "suite": suite_name,
        "evaluated": len(checks),
        "failed": [c for c in checks if not c["success"]],
        "checks": checks,
    }


def infinite_values(eng: Engagement, df: pd.DataFrame) -> dict[str, int]:
    """Numeric feature columns holding +/-inf (GX's range checks let them through a one-sided bound)."""
    import numpy as np
    import pandas as pd

    out = {}
    for col in eng.numeric_features:
        if col in df.columns and pd.api.types.is_numeric_dtype(df[col]):
            n = int(np.isinf(df[col].to_numpy(dtype=float, na_value=np.nan)).sum())
            if n:
                out[col] = n
    return out


def _steward_check(name: str, success: bool, error: str | None) -> dict[str, Any]:
    return {"expectation": name, "column": None, "kwargs": {}, "success": success, "observed_value": None,
            "unexpected_count": None, "unexpected_percent": None, "sample_unexpected": [], "error": error}


def unreadable_result(error: str) -> QualityResult:
    """The result for a batch that could not even be parsed: one failed check, no GX run."""
    check = _steward_check("batch_is_readable", False, error)
    return {"success": False, "engine": "steward reader", "suite": None, "evaluated": 1, "failed": [check], "checks": [check]}


def with_check(result: QualityResult, name: str, success: bool, error: str | None = None) -> QualityResult:
    """Add one of steward's own checks (beyond GX) to a result."""
    check = _steward_check(name, success, error)
    checks = [*result["checks"], check]
    failed = [c for c in checks if not c["success"]]
    return {**result, "checks": checks, "failed": failed, "evaluated": len(checks), "success": not failed}


def render_html(eng: Engagement, logical_date: str, result: QualityResult) -> str:
    """A self-contained HTML validation report (one table, no server, no JavaScript)."""
    rows = []
    for c in result["checks"]:
        verdict = "pass" if c["success"] else "FAIL"
        detail = c["error"] or (
            f"unexpected {c['unexpected_count']} ({(c['unexpected_percent'] or 0):.2f}%), e.g. {c['sample_unexpected']}"
            if c["unexpected_count"]
            else f"observed {c['observed_value']}"
        )
        rows.append(
            f"<tr class='{verdict.lower()}'><td>{verdict}</td><td>{html.escape(c['expectation'])}</td>"
            f"<td>{html.escape(str(c['column'] or ''))}</td><td>{html.escape(str(c['kwargs']))}</td>"
            f"<td>{html.escape(str(detail))}</td></tr>"
        )
    status = "PASSED" if result["success"] else f"FAILED ({len(result['failed'])} of {result['evaluated']} checks)"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{eng.id} {logical_date} data quality</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}
tr.fail td{{background:#fde2e2}}tr.pass td:first-child{{color:#17702b}}</style></head><body>
<h1>Data quality: {html.escape(eng.id)} &middot; {logical_date}</h1>
<p>Client: {html.escape(eng.client)} &middot; suite <code>{html.escape(str(result['suite']))}</code> &middot;
engine {html.escape(result['engine'])} &middot; <strong>{status}</strong></p>
<table><tr><th>verdict</th><th>expectation</th><th>column</th><th>arguments</th><th>detail</th></tr>
{''.join(rows)}</table></body></html>
"""
