"""The drift reference: what a night's batch is compared with, and its scored profile.

With `drift.reference: champion` (the default) the reference is the champion's own training data: the rows
of the window a version was trained and judged on are kept beside the version when it is registered
(`<home>/references/<engagement>/v<N>.parquet` with a JSON sidecar, and a copy in the version's MLflow run).
A promotion therefore moves the reference to the data the new champion learnt from, and a rollback moves it
back with the alias. A version without kept data (the bootstrap, which learnt from the reference file) and
`drift.reference: file` use the reference file. The record names what was used: kind, version, rows, sha256.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.config import Engagement
from steward.settings import StewardPaths
from steward.sources import batches

if TYPE_CHECKING:
    import pandas as pd

CHAMPION_DATA = "champion_training_data"
REFERENCE_FILE = "reference_file"
MLFLOW_FOLDER = "reference"  # in the version's MLflow run: reference/v<N>.parquet


@dataclass(frozen=True)
class Reference:
    kind: str  # CHAMPION_DATA or REFERENCE_FILE
    path: str
    sha256: str
    rows: int | None
    model_version: int | None  # the champion whose reference this is
    note: str | None = None  # why the reference file stands in for the champion's data

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def folder(paths: StewardPaths, engagement_id: str) -> Path:
    return paths.home / "references" / engagement_id


def kept_path(paths: StewardPaths, engagement_id: str, version: int) -> Path:
    """Where the rows version `version` learnt from are kept (absent for the bootstrap)."""
    return folder(paths, engagement_id) / f"v{version}.parquet"


def keep_training_data(eng: Engagement, paths: StewardPaths, version: int, frame: pd.DataFrame,
                       window: list[str]) -> Path:
    """Keep the rows version `version` was trained and judged on (idempotent: a retry keeps the first copy)."""
    target = kept_path(paths, eng.id, version)
    sidecar = target.with_suffix(".json")
    if target.is_file() and sidecar.is_file() and \
            json.loads(sidecar.read_text())["sha256"] == batches.sha256_file(target):
        return target
    columns = [c for c in eng.modelled_columns if c in frame.columns]
    with batches.atomic_target(target) as tmp:
        frame[columns].reset_index(drop=True).to_parquet(tmp, index=False)
    batches.atomic_write_json(sidecar, {"version": version, "rows": int(len(frame)), "window": window,
                                        "sha256": batches.sha256_file(target)})
    return target


def for_champion(eng: Engagement, paths: StewardPaths, champion: dict[str, Any]) -> Reference:
    """The reference of a night whose champion is `champion` (a ModelRef dict)."""
    version = int(champion["version"])
    if eng.drift.reference == "champion":
        kept = kept_path(paths, eng.id, version)
        note = None
        if not kept.is_file() and champion.get("run_id"):
            _restore_from_mlflow(paths, champion["run_id"], kept)
        if kept.is_file() and kept.with_suffix(".json").is_file():  # the sidecar is written last
            meta = json.loads(kept.with_suffix(".json").read_text())
            sha = batches.sha256_file(kept)
            if sha == meta["sha256"]:
                return Reference(CHAMPION_DATA, str(kept), sha, meta["rows"], version)
            note = f"kept training data of v{version} does not match its sidecar (sha256 {sha[:12]}...)"
        note = note or f"v{version} has no kept training data (it learnt from the reference file)"
    else:
        note = "drift.reference: file"
    ref = batches.reference_path(eng, paths)
    return Reference(REFERENCE_FILE, str(ref), batches.sha256_file(ref), None, version, note)


def _restore_from_mlflow(paths: StewardPaths, run_id: str, target: Path) -> None:
    """A steward home rebuilt on a new machine still has the MLflow copy: bring it back (and its sidecar)."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from steward.models import registry

    registry.client(paths)  # points mlflow at this home's stores
    try:
        local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"{MLFLOW_FOLDER}/{target.name}"))
    except (MlflowException, OSError):
        return  # no copy in the run (the bootstrap, older versions): the reference file stands in
    import pandas as pd

    frame = pd.read_parquet(local)
    target.parent.mkdir(parents=True, exist_ok=True)
    with batches.atomic_target(target) as tmp:
        tmp.write_bytes(local.read_bytes())
    batches.atomic_write_json(target.with_suffix(".json"), {"version": int(target.stem[1:]), "rows": len(frame),
                                                            "window": [], "sha256": batches.sha256_file(target)})


def read(eng: Engagement, ref: Reference) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(ref.path) if ref.kind == CHAMPION_DATA else batches.read_for(eng, ref.path)


def profile(eng: Engagement, paths: StewardPaths, ref: Reference, model: Any, champion_version: int
            ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The reference side of drift: the (sampled) reference rows with the champion's predictions.

    Computed once per reference x champion version x sample size and kept as parquet beside the
    engagement's runs, so a night with a million-row reference neither re-reads nor re-scores it.
    """
    import pandas as pd

    from steward.models import training
    from steward.sources import sampling

    rows = eng.drift.sample_rows
    name = f"{ref.sha256[:16]}-v{champion_version}-{rows or 'all'}"
    cache = paths.run_dir(eng.id, "reference_profiles")
    frame_path, meta_path = cache / f"{name}.parquet", cache / f"{name}.json"
    if frame_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["parquet_sha256"] == batches.sha256_file(frame_path):
            return pd.read_parquet(frame_path), meta
    full = read(eng, ref)
    seed = sampling.seed_for(eng.id, "reference", ref.sha256)
    scored = training.predict(eng, model, sampling.uniform(full, rows, seed))
    with batches.atomic_target(frame_path) as tmp:
        scored.to_parquet(tmp, index=False)
    meta = {**sampling.described(len(full), len(scored), seed), "reference_sha256": ref.sha256,
            "champion_version": champion_version, "path": str(frame_path),
            "parquet_sha256": batches.sha256_file(frame_path)}
    batches.atomic_write_json(meta_path, meta)
    return pd.read_parquet(frame_path), meta  # the first night reads what later nights will read
