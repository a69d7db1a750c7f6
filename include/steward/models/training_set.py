"""What a candidate learns from and is judged on tonight: the window of accepted, labelled batches, each
batch's fingerprint, and the split into training rows and the gate's holdout (ADR 0003, ADR 0013)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward import mlflow_tags
from steward.config import Engagement
from steward.digests import frame_digest, key
from steward.results import Growth
from steward.settings import StewardPaths
from steward.sources import batches

if TYPE_CHECKING:
    import pandas as pd


class TrainingSet:
    """What a candidate is trained and judged on tonight (ADR 0024): the champion's own training rows plus the
    accepted labelled nights since (`retraining.window: expanding`, capped at `window_rows`), or the newest
    `window_days` nights only (`sliding` without `window_rows`, and after a performance breach: the concept
    the older rows describe no longer holds). The gate's holdout is the newest of the new nights, out of time
    (ADR 0013); `weights` are the rows' recency weights when `recency_half_life_days` is set."""

    def __init__(self, eng: Engagement, paths: StewardPaths, day: dt.date, triggers: list[str],
                 champion: dict[str, Any] | None = None):
        import pandas as pd

        from steward.models import training

        rules = eng.retraining
        breached = "performance" in triggers
        self.problems: list[str] = []
        self.holdout_days: list[dt.date] = []
        self.champion_rows: pd.DataFrame | None = None
        self.champion_source: dict[str, Any] | None = None
        self.weights: Any = None
        self.left_out: dict[str, str] = {}  # nights that would belong to the window, and why they do not
        self.learnt_before: set[dt.date] = set()  # the nights the champion's rows already hold
        self.half_life = rules.recency_half_life_days
        self.final_fit = rules.final_fit
        self.mode = "breach" if breached else ("sliding" if rules.window == "sliding" and rules.window_rows is None
                                               else rules.window)
        if self.mode in ("breach", "sliding") or champion is None:
            days = min(rules.breach_window_days, rules.window_days) if breached else rules.window_days
            self.window = training_window(eng, paths, day, days)
        else:
            self.champion_rows, self.champion_source, learnt = champion_training_rows(eng, paths, champion)
            self.learnt_before = learnt
            self.window = nights_since(eng, paths, day, learnt)
            self.left_out = purged_nights(eng, paths, day, learnt, {d for d, _ in self.window})
        self._without_quality_alarms(eng, paths)
        if not self.window:
            self.problems.append("no labelled batch to train on yet" if self.champion_rows is None else
                                 f"no accepted labelled night since champion v{champion['version']} was trained"
                                 if champion else "no labelled batch to train on yet")
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
        # Out of time by default: the newest batches judge a candidate trained on the older ones (ADR 0013).
        train, self.holdout, self.holdout_days = training.split_window(eng, self.frames)
        ages = _ages(train, self.frames, self.holdout_days, day)
        if self.champion_rows is not None and self.champion_source is not None:
            fingerprints = {self.champion_source["key"]: self.champion_source["sha256"], **fingerprints}
            old = self.champion_rows
            train = pd.concat([old, train], ignore_index=True)
            ages = [(day - self.champion_source["trained_for"]).days + 1] * len(old) + ages
        if rules.window_rows is not None and len(train) > rules.window_rows:  # the oldest rows drop first
            train, ages = train.iloc[-rules.window_rows:].reset_index(drop=True), ages[-rules.window_rows:]
        self.weights = self._recency(ages)
        self.train = train
        self.fingerprints = fingerprints
        self.rows = pd.concat([train, self.holdout], ignore_index=True)  # kept with the version
        # the registered version's own fit (ADR 0026): the window with its holdout, capped like the training rows
        final_ages = ages + _holdout_ages(self.holdout, self.frames, self.holdout_days, day)
        self.final_rows = self.rows
        if rules.window_rows is not None and len(self.rows) > rules.window_rows:
            self.final_rows = self.rows.iloc[-rules.window_rows:].reset_index(drop=True)
            final_ages = final_ages[-rules.window_rows:]
        self.final_weights = self._recency(final_ages)
        self.fingerprint = key(fingerprints)
        self.problems = training.training_problems(eng, self.train, self.holdout)

    def learnt_nights(self) -> list[str]:
        """Every night the version trained on this set holds, its champion's included (kept beside the version
        as its reference's `window`): the next candidate's window starts after them, and growth counts from them.
        Recording only the newest window let a later candidate add the nights an earlier champion had learnt
        once more, while their labels were within the lookback (ADR 0034: duplicated rows, and a holdout the
        champion had learnt, on every feed whose labels come late)."""
        return sorted(d.isoformat() for d in self.learnt_before | {d for d, _ in self.window})

    def _without_quality_alarms(self, eng: Engagement, paths: StewardPaths) -> None:
        """A night a data-quality alarm flagged leaves the window, recorded, unless the user accepted it."""
        from steward.checks import quality_rates

        alarms = quality_rates.unaccepted_alarm_nights(eng, paths)
        kept = []
        for d, p in self.window:
            columns = alarms.get(d.isoformat())
            if columns:
                self.left_out[d.isoformat()] = (f"data-quality alarm on {', '.join(columns)}: left out of the window "
                                                "(retraining.accept_flagged_nights keeps it)")
            else:
                kept.append((d, p))
        self.window = kept

    def _recency(self, ages: list[int]) -> Any:
        """Each row's weight 0.5 ** (age / half-life), None when every row weighs the same."""
        if self.half_life is None:
            return None
        import numpy as np

        return np.power(0.5, np.asarray(ages, dtype=float) / self.half_life)

    def describe(self) -> dict[str, Any]:
        """What the version learnt from, for the record and MLflow: how the window was built, its rows and
        fingerprints (each night's, and the champion's rows it started from)."""
        return {"mode": self.mode, "window_rows": None if not hasattr(self, "train") else len(self.train),
                "nights": [d.isoformat() for d, _ in self.window],
                "champion_rows": None if self.champion_rows is None else len(self.champion_rows),
                "champion_source": None if self.champion_source is None else
                {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in self.champion_source.items()},
                "recency_half_life_days": self.half_life, "left_out": self.left_out,
                # what the registered version itself was fitted on (ADR 0026)
                "served_fit": None if not hasattr(self, "train") else
                {"on": "window", "rows": len(self.final_rows)} if self.final_fit == "window" and len(self.holdout)
                else {"on": "training_rows", "rows": len(self.train)}}


