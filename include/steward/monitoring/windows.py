"""What a night's drift is judged on, and for how long it must hold before anything acts on it.

- Windows for small batches: a night with fewer than `drift.min_rows` accepted rows is topped up with the
  latest accepted nights before it (at most `drift.max_window_nights` nights, tonight included); when even
  that is too small the night is "not enough data yet", a state and not an alarm.
- Persistence: dataset drift alarms and retrains only when it held on `persistence.nights` of the last
  `persistence.of_last` judged nights against the same reference (a promotion starts the count again).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from steward import store
from steward.config import Engagement
from steward.settings import StewardPaths
from steward.sources import batches

if TYPE_CHECKING:
    import pandas as pd

JUDGED = "judged"
NOT_ENOUGH_DATA = "not_enough_data"


def drift_window(eng: Engagement, paths: StewardPaths, day: dt.date, tonight: pd.DataFrame,
                 min_rows: int | None = None, max_nights: int | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Tonight's rows, topped up with earlier accepted batches (newest first) while below `drift.min_rows`
    (or `min_rows`), at most `drift.max_window_nights` (or `max_nights`) nights."""
    import pandas as pd

    min_rows = eng.drift.min_rows if min_rows is None else min_rows
    max_nights = eng.drift.max_window_nights if max_nights is None else max_nights
    frames, nights = [tonight], [day.isoformat()]
    rows = len(tonight)
    for back in range(1, max_nights):
        if rows >= min_rows:
            break
        earlier = day - dt.timedelta(days=back)
        landed = batches.landed_path(eng, paths, earlier)
        if landed.is_file():  # accepted nights only: a quarantined batch was moved away
            frame = batches.read_for(eng, landed)
            frames.append(frame)
            nights.append(earlier.isoformat())
            rows += len(frame)
    window = {"nights": sorted(nights), "rows": rows, "min_rows": min_rows,
              "windowed": len(nights) > 1, "enough": rows >= min_rows}
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else tonight
    return frame, window


def not_enough_data(eng: Engagement, window: dict[str, Any]) -> dict[str, Any]:
    """The drift section of a night too small to judge, even with its window."""
    return {"state": NOT_ENOUGH_DATA, "dataset_drift": False, "persistent": False, "drift_share": 0.0,
            "share_threshold": eng.drift.drift_share, "features": {}, "drifted_features": [],
            "features_not_computable": {}, "prediction_drift": None, "report_html": None, "report_json": None,
            "reason": f"not enough data yet: {window['rows']} rows in {len(window['nights'])} night(s) "
                      f"< drift.min_rows {eng.drift.min_rows} (window up to {eng.drift.max_window_nights} nights)"}


def record_night(eng: Engagement, paths: StewardPaths, day: dt.date, drift: dict[str, Any],
                 window: dict[str, Any], reference: dict[str, Any]) -> None:
    iso = day.isoformat()
    store.replace_rows(paths, store.drift_nights, {"engagement": eng.id, "logical_date": iso}, [{
        "engagement": eng.id, "logical_date": iso, "state": drift["state"], "dataset_drift": drift["dataset_drift"],
        "drift_share": drift["drift_share"], "rows": window["rows"], "window_nights": len(window["nights"]),
        "reference_kind": reference["kind"], "reference_version": reference["model_version"],
        "reference_sha256": reference["sha256"]}])


def persistence(eng: Engagement, paths: StewardPaths, day: dt.date, reference_sha256: str) -> dict[str, Any]:
    """How many of the last `of_last` judged nights (through `day`, same reference) had dataset drift."""
    rule = eng.drift.persistence
    rows = [r for r in store.select_rows(paths, store.drift_nights, {"engagement": eng.id}, order_by="logical_date")
            if r["logical_date"] <= day.isoformat() and r["state"] == JUDGED
            and r["reference_sha256"] == reference_sha256][-rule.of_last:]
    drifted = [r["logical_date"] for r in rows if r["dataset_drift"]]
    return {"nights_drifted": len(drifted), "of_last": len(rows), "needs": rule.nights, "window": rule.of_last,
            "drifted_nights": drifted, "persistent": len(drifted) >= rule.nights}


def counted_once(drift: dict[str, Any], quality_drift: dict[str, Any]) -> dict[str, Any]:
    """One fault, one signal (ADR 0027): a feature whose data-quality rates alarm tonight is judged by the
    data-quality signal, not by drift. Evidently's drift tests drop missing values, so a column's missing
    share never moves drift; a unit change or a renamed category moves both, and would otherwise fire the
    drift response (retrain on the fault) beside the quality response (hold). Such a feature is named in the
    drift verdict and left out of the share that decides dataset drift."""
    columns = [c for c in quality_drift.get("alarm_columns") or [] if c in (drift.get("features") or {})]
    if not columns or drift.get("state") != JUDGED:
        return {**drift, "judged_by_quality": {}}
    reasons = {t["column"]: t["kind"] for t in quality_drift.get("rates") or [] if t["column"] in columns}
    judged = [c for c, e in drift["features"].items() if "not_computable" not in e and c not in columns]
    drifted = [c for c in drift["drifted_features"] if c not in columns]
    share = len(drifted) / len(judged) if judged else 0.0
    return {**drift, "drifted_features": drifted, "drift_share": round(share, 4),
            "dataset_drift": bool(judged) and share >= drift["share_threshold"],
            "judged_by_quality": {c: f"data-quality alarm ({reasons.get(c, 'rate')}): judged by the data-quality "
                                  "signal, not counted as drift" for c in columns}}
