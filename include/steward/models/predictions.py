"""Scoring the night's batch with the champion: what the client consumes, traceable to a model version.

Predictions are written to `<STEWARD_HOME>/predictions/<engagement>/<date>.parquet` (id, prediction,
score for binary classifiers, model version) and indexed in the `steward_predictions` table together
with the CBPE estimate of the night's performance (see `steward.monitoring.estimate`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward import store
from steward.config import Engagement
from steward.settings import StewardPaths, inside
from steward.sources import batches

if TYPE_CHECKING:
    import pandas as pd

PREDICTION = "prediction"
SCORE = "score"
VERSION = "model_version"


def predictions_path(eng: Engagement, paths: StewardPaths, day: dt.date | str) -> Path:
    return inside(paths.home / "predictions", f"{eng.id}/{str(day)[:10]}.parquet")


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Parquet written to a temporary name then renamed: readers never see half a file."""
    with batches.atomic_target(path) as tmp:
        frame.to_parquet(tmp, index=False)


def served_frame(eng: Engagement, batch: pd.DataFrame, model: Any, version: int) -> pd.DataFrame:
    """What the client consumes for some rows: the id, the prediction, the score (binary) and the version."""
    import pandas as pd

    from steward.models import training
    from steward.monitoring import drift

    scored = training.predict(eng, model, batch)
    frame = pd.DataFrame({eng.id_column: scored[eng.id_column], PREDICTION: scored[drift.PREDICTION]})
    if drift.PROBA in scored:
        frame[SCORE] = scored[drift.PROBA].astype(float)
    frame[VERSION] = version
    return frame


def score_batch(eng: Engagement, paths: StewardPaths, day: dt.date, batch: pd.DataFrame, model: Any,
                version: int, calibration: pd.DataFrame | None) -> dict[str, Any]:
    """`calibration`: labelled rows the model was not trained on, for the CBPE estimate (None: no estimate)."""
    frame = served_frame(eng, batch, model, version)
    path = predictions_path(eng, paths, day)
    write_frame(frame, path)
    estimated = None if calibration is None else estimate_night(eng, model, calibration, frame)
    return record(eng, paths, day, path, version, len(frame), estimated)


def record(eng: Engagement, paths: StewardPaths, day: dt.date, path: Path, version: int, rows: int,
           estimated: dict[str, Any] | None) -> dict[str, Any]:
    """Index the night's predictions file (and its CBPE estimate) in `steward_predictions`."""
    row = {"engagement": eng.id, "prediction_date": day.isoformat(), "model_version": version, "rows": rows,
           "path": str(path), "sha256": batches.sha256_file(path),
           "estimated_metric": estimated["metric"] if estimated else None,
           "estimated_value": estimated["value"] if estimated else None}
    store.replace_rows(paths, store.predictions, {"engagement": eng.id, "prediction_date": day.isoformat()}, [row])
    return {"path": str(path), "sha256": row["sha256"], "rows": rows, "model_version": version,
            "estimate": estimated}


def estimate_night(eng: Engagement, model: Any, calibration: pd.DataFrame, served: pd.DataFrame) -> dict[str, Any] | None:
    """CBPE estimate of the SLA metric for a binary classifier, calibrated on `calibration`'s holdout rows."""
    from steward.models import training
    from steward.monitoring import estimate

    metric = eng.performance.metric
    if eng.problem_type != "binary_classification" or metric not in estimate.ESTIMABLE:
        return None
    _, holdout = training.split_holdout(eng, training.labelled(eng, calibration))
    if holdout[eng.target].nunique() < 2:
        return None
    ref_scores = model.predict_proba(holdout[list(eng.features)])[:, 1]
    cal = estimate.calibrator(ref_scores, holdout[eng.target].astype(int).to_numpy())
    value = estimate.estimate(metric, cal.predict(served[SCORE].to_numpy()), served[PREDICTION].to_numpy())
    return None if value is None else {"metric": metric, "value": round(value, 6), "method": "CBPE (isotonic calibration)",
                                       "calibration_rows": len(holdout)}


def served(paths: StewardPaths, engagement_id: str) -> list[dict[str, Any]]:
    return store.select_rows(paths, store.predictions, {"engagement": engagement_id}, order_by="prediction_date")