def _ages(train: pd.DataFrame, frames: dict[dt.date, pd.DataFrame], held: list[dt.date], day: dt.date) -> list[int]:
    """Each training row's age in nights (`split_window` keeps the nights in date order)."""
    out: list[int] = []
    for d in sorted(frames):
        if d not in held:
            out += [(day - d).days] * len(frames[d])
    return out if len(out) == len(train) else [0] * len(train)  # a hash split of every night: no order to keep


def _holdout_ages(holdout: pd.DataFrame, frames: dict[dt.date, pd.DataFrame], held: list[dt.date],
                  day: dt.date) -> list[int]:
    """Each holdout row's age in nights (the holdout nights in date order; a hash share of every night: 0)."""
    out: list[int] = []
    for d in sorted(held):
        out += [(day - d).days] * len(frames[d])
    return out if len(out) == len(holdout) else [0] * len(holdout)


def champion_training_rows(eng: Engagement, paths: StewardPaths, champion: dict[str, Any]
                           ) -> tuple[pd.DataFrame, dict[str, Any], set[dt.date]]:
    """The rows the champion learnt from (kept beside its version; the reference file for the bootstrap), a
    description with their sha256, and the nights among them (none for the bootstrap: every night is new)."""
    import json

    from steward.models import training
    from steward.monitoring import reference

    version = int(champion["version"])
    trained_for = dt.date.fromisoformat(str(champion["tags"].get(mlflow_tags.TRAINED_FOR) or "1970-01-01")[:10])
    kept = reference.kept_path(paths, eng.id, version)
    if kept.is_file() and kept.with_suffix(".json").is_file():
        meta = json.loads(kept.with_suffix(".json").read_text())
        sha = batches.sha256_file(kept)
        if sha == meta["sha256"]:
            import pandas as pd

            nights = [dt.date.fromisoformat(n) for n in meta.get("window") or [] if _is_date(n)]
            frame = training.labelled(eng, pd.read_parquet(kept))
            return frame, {"key": f"champion:v{version}", "kind": "kept training rows", "path": str(kept),
                           "sha256": sha, "rows": len(frame), "trained_for": trained_for}, set(nights)
    ref = batches.reference_path(eng, paths)
    frame = training.labelled(eng, batches.read_for(eng, ref))
    return frame, {"key": f"champion:v{version}", "kind": "reference file", "path": str(ref),
                   "sha256": batches.sha256_file(ref), "rows": len(frame), "trained_for": trained_for}, set()


def labelled_growth(eng: Engagement, paths: StewardPaths, day: dt.date, model: dict[str, Any]) -> Growth:
    """How much the labelled data grew since `model` (a ModelRef dict: the champion, or a newer candidate) was
    trained (trigger `growth`, ADR 0028): the labelled rows of the prediction dates it did not learn (the dates
    `nights_since` would add to its window, counted from the realised-performance table as known on `day`)
    against the rows it learnt from. Cheap on purpose: it runs every night, and reads no batch."""
    from steward import store

    meta = _kept_meta(paths, eng.id, int(model["version"]))
    learnt = _nights(meta)
    rows = None if meta is None else int(meta["rows"])
    if rows is None:  # the bootstrap champion learnt from the reference file
        from steward.models import training

        rows = len(training.labelled(eng, batches.read_for(eng, batches.reference_path(eng, paths))))
    late = eng.labels.lookback_days if eng.labels is not None else 0
    first = max(learnt) - dt.timedelta(days=late) if learnt else eng.start_date - dt.timedelta(days=1)
    new = [r for r in store.latest_by_prediction_date(paths, store.performance, eng.id, through=day)
           if first < dt.date.fromisoformat(r["prediction_date"]) <= day
           and dt.date.fromisoformat(r["prediction_date"]) not in learnt]
    return Growth(new_rows=sum(int(r["labelled_rows"]) for r in new), nights=len(new), champion_rows=rows,
                  version=int(model["version"]))


