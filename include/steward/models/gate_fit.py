"""The gate's fit of a version (ADR 0026): the same recipe fitted on the window without its holdout.

A candidate is judged on the newest nights of its window, which it must not have learnt from; but the model
that serves is fitted on the whole window (`retraining.final_fit: window`), so that the nights a shift is
newest in are learnt, as a plain periodic refit learns them. The fit the gate judged is kept here, beside
the version, and answers for the version wherever the holdout nights are scored again (a rerun of the gate
night, the shadow nights pooling the holdout). Its sha256 is a tag of the version: a file changed on the
state volume is refused, never trusted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steward import mlflow_tags
from steward.settings import StewardPaths
from steward.sources import batches

SHA_TAG = mlflow_tags.GATE_FIT_SHA  # set on a version whose served model is not the one its gate judged


class GateFitError(RuntimeError):
    """The gate's fit of a version is missing or is not the file that was kept."""


def path(paths: StewardPaths, engagement_id: str, training_key: str) -> Path:
    """Named by the version's training key, known before the version is registered (its tags carry the sha)."""
    return paths.home / "models" / engagement_id / "gate" / f"{training_key}.skops"


def keep(paths: StewardPaths, engagement_id: str, training_key: str, model: Any) -> str:
    """Write the gate's fit (idempotent: a retry keeps the first file); its sha256."""
    from steward.models import training

    target = path(paths, engagement_id, training_key)
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with batches.atomic_target(target) as tmp:
            training.save_model(model, str(tmp))
    return batches.sha256_file(target)


def load(paths: StewardPaths, engagement_id: str, version: int, tags: dict[str, str]) -> Any | None:
    """The model the gate judged for `version` (from its tags): None when the version is that model itself."""
    from steward.models import registry, training

    expected = tags.get(SHA_TAG)
    if not expected:
        return None
    target = path(paths, engagement_id, tags[registry.TRAINING_KEY_TAG])
    if not target.is_file():
        raise GateFitError(f"v{version}: the gate's fit {target} is missing; its holdout cannot be judged again")
    found = batches.sha256_file(target)
    if found != expected:
        raise GateFitError(f"v{version}: the gate's fit {target} has sha256 {found[:12]}…, the version recorded "
                           f"{expected[:12]}…: the file changed after it was kept and is not trusted")
    return training.load_model(str(target))
