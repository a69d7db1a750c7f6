"""Delayed labels: join the ground truth that arrived tonight to the predictions it belongs to, and
compute realised performance per prediction date (Evidently, on the predictions that were served).

Rules for what arrives (each counted in `steward_label_arrivals` and in the audit record):
- a label whose id was never served is *unknown*: counted, never joined (no guessing by row order);
- the same id twice in a file: the last row wins, the others are counted as duplicates; an id labelled
  again on a later night replaces the earlier label (last arrival wins);
- a label for a row of a quarantined batch is *set aside* to `labels/<id>/aside/<date>.csv`, reported;
- a label file without the id column or the target is set aside whole, with the reason;
- a label whose value is not one of the target's classes (or not a number, for regression) is set aside
  to `labels/<id>/aside/<date>.outside_classes.csv` with the reason, and counted; the rest of the file
  is used;
- a label day with one class is used: its rows count for training and pooled SLAs, and the metrics that
  need both classes (ROC AUC ...) are recorded as not computable for that day, with the reason.

Labels are kept per prediction date in `labels/<id>/by_prediction_date/<date>.parquet` with the night they
arrived, so realised performance for night N is computed from labels that had arrived by N: a rerun of N
gives the same numbers even after later labels came in. Performance rows are keyed by (prediction date,
labels through), a time series of what was known when.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward import store
from steward.config import Engagement
from steward.models import predictions
from steward.settings import StewardPaths, inside
from steward.sources import batches

if TYPE_CHECKING:
    import pandas as pd

ARRIVED_ON = "arrived_on"


class LabelsNotConfiguredError(ValueError):
    pass


def label_file(eng: Engagement, paths: StewardPaths, day: dt.date) -> Path:
    """The night's label file: in the data root, or, for labels in a database, the night's rows as landed."""
    if eng.labels is None:
        raise LabelsNotConfiguredError(f"{eng.id} declares no labels source")
    if eng.labels.source == "sql":
        return _labels_root(eng, paths) / "arrived" / f"{day.isoformat()}.parquet"
    return inside(paths.data_root, f"{eng.labels.directory}/{eng.labels.pattern.format(date=day.isoformat())}")


def _labels_root(eng: Engagement, paths: StewardPaths) -> Path:
    return inside(paths.home / "labels", eng.id)


def stored_labels_path(eng: Engagement, paths: StewardPaths, prediction_date: str) -> Path:
    return _labels_root(eng, paths) / "by_prediction_date" / f"{prediction_date}.parquet"


def aside_path(eng: Engagement, paths: StewardPaths, day: dt.date) -> Path:
    return _labels_root(eng, paths) / "aside" / f"{day.isoformat()}.csv"


def _served_ids(eng: Engagement, paths: StewardPaths, day: dt.date, lookback: int) -> pd.Series:
    """id -> prediction date for every prediction served in the lookback window (newest wins)."""
    import pandas as pd

    parts = []
    for back in range(lookback, -1, -1):
        d = day - dt.timedelta(days=back)
        p = predictions.predictions_path(eng, paths, d)
        if p.is_file():
            ids = pd.read_parquet(p, columns=[eng.id_column])[eng.id_column].astype(str)
            parts.append(pd.Series(d.isoformat(), index=ids.to_numpy()))
    if not parts:
        return pd.Series(dtype=object)
    served = pd.concat(parts)
    return served[~served.index.duplicated(keep="last")]


def _quarantined_ids(eng: Engagement, paths: StewardPaths, day: dt.date, lookback: int) -> dict[str, str]:
    """id -> date for rows of batches quarantined in the window (unreadable batches contribute nothing)."""
    out: dict[str, str] = {}
    for back in range(lookback, -1, -1):
        d = day - dt.timedelta(days=back)
        f = batches.quarantine_dir(eng, paths, d) / eng.batch_filename(d)
        if not f.is_file():
            continue
        try:
            frame = batches.read_for(eng, f)
        except batches.BatchReadError:
            continue
        if eng.id_column in frame:
            out.update(dict.fromkeys(frame[eng.id_column].dropna().astype(str), d.isoformat()))
    return out


def join(eng: Engagement, paths: StewardPaths, day: dt.date, out_dir: Path, engine: Any = None) -> dict[str, Any]:
    """Join tonight's label file (if any) and recompute realised performance for the dates it touched.
    Labels in a database (`engine`) are first landed as the night's file (kept: a rerun joins the same rows)."""

    if eng.labels is None:
        return {"configured": False}
    source = label_file(eng, paths, day)
    if eng.labels.source == "sql" and not source.is_file():
        from steward.sources import sql_source

        sql_source.land_labels(eng, engine, day, source)
    result: dict[str, Any] = {"configured": True, "file": str(source), "arrived": source.is_file()}
    if not source.is_file():
        result["performance"] = []
        return result
    result["sha256"] = batches.sha256_file(source)
    try:
        raw = batches.read_for(eng, source, eng.labels.format)
        missing = [c for c in (eng.id_column, eng.target) if c not in raw.columns]
        if missing:
            raise batches.BatchReadError(f"missing column(s) {missing}")
    except batches.BatchReadError as exc:
        aside = aside_path(eng, paths, day)
        aside.parent.mkdir(parents=True, exist_ok=True)
        batches.atomic_write_bytes(aside.with_suffix(".rejected"), source.read_bytes())
        result.update(rejected=str(exc), aside=str(aside.with_suffix(".rejected")), performance=[])
        _record_arrival(eng, paths, day, result, rows=0, joined=0, unknown=0, duplicates=0, aside=0, dates=[])
        return result
    raw = raw[[eng.id_column, eng.target]].copy()
    raw[eng.id_column] = raw[eng.id_column].astype(str)
    rows = len(raw)
    unlabelled = int(raw[eng.target].isna().sum())
    raw = raw[raw[eng.target].notna()]
    invalid = invalid_targets(eng, raw[eng.target])
    if invalid.any():
        bad = raw[invalid]
        aside = aside_path(eng, paths, day).with_suffix(".outside_classes.csv")
        aside.parent.mkdir(parents=True, exist_ok=True)
        expected = eng.classes if eng.is_classification else "a number"
        batches.atomic_write_bytes(aside, bad.assign(reason=f"target value is not one of {expected}")
                                   .to_csv(index=False).encode())
        result["outside_classes"] = {"rows": int(invalid.sum()), "expected": expected, "path": str(aside),
                                     "examples": sorted({str(v) for v in bad[eng.target]})[:5]}
        raw = raw[~invalid]
    duplicates = int(raw.duplicated(eng.id_column, keep="last").sum())
    raw = raw.drop_duplicates(eng.id_column, keep="last")
    lookback = eng.labels.lookback_days
    served = _served_ids(eng, paths, day, lookback)
    is_served = raw[eng.id_column].isin(served.index)
    joined = raw[is_served].assign(prediction_date=lambda f: served.loc[f[eng.id_column]].to_numpy())
    rest = raw[~is_served]
    quarantined = _quarantined_ids(eng, paths, day, lookback)
    for_quarantine = rest[rest[eng.id_column].isin(quarantined)]
    unknown = int(len(rest) - len(for_quarantine))
    if len(for_quarantine):
        aside = aside_path(eng, paths, day)
        aside.parent.mkdir(parents=True, exist_ok=True)
        kept = for_quarantine.assign(quarantined_batch=for_quarantine[eng.id_column].map(quarantined),
                                     reason="label for a row of a quarantined batch")
        batches.atomic_write_bytes(aside, kept.to_csv(index=False).encode())
        result["aside"] = str(aside)
    dates = sorted(joined["prediction_date"].unique().tolist())
    for pdate in dates:
        _store_labels(eng, paths, pdate, day, joined[joined["prediction_date"] == pdate][[eng.id_column, eng.target]])
    result.update(rows=rows, joined=len(joined), unknown_ids=unknown, duplicates=duplicates,
                  for_quarantined=len(for_quarantine), unlabelled_rows=unlabelled, prediction_dates=dates)
    result.setdefault("outside_classes", None)
    result["performance"] = [realised(eng, paths, pdate, day, out_dir) for pdate in dates]
    _record_arrival(eng, paths, day, result, rows=rows, joined=len(joined), unknown=unknown,
                    duplicates=duplicates, aside=len(for_quarantine), dates=dates)
    return result


