"""MLflow tracking and model registry: runs, versions and aliases (`champion`, `challenger`).

Promotion is an alias move, never a stage. Versions carry a `steward.training_key` tag (a hash of
engagement, logical date, training data and config) so a rerun finds the version it registered
before instead of registering a second one.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward import mlflow_tags
from steward.config import Engagement
from steward.settings import StewardPaths

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from sklearn.pipeline import Pipeline

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous_champion"
AWAITING_APPROVAL = "awaiting_approval"  # the challenger that passed the gate and waits for a person (issue 35)
ADOPTED = "adopted"  # the version adopted at onboarding (steward onboard --model): a rollback can always return to it
TRAINING_KEY_TAG = mlflow_tags.TRAINING_KEY
MODEL_SHA_TAG = mlflow_tags.MODEL_SHA  # the skops file's digest, recorded when the version is registered
PROMOTED_FOR_TAG = mlflow_tags.PROMOTED_FOR  # logical date of the night that promoted this version
REPLACED_TAG = mlflow_tags.REPLACED  # the champion it replaced ("" for the first)
RESTORED_FOR_TAG = mlflow_tags.RESTORED_FOR  # day a rollback made this version champion again
SHADOW = "shadow"  # alias of the challenger that passed the gate and waits for unseen nights (ADR 0015)
SHADOW_SINCE_TAG = mlflow_tags.SHADOW_SINCE  # night the gate passed it into shadow
SHADOW_DECIDED_TAG = mlflow_tags.SHADOW_DECIDED  # night its shadow period ended
SHADOW_VERDICT_TAG = mlflow_tags.SHADOW_VERDICT  # promoted | retired


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int
    run_id: str | None
    source: str
    tags: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def client(paths: StewardPaths) -> MlflowClient:
    """An MlflowClient on the configured stores (embedded SQLite + local artifacts by default)."""
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    paths.mlflow_dir.mkdir(parents=True, exist_ok=True)
    tracking_uri, registry_uri = paths.tracking_uri, paths.registry_uri
    # mlflow.set_*_uri also write MLFLOW_*_URI into os.environ; undo that, or the first store used in a
    # process would override STEWARD_HOME for every later call (the deployment's own env is kept).
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)


def experiment_id(c: MlflowClient, paths: StewardPaths, eng: Engagement) -> str:
    name = f"steward/{eng.id}"
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    from mlflow.exceptions import MlflowException

    try:
        return c.create_experiment(
            name,
            artifact_location=f"{paths.mlflow_artifact_root}/{eng.id}",
            tags={mlflow_tags.ENGAGEMENT: eng.id, mlflow_tags.CLIENT: eng.client},
        )
    except MlflowException:  # created concurrently by another task
        return c.get_experiment_by_name(name).experiment_id


_ALIAS_NOT_FOUND = re.compile(r"\balias \S+ not found\b")


def _missing(exc: Exception) -> bool:
    """True only for "not found": an unreachable or failing MLflow, or an invalid call, must never look like
    "no champion" (that would bootstrap a new one). MLflow reports a missing model as RESOURCE_DOES_NOT_EXIST
    but a missing alias as INVALID_PARAMETER_VALUE ("Registered model alias champion not found."), the code
    it also uses for a malformed filter or argument: only that message counts."""
    code = getattr(exc, "error_code", None)
    if code == "RESOURCE_DOES_NOT_EXIST":
        return True
    return code == "INVALID_PARAMETER_VALUE" and _ALIAS_NOT_FOUND.search(str(exc)) is not None


def _ref(mv: Any) -> ModelRef:
    return ModelRef(name=mv.name, version=int(mv.version), run_id=mv.run_id, source=mv.source, tags=dict(mv.tags or {}))


def get_alias(c: MlflowClient, eng: Engagement, alias: str) -> ModelRef | None:
    from mlflow.exceptions import MlflowException

    try:
        return _ref(c.get_model_version_by_alias(eng.registered_model_name, alias))
    except MlflowException as exc:
        if _missing(exc):
            return None
        raise


def get_version(c: MlflowClient, eng: Engagement, version: int) -> ModelRef:
    return _ref(c.get_model_version(eng.registered_model_name, str(version)))


def tag_version(c: MlflowClient, eng: Engagement, version: int, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        c.set_model_version_tag(eng.registered_model_name, str(version), key, value)


def champion_for_night(c: MlflowClient, eng: Engagement, day: str) -> ModelRef | None:
    """The champion at the start of night `day`: the version promoted most recently *before* that night
    (or restored by a rollback on or before it).

    Reruns and backfills start from the same champion the original night did, so they reproduce it.
    """
    versions = _all_versions(c, eng)

    def became_champion(mv: Any) -> str:
        """Latest day on which the version became champion for `day` ("" if never): a promotion happens at
        the end of its night, so it counts from the next night; a rollback on day D (by hand, or automatic
        at the start of night D) already holds for night D."""
        tags = mv.tags or {}
        promoted, restored = tags.get(PROMOTED_FOR_TAG), tags.get(RESTORED_FOR_TAG)
        return max((d for d in (promoted if promoted and promoted < day else None,
                                restored if restored and restored <= day else None) if d), default="")

    candidates = [mv for mv in versions if became_champion(mv)]
    if not candidates:
        return None
    return _ref(max(candidates, key=lambda mv: (became_champion(mv), int(mv.version))))


def in_shadow(c: MlflowClient, eng: Engagement, day: str) -> ModelRef | None:
    """The challenger serving in shadow on night `day` (see `shadow_among`)."""
    return shadow_among([_ref(mv) for mv in _all_versions(c, eng)], day)


def shadow_among(versions: list[ModelRef], day: str) -> ModelRef | None:
    """The version in shadow on night `day`: it entered before that night and its period had not ended before
    it (a rerun of the deciding night sees it again, and decides the same)."""
    pending = [v for v in versions if v.tags.get(SHADOW_SINCE_TAG, day) < day <= v.tags.get(SHADOW_DECIDED_TAG, day)]
    return max(pending, key=lambda v: v.version) if pending else None


def bootstrap_version(c: MlflowClient, eng: Engagement) -> ModelRef | None:
    """The version trained on the reference at go-live (tag steward.kind: bootstrap; the first version when
    none carries the tag), or None before the first night."""
    versions = sorted(_all_versions(c, eng), key=lambda mv: int(mv.version))
    tagged = [mv for mv in versions if (mv.tags or {}).get(mlflow_tags.KIND) == "bootstrap"]
    chosen = (tagged or versions)[:1]
    return _ref(chosen[0]) if chosen else None


def delete_alias(c: MlflowClient, eng: Engagement, alias: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        c.delete_registered_model_alias(eng.registered_model_name, alias)
    except MlflowException as exc:
        if not _missing(exc):
            raise


def trained_before(c: MlflowClient, eng: Engagement, day: str) -> list[ModelRef]:
    """Versions trained for a night before `day`, oldest first (a rerun of `day` does not see its own)."""
    earlier = [mv for mv in _all_versions(c, eng) if (mv.tags or {}).get(mlflow_tags.TRAINED_FOR, day) < day]
    return [_ref(mv) for mv in sorted(earlier, key=lambda mv: int(mv.version))]


def _all_versions(c: MlflowClient, eng: Engagement) -> list[Any]:
    """Every version of the engagement's registered model ([] before the first one is registered)."""
    from mlflow.exceptions import MlflowException

    try:
        return list(c.search_model_versions(f"name='{eng.registered_model_name}'"))
    except MlflowException as exc:
        if _missing(exc):
            return []
        raise


