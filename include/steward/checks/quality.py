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


class Rule:
    """One column rule: the aggregate expectation that decides it fast; the per-row twin with the same
    verdict (run only when the aggregate fails: it counts and shows the bad rows and applies `mostly`);
    what a failure does; and, for a column with `warn_mostly`, a stricter twin that only warns."""

    __slots__ = ("aggregate", "per_row", "severity", "warn_twin")

    def __init__(self, aggregate: Any, per_row: Any, severity: str, warn_twin: Any = None):
        self.aggregate, self.per_row, self.severity, self.warn_twin = aggregate, per_row, severity, warn_twin


CHANCE = 0.001  # a small batch fails a share rule only when chance would explain its count less often


def chance_bound(share: float, rows: int | None) -> float:
    """The largest share of `rows` that a long-run `share` still explains (binomial 99.9% quantile).

    A rule written as a share ("at most 2% nulls", "mostly 95% in range") means the long run: one null in
    a 22-row batch is 4.5% of it, and says nothing against 2%. On small batches the bound widens; on large
    ones it is the share itself plus a sliver (ADR 0011).
    """
    if rows is None or rows <= 0 or share <= 0 or share >= 1:
        return share
    from scipy.stats import binom

    return max(share, float(binom.ppf(1 - CHANCE, rows, share)) / rows)


def _column_rules(eng: Engagement, rows: int | None = None) -> list[Rule]:
    """Per column rule, in config order.

    The aggregate reads one statistic per column (min, max, non-null share, distinct values), so a
    million-row batch validates in about a second; the per-row twins run only when the aggregate fails
    (ADR 0010). With `mostly` below 1 the twin decides: a failed aggregate only says that at least one
    row broke the rule, GX's `mostly` on the twin says whether few enough did (ADR 0011).
    """
    out: list[Rule] = []
    for col in eng.quality.columns:
        if col not in eng.batch_columns:  # the target, when labels arrive separately
            continue
        for rules in eng.quality.rules_for(col):
            out += _rules_of(col, rules, rows)
    return out


def _rules_of(col: str, rules: Any, rows: int | None) -> list[Rule]:
    import great_expectations as gx

    E = gx.expectations
    # The quarantine tier's tolerance widens with chance on small batches; the warning tier stays exact.
    mostly = round(1 - chance_bound(1 - rules.mostly, rows), 6) if rules.mostly < 1 else 1.0
    tiers = [mostly, *([rules.warn_mostly] if rules.warn_mostly is not None else [])]
    out: list[Rule] = []

    def rule(aggregate: Any, per_row: list[Any] | None) -> None:
        twins = per_row or [None]
        out.append(Rule(aggregate, twins[0], rules.severity, twins[1] if len(twins) > 1 else None))

    if rules.not_null:
        rule(E.ExpectColumnProportionOfNonNullValuesToBeBetween(column=col, min_value=1.0),
             [E.ExpectColumnValuesToNotBeNull(column=col, mostly=m) for m in tiers])
    if rules.max_null_share is not None:
        bound = round(chance_bound(rules.max_null_share, rows), 6)
        rule(E.ExpectColumnProportionOfNonNullValuesToBeBetween(column=col, min_value=1 - bound), None)
    if rules.min is not None or rules.max is not None:
        in_range = [E.ExpectColumnValuesToBeBetween(column=col, min_value=rules.min, max_value=rules.max, mostly=m)
                    for m in tiers]
        if rules.min is not None:
            rule(E.ExpectColumnMinToBeBetween(column=col, min_value=rules.min), in_range)
        if rules.max is not None:
            rule(E.ExpectColumnMaxToBeBetween(column=col, max_value=rules.max), in_range)
    if rules.allowed_values is not None:
        values = list(rules.allowed_values)
        rule(E.ExpectColumnDistinctValuesToBeInSet(column=col, value_set=values),
             [E.ExpectColumnValuesToBeInSet(column=col, value_set=values, mostly=m) for m in tiers])
    if rules.unique:
        rule(E.ExpectColumnProportionOfUniqueValuesToBeBetween(column=col, min_value=1.0),
             [E.ExpectColumnValuesToBeUnique(column=col, mostly=m) for m in tiers])
    return out


