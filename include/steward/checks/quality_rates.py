"""Data-quality drift (ADR 0027): rates tested against the reference, pooled on small nights, persistent
before they alarm.

A cap ("at most 21% nulls") judged one night at a time cannot see a fault that builds: on 165 rows, 26% empty
cells in a column whose reference has 10% stays under the cap night after night, although chance explains
it with a probability near 1e-8. Here every feature column has monitored rates, each tested every night
against the reference's own rate:

- `null`: the share of empty cells (every feature);
- `out_of_range`: the share of values outside the reference's range widened by `range_margin` of its span
  on each side (numeric; a unit change lands far outside, a cold month does not);
- `unseen`: the share of values the reference never holds (categorical; a renamed category);
- `constant`: the share of the night's most frequent value, on columns that vary in the reference (no value on
  more than half its rows): a night is stuck when significantly more than 90% of its rows hold one value (a
  stuck sensor, a default left in a form), not when a day's rows share that day's weather.

The reference's rate is an estimate from its n rows: the test is one-sided binomial against its 95% upper
bound (Clopper-Pearson; with no event in n rows about 3/n) plus `tolerance`, so one null in a column the
reference never saw empty is never an alarm by itself, and a sustained share above that bound is. Nights
smaller than `min_rows` are pooled with the accepted nights before them (as drift is); the tests of one
night are corrected together (Benjamini-Hochberg at `significance`); a rate must be flagged on
`persistence.nights` of the last `persistence.of_last` judged nights before it alarms.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from steward import store
from steward.config import Engagement
from steward.monitoring import windows as monitoring
from steward.settings import StewardPaths

if TYPE_CHECKING:
    import pandas as pd

VARIED = 0.5  # `constant` is judged on columns whose most frequent reference value holds at most half the rows
STUCK_SHARE = 0.9  # ... and flags a night only when significantly more than this share of rows is one value
REFERENCE_CONFIDENCE = 0.95  # the reference's rate is known to this one-sided confidence from its rows
WHAT = {"null": "empty cells", "out_of_range": "values outside the reference's range",
        "unseen": "values the reference never holds", "constant": "one value repeated"}


def column_profile(eng: Engagement, reference: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """What each feature looks like in the reference: its rows, nulls, range, values and largest value share."""
    import pandas as pd

    out: dict[str, dict[str, Any]] = {}
    for col in eng.features:
        if col not in reference.columns:
            continue
        s = reference[col]
        present = s.dropna()
        entry: dict[str, Any] = {"rows": len(s), "nulls": int(s.isna().sum()), "present": len(present)}
        if eng.features[col] == "numeric":
            values = pd.to_numeric(present, errors="coerce").dropna()
            if len(values):
                lo, hi = float(values.min()), float(values.max())
                margin = eng.quality.rates.range_margin * ((hi - lo) or abs(hi) or 1.0)
                entry["range"] = (lo - margin, hi + margin)
        else:
            entry["values"] = set(present.map(str))
        counts = present.map(str).value_counts()
        if len(counts) >= 2 and counts.iloc[0] <= VARIED * len(present):  # a column that varies in the reference
            entry["top"] = int(counts.iloc[0])
        out[col] = entry
    return out


def counts(eng: Engagement, frame: pd.DataFrame, profile: dict[str, dict[str, Any]]
           ) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    """(column, kind) -> (events tonight, rows tonight, events in the reference, rows in the reference)."""
    import pandas as pd

    kinds = set(eng.quality.rates.kinds)
    out: dict[tuple[str, str], tuple[int, int, int, int]] = {}
    for col, ref in profile.items():
        if col not in frame.columns:
            continue
        s = frame[col]
        present = s.dropna()
        if "null" in kinds:
            out[(col, "null")] = (int(s.isna().sum()), len(s), ref["nulls"], ref["rows"])
        if not len(present):
            continue
        if "out_of_range" in kinds and "range" in ref:
            lo, hi = ref["range"]
            values = pd.to_numeric(present, errors="coerce")
            outside = int(((values < lo) | (values > hi)).sum())
            out[(col, "out_of_range")] = (outside, int(values.notna().sum()), 0, ref["present"])
        if "unseen" in kinds and "values" in ref:
            unseen = int((~present.map(str).isin(ref["values"])).sum())
            out[(col, "unseen")] = (unseen, len(present), 0, ref["present"])
        if "constant" in kinds and "top" in ref:
            out[(col, "constant")] = (int(present.map(str).value_counts().iloc[0]), len(present), ref["top"],
                                      ref["present"])
    return out


def reference_bound(events: int, rows: int) -> float:
    """The one-sided upper confidence bound of a rate seen `events` times in `rows` (Clopper-Pearson)."""
    from scipy.stats import beta

    if rows <= 0:
        return 1.0
    if events >= rows:
        return 1.0
    return float(beta.ppf(REFERENCE_CONFIDENCE, events + 1, rows - events))


def test(eng: Engagement, found: dict[tuple[str, str], tuple[int, int, int, int]]) -> list[dict[str, Any]]:
    """Each rate against its reference bound + tolerance (one-sided binomial), flagged after Benjamini-Hochberg
    across tonight's tests at `significance`."""
    from scipy.stats import binom

    from steward.monitoring.drift import correct

    rules = eng.quality.rates
    tests = []
    for (col, kind), (k, n, ref_k, ref_n) in sorted(found.items()):
        if n == 0:
            continue
        bound = min(reference_bound(ref_k, ref_n) + rules.tolerance, 0.999)
        if kind == "constant":  # stuck: nearly every row one value, not merely one hour's weather shared by a day
            bound = max(bound, STUCK_SHARE)
        p = float(binom.sf(k - 1, n, bound)) if k > 0 else 1.0
        tests.append({"column": col, "kind": kind, "events": k, "rows": n, "rate": round(k / n, 4),
                      "reference_rate": round(ref_k / ref_n, 4) if ref_n else None, "bound": round(bound, 4),
                      "p_value": p})
    adjusted = correct([t["p_value"] for t in tests], "benjamini_hochberg") if tests else []
    for t, q in zip(tests, adjusted, strict=True):
        t["q_value"] = q
        t["flagged"] = bool(q < rules.significance and t["rate"] > t["bound"])
    return tests


