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
    from steward.monitoring import drift

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


ADOPTION_LOOKBACK_DAYS = 35  # feedback for a prediction date is read on any night up to five weeks later


def record_adoption(eng: Engagement, paths: StewardPaths, day: dt.date) -> dict[str, list[dict[str, Any]]]:
    """Read the client's feedback files for the dates served in the last weeks and store, per prediction
    date, how many served rows it acted on. A file is recorded again only when its bytes change (the
    night that saw the change is kept: adoption as known on a night is reproducible). A file that cannot
    be read is rejected with its reason (kept as it is, adoption for that date stays unknown); it never
    fails the night."""
    import hashlib

    import pandas as pd

    from steward.models import predictions
    from steward.sources import batches

    feedback = eng.business.adoption if eng.business else None
    if feedback is None:
        return {"recorded": [], "rejected": []}
    earliest = (day - dt.timedelta(days=ADOPTION_LOOKBACK_DAYS)).isoformat()
    known = {r["prediction_date"]: r for r in adoption_history(paths, eng.id, through=day)}
    recorded: list[dict[str, Any]] = []
    rejected: list[dict[str, str]] = []
    for served in store.select_rows(paths, store.predictions, {"engagement": eng.id}, order_by="prediction_date"):
        pdate = served["prediction_date"]
        path = paths.data_root / feedback.directory / feedback.pattern.format(date=pdate)
        if not earliest <= pdate <= day.isoformat() or not path.is_file():
            continue
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        if pdate in known and known[pdate]["sha256"] == sha and known[pdate]["recorded_on"] != day.isoformat():
            continue
        try:
            frame = batches.read_batch(path, feedback.format)
        except batches.BatchReadError as exc:
            rejected.append({"file": str(path), "reason": f"unreadable: {exc}"})
            continue
        missing = [c for c in (eng.id_column, feedback.acted_column) if c not in frame]
        if missing:
            rejected.append({"file": str(path), "reason": f"no column {', '.join(missing)} (the engagement's "
                                                          "id_column and business.adoption.acted_column)"})
            continue
        ids = set(pd.read_parquet(predictions.predictions_path(eng, paths, pdate), columns=[eng.id_column])
                  [eng.id_column].astype(str))
        frame = frame.assign(**{eng.id_column: frame[eng.id_column].astype(str)})
        # the last answer per id counts (a client may correct itself in the same file)
        frame = frame.drop_duplicates(eng.id_column, keep="last")
        acted = frame[feedback.acted_column].astype(str).str.strip().str.lower().isin(TRUTHY)
        row = {"engagement": eng.id, "prediction_date": pdate, "recorded_on": day.isoformat(),
               "model_version": served["model_version"], "scored_rows": served["rows"],
               "acted_rows": int((acted & frame[eng.id_column].isin(ids)).sum()), "feedback_rows": len(frame),
               "unknown_ids": int((~frame[eng.id_column].isin(ids)).sum()), "sha256": sha}
        store.replace_rows(paths, store.adoption, {"engagement": eng.id, "prediction_date": pdate,
                                                   "recorded_on": day.isoformat()}, [row])
        recorded.append(row)
    return {"recorded": recorded, "rejected": rejected}

def adoption_history(paths: StewardPaths, engagement_id: str, through: dt.date | None = None) -> list[dict[str, Any]]:
    """Adoption per prediction date, as known on `through`."""
    return store.latest_by_prediction_date(paths, store.adoption, engagement_id, through, known_on="recorded_on")


def record(eng: Engagement, paths: StewardPaths, prediction_date: str, labels_through: str | dt.date,
           labelled: pd.DataFrame, *, scored_rows: int, model_version: int) -> dict[str, Any] | None:
    """Price the date's labelled outcomes and store them; None when the engagement has no `business:` block."""
    if eng.business is None:
        return None
    return record_counts(eng, paths, prediction_date, labels_through, outcome_counts(eng, labelled) if len(labelled)
                         else empty_counts(eng), labelled_rows=len(labelled), scored_rows=scored_rows,
                         model_version=model_version)


