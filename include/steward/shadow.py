"""The shadow period (ADR 0015): a challenger that passed the gate is scored, night after night, next to the
champion on the labelled nights it never saw, until those nights confirm or refute it.

The gate can only judge a candidate on the past (ADR 0013); on data where every day is different (one day of
flights a night) a candidate that won its holdout nights can still lose the next ones. The nights after the
gate are the question the promotion asks, so the promotion waits for their labels.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from steward.config import Engagement
from steward.settings import StewardPaths
from steward.training_set import labelled_batch, training_window

if TYPE_CHECKING:
    import pandas as pd


def unseen_nights(eng: Engagement, paths: StewardPaths, day: dt.date, since: dt.date) -> dict[dt.date, pd.DataFrame]:
    """The accepted batches after `since` up to `day` with the labels known on `day`, oldest first."""
    window = training_window(eng, paths, day, max((day - since).days, 1))
    frames = {d: labelled_batch(eng, paths, d, p, day) for d, p in window if d > since}
    return {d: f for d, f in frames.items() if len(f)}


def evidence(eng: Engagement, paths: StewardPaths, day: dt.date, since: dt.date, challenger: Any, champion: Any
             ) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """Both models' promotion metric on each unseen night, and on the rows of the first
    `promotion.shadow_nights` nights where it is computable taken together (None until there are enough)."""
    import pandas as pd

    from steward import training

    metric, needed = eng.promotion.metric, eng.promotion.shadow_nights
    nights: dict[str, dict[str, Any]] = {}
    judged: list[pd.DataFrame] = []
    for d, frame in unseen_nights(eng, paths, day, since).items():
        scores = {"challenger": training.score(eng, challenger, frame, metric),
                  "champion": training.score(eng, champion, frame, metric), "rows": len(frame)}
        nights[d.isoformat()] = scores
        if scores["challenger"] is not None and scores["champion"] is not None and len(judged) < needed:
            judged.append(frame)
    if not needed or len(judged) < needed:
        return nights, None
    rows = pd.concat(judged, ignore_index=True)
    return nights, {"challenger": training.score(eng, challenger, rows, metric),
                    "champion": training.score(eng, champion, rows, metric), "rows": len(rows)}