def find_by_training_key(c: MlflowClient, eng: Engagement, key: str) -> ModelRef | None:
    from mlflow.exceptions import MlflowException

    try:
        found = c.search_model_versions(
            f"name='{eng.registered_model_name}' and tags.`{TRAINING_KEY_TAG}`='{key}'"
        )
    except MlflowException as exc:
        if _missing(exc):
            return None
        raise
    ready = [mv for mv in found if mv.status == "READY"]
    return _ref(min(ready, key=lambda mv: int(mv.version))) if ready else None


def log_and_register(
    c: MlflowClient,
    paths: StewardPaths,
    eng: Engagement,
    model: Pipeline,
    *,
    training_key: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: dict[str, Any] | None = None,
) -> ModelRef:
    """Log a training run with the model (skops) and register it as a new version.

    The version is tagged before anything points at it, so a retry after a crash finds it.
    """
    import mlflow
    import mlflow.sklearn

    from steward.models import trust

    trust.skops_io()  # before MLflow imports skops for the save: its import-time module scan, quietly
    exp_id = experiment_id(c, paths, eng)
    run_tags = {mlflow_tags.ENGAGEMENT: eng.id, TRAINING_KEY_TAG: training_key, **tags}
    with mlflow.start_run(experiment_id=exp_id, tags=run_tags, run_name=tags.get(mlflow_tags.RUN_NAME)) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        for name, payload in (artifacts or {}).items():
            mlflow.log_dict(payload, name)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="skops",
            skops_trusted_types=trust.reviewed(),
            pip_requirements=requirements_of(model),
        )
        # the file's digest goes into the registry's record: a model is served only if it is still this file
        tags = {**tags, MODEL_SHA_TAG: _skops_sha256(info.model_uri)}
        mv = mlflow.register_model(info.model_uri, eng.registered_model_name, tags={TRAINING_KEY_TAG: training_key, **tags})
    c.update_registered_model(
        eng.registered_model_name, description=f"{eng.client}: {eng.use_case} (engagement {eng.id}, owner {eng.owner})"
    )
    return ModelRef(name=mv.name, version=int(mv.version), run_id=run.info.run_id, source=mv.source,
                    tags={TRAINING_KEY_TAG: training_key, **tags})