def empty_counts(eng: Engagement) -> dict[str, Any]:
    return {"absolute_error": 0.0} if eng.problem_type == "regression" else {
        "true_positives": 0, "false_positives": 0, "false_negatives": 0, "true_negatives": 0}


def add_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Outcome counts of two sets of rows together (a night scored in chunks)."""
    return {k: a[k] + b[k] for k in a}


def record_counts(eng: Engagement, paths: StewardPaths, prediction_date: str, labels_through: str | dt.date,
                  counts: dict[str, Any], *, labelled_rows: int, scored_rows: int, model_version: int) -> dict[str, Any] | None:
    """Price outcome counts already made (outcome_counts, possibly summed over chunks) and store them."""
    if eng.business is None:
        return None
    through = labels_through if isinstance(labels_through, str) else labels_through.isoformat()
    row = {"engagement": eng.id, "prediction_date": prediction_date, "labels_through": through,
           "model_version": model_version, "currency": eng.business.currency, "scored_rows": scored_rows,
           "labelled_rows": int(labelled_rows), **counts, **price(eng, counts),
           "minutes_saved": round(scored_rows * eng.business.minutes_saved_per_decision, 2)}
    store.replace_rows(paths, store.business_value, {"engagement": eng.id, "prediction_date": prediction_date,
                                                     "labels_through": through}, [row])
    return row


def history(paths: StewardPaths, engagement_id: str, through: dt.date | None = None) -> list[dict[str, Any]]:
    """Value per prediction date, as known on `through` (the latest labels for each date)."""
    return store.latest_by_prediction_date(paths, store.business_value, engagement_id, through)


def summary(rows: list[dict[str, Any]], adopted: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Totals over some prediction dates: value, cost of errors, net, hours saved, pending rows; adoption
    (rows acted on / rows scored, over the dates with feedback) from `adopted` (adoption_history rows)."""
    scored = sum(r["scored_rows"] for r in rows)
    labelled = sum(r["labelled_rows"] for r in rows)
    fed_rows = sum(r["scored_rows"] for r in adopted or [])
    value = round(sum(r["value_delivered"] for r in rows), 2)
    cost = round(sum(r["cost_of_errors"] for r in rows), 2)
    return {"dates": len(rows), "currency": rows[0]["currency"] if rows else None, "value_delivered": value,
            "cost_of_errors": cost, "net_value": round(value - cost, 2),
            "hours_saved": round(sum(r["minutes_saved"] for r in rows) / 60, 1), "scored_rows": scored,
            "labelled_rows": labelled, "pending_rows": scored - labelled,
            "adoption": round(sum(r["acted_rows"] for r in adopted or []) / fed_rows, 4) if fed_rows else None,
            "feedback_dates": len(adopted or [])}


def period(eng: Engagement, paths: StewardPaths, start: dt.date, end: dt.date) -> dict[str, Any]:
    """The summary over prediction dates start..end as known on `end`; dates served but not yet labelled are
    pending (their decisions still saved time), and the served model is compared with its predecessor on
    the same labelled rows."""
    lo, hi = start.isoformat(), end.isoformat()
    rows = [r for r in history(paths, eng.id, through=end) if lo <= r["prediction_date"] <= hi]
    priced = {r["prediction_date"] for r in rows}
    served = [r for r in store.select_rows(paths, store.predictions, {"engagement": eng.id})
              if lo <= r["prediction_date"] <= hi and r["prediction_date"] not in priced]
    adopted = [r for r in adoption_history(paths, eng.id, through=end) if lo <= r["prediction_date"] <= hi]
    out = summary(rows, adopted)
    waiting = sum(r["rows"] for r in served)
    minutes = eng.business.minutes_saved_per_decision if eng.business else 0
    out.update(scored_rows=out["scored_rows"] + waiting, pending_rows=out["pending_rows"] + waiting,
               hours_saved=round(out["hours_saved"] + waiting * minutes / 60, 1),
               currency=out["currency"] or (eng.business.currency if eng.business else None))
    return out


def against_previous(eng: Engagement, paths: StewardPaths, end: dt.date, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Net value of the served versions and of their predecessors, scored on the same labelled rows."""
    from steward.models import registry, rollback, training
    from steward.monitoring import outcomes

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
