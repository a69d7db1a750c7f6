"""Business value of the served predictions, from realised outcomes (ADR 0022).

Per prediction date, when its labels are known: the outcomes of the champion that served it (true and false
positives and negatives, or the absolute error), priced with the engagement's `business:` block; minutes saved
per automated decision (every scored row); adoption from the client's dated feedback files (rows acted on).
Rows still waiting for labels are counted as pending, never priced. Stored per (prediction date, labels known
through) in `steward_business_value`, like realised performance.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from steward import store
from steward.config import Engagement
from steward.settings import StewardPaths

if TYPE_CHECKING:
    import pandas as pd

TRUTHY = {"1", "true", "yes", "y", "t"}


def outcome_counts(eng: Engagement, labelled: pd.DataFrame) -> dict[str, Any]:
    """Confusion counts (binary) or the summed absolute error (regression) of labelled, scored rows
    (training.labelled: the target encoded)."""
    from steward import drift

    if eng.problem_type == "regression":
        error = (labelled[eng.target].astype(float) - labelled[drift.PREDICTION].astype(float)).abs().sum()
        return {"absolute_error": float(error)}
    # training.labelled encodes the target 1 = the positive class, and the models predict that encoding
    truth = labelled[eng.target].astype(int) == 1
    predicted = labelled[drift.PREDICTION].astype(int) == 1
    return {"true_positives": int((truth & predicted).sum()), "false_positives": int((~truth & predicted).sum()),
            "false_negatives": int((truth & ~predicted).sum()), "true_negatives": int((~truth & ~predicted).sum())}


def price(eng: Engagement, counts: dict[str, Any]) -> dict[str, float]:
    """Value delivered and cost of errors of some outcomes, in the engagement's currency."""
    b = eng.business
    assert b is not None
    if eng.problem_type == "regression":
        return {"value_delivered": 0.0, "cost_of_errors": round(counts["absolute_error"] * (b.cost_per_unit_error or 0), 2)}
    value = counts["true_positives"] * (b.value_per_true_positive or 0)
    cost = counts["false_positives"] * (b.cost_per_false_positive or 0) + \
        counts["false_negatives"] * (b.cost_per_false_negative or 0)
    return {"value_delivered": round(value, 2), "cost_of_errors": round(cost, 2)}


def acted_rows(eng: Engagement, paths: StewardPaths, prediction_date: str, served_ids: pd.Series) -> int | None:
    """Rows of the date's predictions the client acted on, from its feedback file; None without one."""
    from steward import batches

    feedback = eng.business.adoption if eng.business else None
    if feedback is None:
        return None
    path = paths.data_root / feedback.directory / feedback.pattern.format(date=prediction_date)
    if not path.is_file():
        return None
    try:
        frame = batches.read_batch(path, feedback.format)
    except batches.BatchReadError:
        return None  # an unreadable feedback file counts as none yet: adoption is shown as unknown
    if eng.id_column not in frame or feedback.acted_column not in frame:
        return None
    acted = frame[frame[feedback.acted_column].astype(str).str.strip().str.lower().isin(TRUTHY)]
    return int(acted[eng.id_column].astype(str).isin(set(served_ids.astype(str))).sum())


def record(eng: Engagement, paths: StewardPaths, prediction_date: str, labels_through: str | dt.date,
           labelled: pd.DataFrame, *, scored_rows: int, served_ids: pd.Series, model_version: int) -> dict[str, Any] | None:
    """Price the date's labelled outcomes and store them; None when the engagement has no `business:` block."""
    if eng.business is None:
        return None
    counts = outcome_counts(eng, labelled) if len(labelled) else (
        {"absolute_error": 0.0} if eng.problem_type == "regression" else
        {"true_positives": 0, "false_positives": 0, "false_negatives": 0, "true_negatives": 0})
    through = labels_through if isinstance(labels_through, str) else labels_through.isoformat()
    row = {"engagement": eng.id, "prediction_date": prediction_date, "labels_through": through,
           "model_version": model_version, "currency": eng.business.currency, "scored_rows": scored_rows,
           "labelled_rows": int(len(labelled)), **counts, **price(eng, counts),
           "minutes_saved": round(scored_rows * eng.business.minutes_saved_per_decision, 2),
           "acted_rows": acted_rows(eng, paths, prediction_date, served_ids)}
    store.replace_rows(paths, store.business_value, {"engagement": eng.id, "prediction_date": prediction_date,
                                                     "labels_through": through}, [row])
    return row


