"""Test homes that start with a migrated MLflow store.

Every test that trains or registers a model has a STEWARD_HOME of its own, and the first MLflow call in a new
home creates the SQLite store's tables through MLflow's migrations: about 2 s of CPU each, for a store that is
the same every time (the tables and MLflow's Default experiment; steward creates its own experiments with their
own artifact locations). The suite creates dozens of homes, so each process migrates one store, once, and every
home starts from a copy of it. The product is untouched: a real home still creates its store on first use
(the demo, the CLI, the real-data script and the server tests do).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

_template: Path | None = None


def _migrated_store() -> Path:
    global _template
    if _template is None:
        from mlflow import MlflowClient

        folder = Path(tempfile.mkdtemp(prefix="steward-mlflow-template-"))
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
        _template = folder / "mlflow.db"
    return _template


def seeded_home(home: Path) -> Path:
    """`home`, its MLflow store (`mlflow/mlflow.db`, steward.settings.StewardPaths) copied from the migrated one
    unless it has one already."""
    target = home / "mlflow" / "mlflow.db"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated_store(), target)
    return home