def _schema_expectations(eng: Engagement, sql: bool = False) -> list[Any]:
    import great_expectations as gx

    from steward.sources.schema import GX_TYPE_NAMES

    E = gx.expectations
    expected_columns = eng.batch_columns
    out: list[Any] = [
        E.ExpectTableColumnsToMatchSet(column_set=expected_columns, exact_match=not eng.quality.allow_extra_columns),
        E.ExpectTableRowCountToBeBetween(min_value=eng.quality.row_count.min, max_value=eng.quality.row_count.max),
    ]
    out += [E.ExpectColumnToExist(column=col) for col in expected_columns]
    if sql:  # GX compares a SQL column's type by its printed name (VARCHAR(20) is not VARCHAR): checked by
        return out  # steward.sources.sql_source.type_mismatches on the reflected types instead
    if eng.column_types:
        out += [E.ExpectColumnValuesToBeInTypeList(column=col, type_list=GX_TYPE_NAMES[eng.column_types[col]])
                for col in expected_columns]
        return out
    out += [E.ExpectColumnValuesToBeInTypeList(column=col, type_list=NUMERIC_TYPES) for col in eng.numeric_features]
    if not eng.is_classification and eng.target in expected_columns:
        out.append(E.ExpectColumnValuesToBeInTypeList(column=eng.target, type_list=NUMERIC_TYPES))
    return out


def build_expectations(eng: Engagement) -> list[Any]:
    """The GX expectations steward runs on every batch, in a stable order (table, then columns)."""
    return [*_schema_expectations(eng), *(rule.aggregate for rule in _column_rules(eng))]


def row_level_expectations(eng: Engagement) -> list[Any]:
    """The same rules written per row (the naive suite: what the benchmarks compare against)."""
    out = _schema_expectations(eng)
    for rule in _column_rules(eng):
        chosen = rule.per_row or rule.aggregate
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


def _summarise(result: dict[str, Any], severity: str = "quarantine") -> dict[str, Any]:
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
            "severity": severity,
        }
    )


def _run(batch: Any, name: str, expectations: list[Any]) -> list[dict[str, Any]]:
    """Validate one suite; one result per expectation given, in that order.

    A suite keeps one copy of identical expectations (two rule sets of a column may share an aggregate,
    e.g. `min: 0` in both), so each distinct one runs once and its result is given to every copy.
    """
    import json

    import great_expectations as gx

    def key(expectation: Any) -> str:
        config = expectation.configuration
        return json.dumps([config.type, config.kwargs], sort_keys=True, default=str)

    keys = [key(e) for e in expectations]
    distinct = list(dict.fromkeys(keys))
    first = {k: expectations[keys.index(k)] for k in distinct}
    for position, k in enumerate(distinct):
        first[k].meta = {"steward_position": position}  # GX gives no order guarantee; this restores it
    # Given whole to the suite: `add_expectation` compares each new expectation with every one before it
    # (pydantic dicts, quadratic), which the de-duplication above has already done.
    suite = gx.ExpectationSuite(name=name, expectations=[first[k] for k in distinct])
    raw = batch.validate(suite, result_format="SUMMARY").to_json_dict()["results"]
    by_position = {r["expectation_config"]["meta"]["steward_position"]: r for r in raw}
    return [by_position[distinct.index(k)] for k in keys]


def validate_frame(eng: Engagement, df: pd.DataFrame) -> QualityResult:
    """Run the engagement's suite on a DataFrame and return a plain result.

    Column rules run as aggregates; the per-row twin of each failed aggregate then runs on its own
    column, so a failed check still says how many rows broke it and shows a few, and applies `mostly`.
    `success` is False only when a rule of severity `quarantine` failed; failed `warn` rules are listed
    under `warnings` and the batch proceeds.
    """
    context = _context()
    batch = (
        context.data_sources.add_pandas("steward")
        .add_dataframe_asset(name=eng.id)
        .add_batch_definition_whole_dataframe("nightly")
        .get_batch(batch_parameters={"dataframe": df})
    )
    return _validate(eng, batch, rows=len(df), sql=False)


def validate_table(eng: Engagement, engine: Any, staged: dict[str, Any]) -> QualityResult:
    """The same suite on a SQL night's snapshot, evaluated in the database by GX's SQL data source: the
    aggregates are one query per rule; a failed rule's sample of unexpected rows is a LIMITed query
    (GX's SUMMARY result format), so no table comes back whole (ADR 0023)."""
    context = _context()
    batch = (
        context.data_sources.add_postgres("steward", connection_string=engine.url.render_as_string(hide_password=False))
        .add_table_asset(name=staged["table"], table_name=staged["table"], schema_name=staged["schema"])
        .add_batch_definition_whole_table("nightly")
        .get_batch()
    )
    from steward.sources import sql_source

    result = _validate(eng, batch, rows=staged["rows"], sql=True)
    for col, m in sql_source.type_mismatches(eng, engine, staged).items():
        result = with_check(result, "column_type_matches", False,
                            f"is {m['found']} in the database, the engagement reads it as {m['expected']}", column=col)
    return result