def _record_arrival(eng: Engagement, paths: StewardPaths, day: dt.date, result: dict[str, Any], *, rows: int,
                    joined: int, unknown: int, duplicates: int, aside: int, dates: list[str]) -> None:
    store.replace_rows(paths, store.label_arrivals, {"engagement": eng.id, "arrival_date": day.isoformat()}, [{
        "engagement": eng.id, "arrival_date": day.isoformat(), "rows": rows, "joined": joined, "unknown_ids": unknown,
        "duplicates": duplicates, "for_quarantined": aside, "sha256": result["sha256"], "prediction_dates": dates,
        "outside_classes": (result.get("outside_classes") or {}).get("rows", 0)}])


def invalid_targets(eng: Engagement, target: pd.Series) -> pd.Series:
    """Present label values the model can never learn or be judged on: outside the classes, or not a
    finite number for a regression target."""
    import numpy as np
    import pandas as pd

    from steward.models import metrics

    if eng.is_classification:
        return metrics.outside_classes(eng, target)
    number = pd.to_numeric(target, errors="coerce").astype("float64")
    return target.notna() & ~np.isfinite(number.fillna(np.inf))


def _store_labels(eng: Engagement, paths: StewardPaths, pdate: str, day: dt.date, new: pd.DataFrame) -> None:
    """Add tonight's labels to the per-date label file (tonight's earlier copy, from a rerun, is replaced)."""
    import pandas as pd

    path = stored_labels_path(eng, paths, pdate)
    frames = []
    if path.is_file():
        old = pd.read_parquet(path)
        frames.append(old[old[ARRIVED_ON] != day.isoformat()])
    frames.append(new.assign(**{ARRIVED_ON: day.isoformat()}))
    # Every arrival is kept (a later correction must not erase what an earlier night knew).
    merged = pd.concat(frames, ignore_index=True).sort_values(ARRIVED_ON, kind="stable").reset_index(drop=True)
    predictions.write_frame(merged, path)