def window(eng: Engagement, paths: StewardPaths, day: dt.date, tonight: pd.DataFrame
           ) -> tuple[pd.DataFrame, list[str]]:
    """Tonight's rows, topped up with the accepted nights before it (newest first) while below `min_rows`."""
    rules = eng.quality.rates
    frame, found = monitoring.drift_window(eng, paths, day, tonight, rules.min_rows, rules.max_window_nights)
    return frame, found["nights"]


def judge(eng: Engagement, paths: StewardPaths, day: dt.date, tonight: pd.DataFrame,
          reference: pd.DataFrame) -> dict[str, Any]:
    """Tonight's data-quality drift: every rate tested, stored, and judged for persistence."""
    rules = eng.quality.rates
    if not rules.enabled:
        return {"state": "off", "alarm_columns": [], "flagged_columns": [], "rates": []}
    frame, nights = window(eng, paths, day, tonight)
    tests = test(eng, counts(eng, frame, column_profile(eng, reference)))
    iso = day.isoformat()
    history = _flag_history(eng, paths, day)  # the nights before tonight (a rerun replaces tonight's rows)
    need = rules.persistence
    for t in tests:
        seen = [*history.get((t["column"], t["kind"]), []), t["flagged"]][-need.of_last:]
        t["flagged_nights"] = sum(seen)
        t["of_last"] = len(seen)
        t["alarm"] = bool(t["flagged"] and sum(seen) >= need.nights)
    store.replace_rows(paths, store.quality_rates, {"engagement": eng.id, "logical_date": iso}, [
        {"engagement": eng.id, "logical_date": iso, "column_name": t["column"], "kind": t["kind"],
         "events": t["events"], "rows": t["rows"], "rate": t["rate"], "reference_rate": t["reference_rate"],
         "bound": t["bound"], "p_value": t["p_value"], "flagged": t["flagged"], "alarm": t["alarm"],
         "window_nights": len(nights)} for t in tests])
    alarms = [t for t in tests if t["alarm"]]
    flagged = [t for t in tests if t["flagged"]]
    state = "alarm" if alarms else "flagged" if flagged else "ok"
    return {"state": state, "rows": len(frame), "window_nights": nights, "tests": len(tests),
            "alarm_columns": sorted({t["column"] for t in alarms}),
            "flagged_columns": sorted({t["column"] for t in flagged}),
            "rates": [_public(t) for t in flagged],
            "summary": "; ".join(describe(t) for t in (alarms or flagged)) or
                       f"every rate within its reference bound ({len(tests)} tested on {len(frame)} rows)",
            "persistence": {"nights": need.nights, "of_last": need.of_last}}


def describe(t: dict[str, Any]) -> str:
    return (f"{t['column']}: {WHAT[t['kind']]} {t['rate']:.1%} ({t['events']} of {t['rows']}) vs reference "
            f"{t['reference_rate']:.1%} (bound {t['bound']:.1%}, p {t['p_value']:.1g}), flagged on "
            f"{t.get('flagged_nights', 1)} of the last {t.get('of_last', 1)} nights")


def _public(t: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(f"{v:.3g}") if k in ("p_value", "q_value") else v) for k, v in t.items()}


def _flag_history(eng: Engagement, paths: StewardPaths, day: dt.date) -> dict[tuple[str, str], list[bool]]:
    """Per (column, kind), whether it was flagged on each judged night before `day`, oldest first."""
    out: dict[tuple[str, str], list[bool]] = {}
    for r in store.select_rows(paths, store.quality_rates, {"engagement": eng.id}, order_by="logical_date"):
        if r["logical_date"] < day.isoformat():
            out.setdefault((r["column_name"], r["kind"]), []).append(bool(r["flagged"]))
    return out


def unaccepted_alarm_nights(eng: Engagement, paths: StewardPaths) -> dict[str, list[str]]:
    """`alarm_nights` without the nights the user accepted (`retraining.accept_flagged_nights`): what leaves
    training windows and the refit trigger's evidence (ADR 0027, 0034)."""
    accepted = {d.isoformat() for d in eng.retraining.accept_flagged_nights}
    return {d: c for d, c in alarm_nights(eng, paths).items() if d not in accepted}


def alarm_nights(eng: Engagement, paths: StewardPaths) -> dict[str, list[str]]:
    """The nights on which a data-quality rate alarmed, with the columns: they leave training windows unless
    the user accepts them (`retraining.accept_flagged_nights`, ADR 0027)."""
    out: dict[str, set[str]] = {}
    for r in store.select_rows(paths, store.quality_rates, {"engagement": eng.id, "alarm": True}):
        out.setdefault(r["logical_date"], set()).add(r["column_name"])
    return {d: sorted(c) for d, c in out.items()}
