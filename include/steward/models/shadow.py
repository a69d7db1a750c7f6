"""The shadow period (ADR 0015, 0024): a challenger the gate could not yet promote is scored, night after
night, next to the champion on the labelled nights it never saw; with its gate's holdout they are the
pooled evidence that promotes or retires it.

The gate can only judge a candidate on the past (ADR 0013); on data where every day is different (one day of
flights a night) a candidate that won its holdout nights can still lose the next ones, and on small nights
a holdout is too few rows to tell a real gain from luck. The nights after the gate answer both.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from steward import mlflow_tags
from steward.config import Engagement
from steward.models.training_set import labelled_batch, training_window
from steward.settings import StewardPaths

if TYPE_CHECKING:
    import pandas as pd

HOLDOUT_NIGHTS_TAG = mlflow_tags.HOLDOUT_NIGHTS  # the gate's out-of-time holdout nights (comma-separated dates)
HOLDOUT_SAMPLE_TAG = mlflow_tags.HOLDOUT_SAMPLE  # nights whose hash-selected share was the gate's holdout instead


def unseen_nights(eng: Engagement, paths: StewardPaths, day: dt.date, since: dt.date) -> dict[dt.date, pd.DataFrame]:
    """The accepted batches after `since` up to `day` with the labels known on `day`, oldest first."""
    window = training_window(eng, paths, day, max((day - since).days, 1), scan=max((day - since).days, 1) +
                             (eng.labels.lookback_days if eng.labels is not None else 0))
    frames = {d: labelled_batch(eng, paths, d, p, day) for d, p in window if d > since}
    return {d: f for d, f in frames.items() if len(f)}


def holdout_nights(eng: Engagement, paths: StewardPaths, day: dt.date, tags: dict[str, str]
                   ) -> dict[dt.date, pd.DataFrame]:
    """The gate's holdout nights of a challenger (from its tag), with the labels known on `day`."""
    from steward.models import training
    from steward.sources import batches

    out = {}
    for tag, share in ((HOLDOUT_NIGHTS_TAG, False), (HOLDOUT_SAMPLE_TAG, True)):
        for text in filter(None, (tags.get(tag) or "").split(",")):
            d = dt.date.fromisoformat(text)
            path = batches.landed_path(eng, paths, d)
            if path.is_file():
                frame = labelled_batch(eng, paths, d, path, day)
                out[d] = training.split_holdout(eng, frame)[1] if share else frame
    return out


def evidence(eng: Engagement, paths: StewardPaths, day: dt.date, since: dt.date, tags: dict[str, str],
             challenger: Any, champion: Any, gate_model: Any = None) -> dict[str, Any]:
    """Both models on the gate's holdout and every labelled night since, pooled (steward.models.evidence), with the
    promotion metric on each unseen night for the record. On the holdout nights the challenger answers with
    `gate_model`, the fit its gate judged, when the version itself learnt them (ADR 0026)."""
    from steward.models import evidence as tests
    from steward.models import training

    metric = eng.promotion.metric
    unseen = unseen_nights(eng, paths, day, since)
    nights = {d.isoformat(): {"challenger": training.score(eng, challenger, f, metric),
                              "champion": training.score(eng, champion, f, metric), "rows": len(f)}
              for d, f in unseen.items()}
    held = holdout_nights(eng, paths, day, tags)
    frames = {**held, **unseen}
    pooled, why = tests.on_nights(eng, challenger, champion, frames,
                                  challenger_on={d: gate_model for d in held} if gate_model is not None else None)
    return {"nights": nights, "unseen_nights": len(unseen), "pooled": pooled, "why_not_comparable": why,
            "holdout_nights": sorted(d.isoformat() for d in frames if d not in unseen)}