def labels_known_by(eng: Engagement, paths: StewardPaths, pdate: str, day: dt.date) -> pd.DataFrame:
    """The labels of prediction date `pdate` that had arrived by night `day` (last arrival wins)."""
    import pandas as pd

    path = stored_labels_path(eng, paths, pdate)
    if not path.is_file():
        return pd.DataFrame(columns=[eng.id_column, eng.target])
    frame = pd.read_parquet(path)
    known = frame[frame[ARRIVED_ON] <= day.isoformat()].sort_values(ARRIVED_ON, kind="stable")
    return known.drop_duplicates(eng.id_column, keep="last")[[eng.id_column, eng.target]]


def realised(eng: Engagement, paths: StewardPaths, pdate: str, day: dt.date, out_dir: Path) -> dict[str, Any]:
    """Realised performance of the predictions served on `pdate`, from the labels known on `day`."""
    import pandas as pd

    from steward.monitoring import drift

    served_frame = pd.read_parquet(predictions.predictions_path(eng, paths, pdate))
    served_frame[eng.id_column] = served_frame[eng.id_column].astype(str)
    from steward.models import training

    labelled = served_frame.merge(labels_known_by(eng, paths, pdate, day), on=eng.id_column, how="inner")
    labelled = labelled.rename(columns={predictions.PREDICTION: drift.PREDICTION, predictions.SCORE: drift.PROBA})
    labelled = training.labelled(eng, labelled)
    version = int(served_frame[predictions.VERSION].iloc[0])
    metric = eng.performance.metric
    perf = drift.measure_performance(eng, labelled, out_dir / "realised" / pdate)
    value = perf["metrics"].get(metric)
    not_computable = perf["not_computable"].get(metric)
    served_row = store.select_rows(paths, store.predictions, {"engagement": eng.id, "prediction_date": pdate})
    estimated = served_row[0]["estimated_value"] if served_row else None
    row = {"engagement": eng.id, "prediction_date": pdate, "metric": metric, "realised_value": value,
           "labelled_rows": len(labelled), "model_version": version, "estimated_value": estimated,
           "estimate_error": None if estimated is None or value is None else round(estimated - value, 6),
           "labels_through": day.isoformat(), "report_html": perf["report_html"], "not_computable": not_computable}
    store.replace_rows(paths, store.performance, {"engagement": eng.id, "prediction_date": pdate,
                                                  "labels_through": day.isoformat()}, [row])
    from steward.operations import value

    value.record(eng, paths, pdate, day, labelled, scored_rows=len(served_frame), model_version=version)
    from steward.models import baselines

    baselines.realise(eng, paths, pdate, day)  # the same rows for the never-retrained and periodic baselines
    return {k: row[k] for k in ("prediction_date", "metric", "realised_value", "labelled_rows", "model_version",
                                "estimated_value", "estimate_error", "report_html", "not_computable")}


def history(paths: StewardPaths, engagement_id: str, through: dt.date | None = None) -> list[dict[str, Any]]:
    """Realised performance per prediction date, as known on `through` (latest labels first come last)."""
    return store.latest_by_prediction_date(paths, store.performance, engagement_id, through)
