"""What a candidate learns from and is judged on tonight: the window of accepted, labelled batches, each
batch's fingerprint, and the split into training rows and the gate's holdout (ADR 0003, ADR 0013)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from steward import batches
from steward.config import Engagement
from steward.digests import frame_digest, key
from steward.settings import StewardPaths

if TYPE_CHECKING:
    import pandas as pd


class TrainingSet:
    """What a candidate is trained and judged on tonight: the window's labelled rows, split into training rows
    and the gate's holdout (`training.split_window`), with each batch's fingerprint."""

    def __init__(self, eng: Engagement, paths: StewardPaths, day: dt.date, triggers: list[str]):
        import pandas as pd

        from steward import training

        breached = "performance" in triggers
        days = min(eng.retraining.breach_window_days, eng.retraining.window_days) if breached \
            else eng.retraining.window_days
        self.window = training_window(eng, paths, day, days)
        self.problems: list[str] = []
        self.holdout_days: list[dt.date] = []
        if not self.window:
            self.problems.append("no labelled batch to train on yet")
            return
        if eng.labels is None and self.window[-1][0] != day:
            self.problems.append(f"the batch for {day} is not in the landed area; cannot build a holdout")
            return
        self.newest = self.window[-1][0]
        self.frames = {d: labelled_batch(eng, paths, d, p, day) for d, p in self.window}
        fingerprints = {d.isoformat(): batches.sha256_file(p) for d, p in self.window}
        if eng.labels is not None:  # the labels known tonight are part of what was trained on
            fingerprints = {d.isoformat(): key(fingerprints[d.isoformat()], frame_digest(self.frames[d]))
                            for d, _ in self.window}
        self.fingerprints = fingerprints
        # Out of time by default: the newest batches judge a candidate trained on the older ones (ADR 0013).
        self.train, self.holdout, self.holdout_days = training.split_window(eng, self.frames)
        self.rows = pd.concat(list(self.frames.values()), ignore_index=True)  # train + holdout, kept with the version
        self.fingerprint = key(fingerprints)
        self.problems = training.training_problems(eng, self.train, self.holdout)


def training_window(eng: Engagement, paths: StewardPaths, day: dt.date, days: int) -> list[tuple[dt.date, Path]]:
    """Accepted (landed, not quarantined) batches to train on, oldest first: the `days`-night window ending
    on `day`, or, when labels arrive later, the newest `days` served batches whose labels have arrived."""
    from steward import labels

    if eng.labels is None:
        out = []
        for back in range(days - 1, -1, -1):
            d = day - dt.timedelta(days=back)
            p = batches.landed_path(eng, paths, d)
            if p.is_file():
                out.append((d, p))
        return out
    found: list[tuple[dt.date, Path]] = []
    for back in range(eng.labels.lookback_days + 1):
        d = day - dt.timedelta(days=back)
        p = batches.landed_path(eng, paths, d)
        if p.is_file() and not labels.labels_known_by(eng, paths, d.isoformat(), day).empty:
            found.append((d, p))
            if len(found) == days:
                break
    return found[::-1]


def labelled_batch(eng: Engagement, paths: StewardPaths, batch_day: dt.date, path: Path, night: dt.date) -> pd.DataFrame:
    """A landed batch with its target: from the batch itself, or joined to the labels known on `night`."""
    from steward import labels, training

    frame = batches.read_for(eng, path)
    if eng.labels is None:
        return training.labelled(eng, frame)
    frame = frame.drop(columns=[eng.target], errors="ignore")
    frame[eng.id_column] = frame[eng.id_column].astype(str)
    known = labels.labels_known_by(eng, paths, batch_day.isoformat(), night)
    return training.labelled(eng, frame.merge(known, on=eng.id_column, how="inner"))