def learnt_by(eng: Engagement, paths: StewardPaths, version: int) -> set[dt.date]:
    """The nights version `version` learnt from (its kept reference's `window`; none for the bootstrap, which
    learnt the reference file). Cheap: reads the sidecar only."""
    return _nights(_kept_meta(paths, eng.id, version))


def _kept_meta(paths: StewardPaths, engagement_id: str, version: int) -> dict[str, Any] | None:
    import json

    from steward.monitoring import reference

    sidecar = reference.kept_path(paths, engagement_id, version).with_suffix(".json")
    return json.loads(sidecar.read_text()) if sidecar.is_file() else None


def _nights(meta: dict[str, Any] | None) -> set[dt.date]:
    return {dt.date.fromisoformat(n) for n in (meta or {}).get("window") or [] if _is_date(n)}


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


MAX_SCAN_DAYS = 1000
ACCEPTED = frozenset({"keep", "retrain", "promote"})


def purged_nights(eng: Engagement, paths: StewardPaths, day: dt.date, learnt: set[dt.date],
                  window: set[dt.date]) -> dict[str, str]:
    """Accepted nights after the champion's that are not in tonight's window because their landed batch is
    gone (retention purged it): recorded, so that a smaller window says why."""
    from steward import store

    since = max(learnt, default=eng.start_date - dt.timedelta(days=1))
    out: dict[str, str] = {}
    for run in store.runs_of(paths, eng.id):
        night = dt.date.fromisoformat(run["logical_date"][:10])
        if since < night < day and night not in window and run["outcome"] in ACCEPTED \
                and not batches.landed_path(eng, paths, night).is_file():
            out[night.isoformat()] = "its landed batch is gone (purged by retention): left out of the window"
    return out


def nights_since(eng: Engagement, paths: StewardPaths, day: dt.date, learnt: set[dt.date]
                 ) -> list[tuple[dt.date, Path]]:
    """Accepted (landed, not quarantined) labelled batches up to `day` that the champion did not learn from,
    oldest first: every one since go-live for the bootstrap; for a trained champion, those after the newest
    night it learnt from, and the older ones whose labels came after it was trained (within the labels'
    lookback)."""
    late = eng.labels.lookback_days if eng.labels is not None else 0
    first = max(max(learnt) - dt.timedelta(days=late) if learnt else eng.start_date - dt.timedelta(days=1),
                day - dt.timedelta(days=MAX_SCAN_DAYS))
    days = (day - first).days + 1
    found = training_window(eng, paths, day, days, scan=days) if days > 0 else []
    return [(d, p) for d, p in found if d not in learnt]


def training_window(eng: Engagement, paths: StewardPaths, day: dt.date, days: int, scan: int | None = None
                    ) -> list[tuple[dt.date, Path]]:
    """Accepted (landed, not quarantined) batches to train on, oldest first: the `days`-night window ending
    on `day`, or, when labels arrive later, the newest `days` served batches whose labels have arrived
    (looking back `scan` nights, by default the labels' lookback)."""
    from steward.sources import labels

    if eng.labels is None:
        out = []
        for back in range(days - 1, -1, -1):
            d = day - dt.timedelta(days=back)
            p = batches.landed_path(eng, paths, d)
            if p.is_file():
                out.append((d, p))
        return out
    found: list[tuple[dt.date, Path]] = []
    for back in range(eng.labels.lookback_days + 1 if scan is None else scan):
        d = day - dt.timedelta(days=back)
        p = batches.landed_path(eng, paths, d)
        if p.is_file() and not labels.labels_known_by(eng, paths, d.isoformat(), day).empty:
            found.append((d, p))
            if len(found) == days:
                break
    return found[::-1]


def labelled_batch(eng: Engagement, paths: StewardPaths, batch_day: dt.date, path: Path, night: dt.date) -> pd.DataFrame:
    """A landed batch with its target: from the batch itself, or joined to the labels known on `night`."""
    from steward.models import training
    from steward.sources import labels

    frame = batches.read_for(eng, path)
    if eng.labels is None:
        return training.labelled(eng, frame)
    frame = frame.drop(columns=[eng.target], errors="ignore")
    frame[eng.id_column] = frame[eng.id_column].astype(str)
    known = labels.labels_known_by(eng, paths, batch_day.isoformat(), night)
    return training.labelled(eng, frame.merge(known, on=eng.id_column, how="inner"))