def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _validate(eng: Engagement, batch: Any, *, rows: int, sql: bool) -> QualityResult:
    import great_expectations as gx

    suite_name = f"{eng.id}.nightly"
    schema, rules = _schema_expectations(eng, sql=sql), _column_rules(eng, rows=rows)
    results = _run(batch, suite_name, [*schema, *(rule.aggregate for rule in rules)])
    checks: list[Any] = [_summarise(r) for r in results[: len(schema)]]
    twins: list[tuple[Any, str]] = []  # (per-row expectation, severity), each once (min and max share one)
    for rule, result in zip(rules, results[len(schema):], strict=True):
        if result["success"] or rule.per_row is None:
            checks.append(_summarise(result, rule.severity))
            continue
        for twin, severity in ((rule.per_row, rule.severity), (rule.warn_twin, "warn")):
            if twin is not None and not any(twin is t for t, _ in twins):
                twins.append((twin, severity))
                checks.append(twin)  # replaced by its result below
    if twins:
        detail = dict(zip((id(t) for t, _ in twins),
                          _run(batch, f"{suite_name}.detail", [t for t, _ in twins]), strict=True))
        severity_of = {id(t): s for t, s in twins}
        checks = [_summarise(detail[id(c)], severity_of[id(c)]) if id(c) in detail else c for c in checks]
    return _result(checks, engine=f"great_expectations {gx.__version__}" + (" (in the database)" if sql else ""),
                   suite=suite_name)


def _result(checks: list[dict[str, Any]], *, engine: str, suite: str | None) -> QualityResult:
    failed = [c for c in checks if not c["success"] and c.get("severity", "quarantine") == "quarantine"]
    warnings = [c for c in checks if not c["success"] and c.get("severity") == "warn"]
    return {"success": not failed, "engine": engine, "suite": suite, "evaluated": len(checks), "failed": failed,
            "warnings": warnings, "checks": checks}


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


def _steward_check(name: str, success: bool, error: str | None, column: str | None = None,
                   unexpected_count: int | None = None, sample: list[Any] | None = None) -> dict[str, Any]:
    return {"expectation": name, "column": column, "kwargs": {}, "success": success, "observed_value": None,
            "unexpected_count": unexpected_count, "unexpected_percent": None, "sample_unexpected": sample or [],
            "error": error, "severity": "quarantine"}


def unreadable_result(error: str) -> QualityResult:
    """The result for a batch that could not even be parsed: one failed check, no GX run."""
    return _result([_steward_check("batch_is_readable", False, error)], engine="steward reader", suite=None)


def with_check(result: QualityResult, name: str, success: bool, error: str | None = None, **detail: Any) -> QualityResult:
    """Add one of steward's own checks (beyond GX) to a result."""
    return _result([*result["checks"], _steward_check(name, success, error, **detail)], engine=result["engine"],
                   suite=result["suite"])


def with_schema_checks(result: QualityResult, mismatches: dict[str, dict[str, Any]]) -> QualityResult:
    """One failed `values_match_schema` check per column whose values do not fit its declared type."""
    for col, m in mismatches.items():
        result = with_check(result, "values_match_schema", False,
                            f"{m['rows']} value(s) are not {m['type']}: e.g. {m['examples']}", column=col,
                            unexpected_count=m["rows"], sample=m["examples"])
    return result


def render_html(eng: Engagement, logical_date: str, result: QualityResult) -> str:
    """A self-contained HTML validation report (one table, no server, no JavaScript)."""
    rows = []
    for c in result["checks"]:
        verdict = "pass" if c["success"] else ("WARN" if c.get("severity") == "warn" else "FAIL")
        detail = c["error"] or (
            f"unexpected {c['unexpected_count']} ({(c['unexpected_percent'] or 0):.2f}%), e.g. {c['sample_unexpected']}"
            if c["unexpected_count"]
            else f"observed {c['observed_value']}"
        )
        rows.append(
            f"<tr class='{verdict.lower()}'><td>{verdict}</td><td>{html.escape(c['expectation'])}</td>"
            f"<td>{html.escape(c.get('severity', 'quarantine'))}</td>"
            f"<td>{html.escape(str(c['column'] or ''))}</td><td>{html.escape(str(c['kwargs']))}</td>"
            f"<td>{html.escape(str(detail))}</td></tr>"
        )
    status = "PASSED" if result["success"] else f"FAILED ({len(result['failed'])} of {result['evaluated']} checks)"
    if result.get("warnings"):
        status += f", {len(result['warnings'])} warning(s): the batch proceeds"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{eng.id} {logical_date} data quality</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}
tr.fail td{{background:#fde2e2}}tr.warn td{{background:#fff4d6}}tr.pass td:first-child{{color:#17702b}}</style></head><body>
<h1>Data quality: {html.escape(eng.id)} &middot; {logical_date}</h1>
<p>Client: {html.escape(eng.client)} &middot; suite <code>{html.escape(str(result['suite']))}</code> &middot;
engine {html.escape(result['engine'])} &middot; <strong>{status}</strong></p>
<table><tr><th>verdict</th><th>expectation</th><th>severity</th><th>column</th><th>arguments</th><th>detail</th></tr>
{''.join(rows)}</table></body></html>
"""