def history(paths: StewardPaths, engagement_id: str, through: dt.date | None = None) -> list[dict[str, Any]]:
    """Value per prediction date, as known on `through` (the latest labels for each date)."""
    return store.latest_by_prediction_date(paths, store.business_value, engagement_id, through)


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over some prediction dates: value, cost of errors, net, hours saved, adoption, pending rows."""
    scored = sum(r["scored_rows"] for r in rows)
    labelled = sum(r["labelled_rows"] for r in rows)
    with_feedback = [r for r in rows if r["acted_rows"] is not None]
    fed_rows = sum(r["scored_rows"] for r in with_feedback)
    value = round(sum(r["value_delivered"] for r in rows), 2)
    cost = round(sum(r["cost_of_errors"] for r in rows), 2)
    return {"dates": len(rows), "currency": rows[0]["currency"] if rows else None, "value_delivered": value,
            "cost_of_errors": cost, "net_value": round(value - cost, 2),
            "hours_saved": round(sum(r["minutes_saved"] for r in rows) / 60, 1), "scored_rows": scored,
            "labelled_rows": labelled, "pending_rows": scored - labelled,
            "adoption": round(sum(r["acted_rows"] for r in with_feedback) / fed_rows, 4) if fed_rows else None}


def period(eng: Engagement, paths: StewardPaths, start: dt.date, end: dt.date) -> dict[str, Any]:
    """The summary over prediction dates start..end as known on `end`; dates served but not yet labelled are
    pending (their decisions still saved time), and the served model is compared with its predecessor on
    the same labelled rows."""
    lo, hi = start.isoformat(), end.isoformat()
    rows = [r for r in history(paths, eng.id, through=end) if lo <= r["prediction_date"] <= hi]
    priced = {r["prediction_date"] for r in rows}
    served = [r for r in store.select_rows(paths, store.predictions, {"engagement": eng.id})
              if lo <= r["prediction_date"] <= hi and r["prediction_date"] not in priced]
    out = summary(rows)
    waiting = sum(r["rows"] for r in served)
    minutes = eng.business.minutes_saved_per_decision if eng.business else 0
    out.update(scored_rows=out["scored_rows"] + waiting, pending_rows=out["pending_rows"] + waiting,
               hours_saved=round(out["hours_saved"] + waiting * minutes / 60, 1),
               currency=out["currency"] or (eng.business.currency if eng.business else None))
    return out


def against_previous(eng: Engagement, paths: StewardPaths, end: dt.date, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Net value of the served versions and of their predecessors, scored on the same labelled rows."""
    from steward import outcomes, registry, rollback, training

    if eng.business is None or not rows:
        return None
    c = registry.client(paths)
    served = served_net = previous_net = 0.0
    compared: list[str] = []
    for version in sorted({r["model_version"] for r in rows}):
        dates = [r["prediction_date"] for r in rows if r["model_version"] == version]
        previous = rollback.previous_version(c, eng, registry.get_version(c, eng, version))
        frame = outcomes.window_frame(eng, paths, end, dates)
        if previous is None or frame.empty:
            continue
        for model_version, bucket in ((version, "served"), (previous, "previous")):
            scored = training.predict(eng, registry.load(c, registry.get_version(c, eng, model_version)), frame)
            priced = price(eng, outcome_counts(eng, scored))
            net = priced["value_delivered"] - priced["cost_of_errors"]
            if bucket == "served":
                served_net += net
                served += len(scored)
            else:
                previous_net += net
        compared.append(f"v{version} vs v{previous}")
    if not compared:
        return None
    return {"rows": int(served), "net_value": round(served_net, 2), "previous_net_value": round(previous_net, 2),
            "gain": round(served_net - previous_net, 2), "compared": compared}
