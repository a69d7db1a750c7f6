"""Adopt a pipeline built outside steward as champion v1 (`steward onboard --model`, ADR 0032).

The model a project team hands over is untrusted input like any client file: it is read with skops, building
only reviewed types (steward.models.trust), never with pickle; it is checked against the reference data before
anything is written (kind, fitted, the columns it was fitted on, the classes it predicts, the categories its
encoders know, one prediction on the reference); and its digest is pinned in the engagement file, so the
file steward serves is the file that was adopted. Candidates are fresh clones of it (`sklearn.base.clone`:
the same steps and parameters, nothing fitted) trained on the window like any other (steward.models.training).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.config import AdoptedSpec, Engagement
from steward.models import trust
from steward.settings import StewardPaths, inside

if TYPE_CHECKING:
    import pandas as pd

ADOPTED_FILE = "adopted-model.skops"  # under the data root's engagement folder, beside the reference
MLFLOW_URI_PREFIXES = ("models:/", "runs:/")
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".sav", ".cloudpickle"}
CHECK_ROWS = 200  # rows of the reference the adopted model must score without error
PICKLE_RECIPE = (
    "steward never loads pickle: loading a pickle runs whatever code it names. Convert the model where you "
    "trust it, then adopt the skops file:\n"
    "    python -c \"import joblib, skops.io; skops.io.dump(joblib.load('model.pkl'), 'model.skops')\"\n"
    "or, for an MLflow model, log it again as skops:\n"
    "    mlflow.sklearn.log_model(mlflow.sklearn.load_model('models:/NAME/VERSION'), name='model', "
    "serialization_format='skops', registered_model_name='NAME')")


class AdoptionError(ValueError):
    """The model cannot be adopted; the message names each problem and what to do. Nothing was written."""


@dataclass
class Adopted:
    """A model that passed every check, and what onboarding records about it."""

    model: Any
    path: Path                      # the local skops file (a download for models:/ URIs)
    source: str
    sha256: str
    kind: str                       # classifier | regressor
    columns: list[str]              # the columns it was fitted on, in its order
    trusted_now: list[str] = field(default_factory=list)  # types --trust added for it
    baseline: dict[str, float] = field(default_factory=dict)  # its metrics on the labelled reference
    data: bytes = b""               # the file's bytes, written under the data root once every check passed


def fetch(source: str, workdir: Path) -> Path:
    """The local skops file of `source`: a path, or an MLflow model URI whose scikit-learn flavour was saved
    with skops (a pickle or cloudpickle flavour is refused with the recipe to convert it)."""
    if source.startswith(MLFLOW_URI_PREFIXES):
        import mlflow.artifacts
        import yaml

        from steward.models import registry

        registry.client(StewardPaths.from_env())  # the deployment's MLflow (MLFLOW_TRACKING_URI), else steward's store
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(workdir)))
        except Exception as exc:  # noqa: BLE001 - MLflow raises many types; the message is what matters
            raise AdoptionError(f"--model {source}: MLflow could not fetch it ({type(exc).__name__}: {exc})") from None
        mlmodel = local / "MLmodel"
        if not mlmodel.is_file():
            raise AdoptionError(f"--model {source}: no MLmodel file: not an MLflow model")
        flavor = ((yaml.safe_load(mlmodel.read_text()) or {}).get("flavors") or {}).get("sklearn")
        if not isinstance(flavor, dict):
            raise AdoptionError(f"--model {source}: no scikit-learn flavour; steward adopts scikit-learn-compatible "
                                "models saved with mlflow.sklearn")
        fmt = flavor.get("serialization_format")
        if fmt != "skops":
            raise AdoptionError(f"--model {source} is stored as {fmt}. {PICKLE_RECIPE}")
        return inside(local, str(flavor.get("pickled_model") or "model.skops"))
    path = Path(source)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise AdoptionError(f"--model {source} is a pickle file. {PICKLE_RECIPE}")
    if not path.is_file():
        raise AdoptionError(f"--model {source}: no such file")
    return path


def untrusted(path: Path, also: list[str] | None = None) -> list[str]:
    """The types in the skops file that nobody reviewed (a file skops cannot read is an AdoptionError)."""
    try:
        found = trust.skops_io().get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - a corrupt zip, a bad schema, a truncated file ...
        raise AdoptionError(f"{path.name} is not a readable skops file ({type(exc).__name__}: {exc})") from None
    trusted = set(trust.reviewed()) | set(also or [])
    return sorted(t for t in found if t not in trusted)


def load(path: Path, also: list[str] | None = None) -> Any:
    """Load with the reviewed types (and `also`, the --trust of this onboarding); refuse anything else."""
    unreviewed = untrusted(path, also)
    if unreviewed:
        never = [t for t in unreviewed if trust.refused(t)]
        raise AdoptionError(
            f"{path.name} holds types nobody reviewed: {', '.join(unreviewed)}. skops would build them while "
            "loading. " + (f"{', '.join(never)} can run code and is never trusted. " if never else "") +
            "Review each (what it is, whether building it can run code), then adopt again with "
            + " ".join(f"--trust {t}" for t in unreviewed if t not in never) +
            " (recorded in include/reviewed-skops-types.txt and in the ledger).")
    try:
        return trust.skops_io().load(path, trusted=[*trust.reviewed(), *(also or [])])
    except Exception as exc:  # noqa: BLE001
        raise AdoptionError(f"{path.name} could not be loaded ({type(exc).__name__}: {exc})") from None


def check(model: Any, *, problem_type: str, reference: pd.DataFrame, target: str, id_column: str,
          target_classes: list[Any] | None) -> tuple[str, list[str]]:
    """The model's kind and columns, or an AdoptionError naming every mismatch with the data."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    problems: list[str] = []
    wants = "classifier" if problem_type != "regression" else "regressor"
    kind = "classifier" if is_classifier(model) else "regressor" if is_regressor(model) else type(model).__name__
    if kind != wants:
        problems.append(f"it is a {kind} ({type(model).__name__}); the target {target!r} is {problem_type}: "
                        f"a {wants} is needed")
    try:
        check_is_fitted(model)
    except (NotFittedError, TypeError) as exc:
        raise AdoptionError(f"the model is not fitted ({exc})") from None
    columns = [str(c) for c in getattr(model, "feature_names_in_", [])]
    if not columns:
        problems.append("it was fitted without column names (a numpy array): steward passes named columns; "
                        "fit it on a pandas DataFrame")
    missing = [c for c in columns if c not in reference.columns]
    if missing:
        problems.append(f"it was fitted on columns the reference does not have: {', '.join(missing)}")
    for role, col in (("target", target), ("id column", id_column)):
        if col in columns:
            problems.append(f"it takes the {role} {col!r} as an input")
    if kind == "classifier" and kind == wants:
        problems += _class_problems(model, problem_type, target_classes)
    usable = [c for c in columns if c in reference.columns]
    if usable and not missing:
        problems += encoder_problems(model, reference)
    if not problems:
        problems += _prediction_problems(model, reference, columns)
    if problems:
        raise AdoptionError("the model does not match the data:\n" + "\n".join(f"  - {p}" for p in problems))
    return kind, columns