BOOSTER_PACKAGES = {"lightgbm": "lightgbm", "xgboost": "xgboost-cpu"}


def requirements_of(model: Any) -> list[str]:
    """The pinned packages a version needs to load: scikit-learn and skops, plus the booster library of
    any LightGBM or XGBoost step (found by walking the fitted pipeline's steps)."""
    needed = {"scikit-learn", "skops"}
    stack = [model]
    while stack:
        obj = stack.pop()
        top = type(obj).__module__.split(".")[0]
        if top in BOOSTER_PACKAGES:
            needed.add(BOOSTER_PACKAGES[top])
        stack += [step for _, step in getattr(obj, "steps", [])]
        stack += [t for _, t, _ in getattr(obj, "transformers_", getattr(obj, "transformers", []))
                  if not isinstance(t, str)]
    return sorted(f"{name}=={pkg_version(name)}" for name in needed)


def log_files(c: MlflowClient, run_id: str, files: list[Path], artifact_path: str = "model_card") -> None:
    for f in files:
        c.log_artifact(run_id, str(f), artifact_path)


def set_alias(c: MlflowClient, eng: Engagement, alias: str, version: int) -> None:
    c.set_registered_model_alias(eng.registered_model_name, alias, str(version))


def model_file(ref: ModelRef) -> Path:
    """The version's skops file (the store's own path for local stores, a downloaded copy otherwise)."""
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{ref.name}/{ref.version}")) / "model.skops"


class ModelIntegrityError(RuntimeError):
    """A version's model file is not the file its registry record names."""


def _skops_sha256(model_uri: str) -> str:
    import hashlib

    import mlflow.artifacts

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        return hashlib.sha256((local / "model.skops").read_bytes()).hexdigest()


def load(c: MlflowClient, ref: ModelRef) -> Pipeline:
    """Fetch a version's files and load the skops file with steward's reviewed types only, after checking
    that it is the file the version's record names (`steward.model_sha256`, set at registration; versions
    registered before it carry none and are loaded as they are).

    MLflow's own loader would trust the type list stored inside the model; we never do.
    """
    import hashlib

    import mlflow.artifacts

    from steward.models.training import load_model

    expected = (c.get_model_version(ref.name, str(ref.version)).tags or {}).get(MODEL_SHA_TAG)  # the record, not XCom
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{ref.name}/{ref.version}", dst_path=tmp))
        found = hashlib.sha256((local / "model.skops").read_bytes()).hexdigest()
        if expected and found != expected:
            raise ModelIntegrityError(
                f"{ref.name} v{ref.version}: its model file has sha256 {found[:12]}…, the registry recorded "
                f"{expected[:12]}… at registration: the file changed and is not loaded")
        return load_model(str(local / "model.skops"))