def _class_problems(model: Any, problem_type: str, target_classes: list[Any] | None) -> list[str]:
    from steward.models.metrics import class_key

    classes = [class_key(c) for c in getattr(model, "classes_", [])]
    if problem_type == "binary_classification":
        if sorted(classes) != ["0", "1"]:
            return [f"it predicts the classes {classes}; steward scores binary models as 0/1 with 1 the positive "
                    "class: fit it on (y == positive).astype(int)"]
        return []
    expected = sorted(class_key(c) for c in target_classes or [])
    if sorted(classes) != expected:
        return [f"it predicts the classes {sorted(classes)}; the reference's target holds {expected}"]
    return []


def _encoders(model: Any) -> list[tuple[Any, list[str]]]:
    """Every fitted one-hot or ordinal encoder in the pipeline with the columns it reads."""
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    found: list[tuple[Any, list[str]]] = []
    stack: list[tuple[Any, list[str] | None]] = [(model, None)]
    while stack:
        obj, cols = stack.pop()
        if isinstance(obj, OneHotEncoder | OrdinalEncoder) and hasattr(obj, "categories_"):
            names = [str(c) for c in getattr(obj, "feature_names_in_", cols or [])]
            found.append((obj, names))
            continue
        for _, step in getattr(obj, "steps", []):
            stack.append((step, cols))
        for _, trans, tcols in getattr(obj, "transformers_", []):
            if not isinstance(trans, str) and isinstance(tcols, list | tuple):
                stack.append((trans, [str(c) for c in tcols]))
    return found


def encoder_problems(model: Any, reference: pd.DataFrame) -> list[str]:
    """Categories the reference holds that an encoder would fail on (handle_unknown='error'), and columns of
    which the encoder knows none of the reference's values (a column that means something else now)."""
    from steward.models.metrics import class_key
    from steward.sources.schema import model_input

    problems = []
    for encoder, cols in _encoders(model):
        if len(cols) != len(encoder.categories_):
            continue
        frame = model_input(reference, [c for c in cols if c in reference.columns])
        for col, known in zip(cols, encoder.categories_, strict=True):
            if col not in frame.columns:
                continue
            values = {class_key(v) for v in frame[col].dropna().unique()}
            keys = {class_key(v) for v in known if v == v}
            unseen = sorted(values - keys)
            if unseen and getattr(encoder, "handle_unknown", "error") == "error":
                problems.append(f"column {col!r}: the reference holds {', '.join(map(repr, unseen[:5]))}"
                                f"{' ...' if len(unseen) > 5 else ''}, which its encoder never saw "
                                "(handle_unknown='error': it would fail on them)")
            elif values and not values & keys:
                problems.append(f"column {col!r}: its encoder knows {sorted(keys)[:5]}, none of the reference's "
                                f"values ({sorted(values)[:5]}): the column does not mean what it meant at fit")
    return problems


def _prediction_problems(model: Any, reference: pd.DataFrame, columns: list[str]) -> list[str]:
    from steward.sources.schema import model_input

    sample = model_input(reference.head(CHECK_ROWS), columns)
    try:
        model.predict(sample)
    except Exception as exc:  # noqa: BLE001 - whatever the pipeline raises is the message to show
        return [f"it cannot score the reference's rows: {type(exc).__name__}: {str(exc)[:300]}"]
    return []


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class AdoptedFileError(RuntimeError):
    """The adopted model file on the state volume is missing or is not the file that was adopted."""


def template(eng: Engagement, paths: StewardPaths | None = None) -> Any:
    """The adopted model as it was handed over, after checking the file is the one the engagement pins."""
    spec = eng.retraining.estimator
    if not isinstance(spec, AdoptedSpec):
        raise TypeError(f"{eng.id} does not adopt a model")
    path = inside((paths or StewardPaths.from_env()).data_root, spec.file)
    if not path.is_file():
        raise AdoptedFileError(f"{eng.id}: the adopted model {spec.file} is missing under the data root")
    return _load_pinned(str(path), spec.sha256, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_pinned(path: str, expected: str, _mtime: int) -> Any:
    found = sha256(Path(path))
    if found != expected:
        raise AdoptedFileError(f"{path}: sha256 {found[:12]}…, the engagement pins {expected[:12]}… (adopted "
                               "file): it changed and is not used")
    return load(Path(path))
