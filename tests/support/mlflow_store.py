"""A fresh test home's embedded MLflow store, created by MLflow once per test process and copied from there.

Every test home starts with no MLflow store, and the first `registry.client()` in it had MLflow create one:
its tables and every Alembic migration since MLflow's first schema, 0.7 CPU-s each time, 46 times in a
`make test` (a plugin timing MLflow's table creation, 2026-12-06; ADR 0018 point 11). The tests now copy a
store that MLflow created the same way, at the same version, earlier in the same process. Only the default
embedded store of a home is seeded, and only while it does not exist: a test that points MLflow elsewhere
(a tracking server, one that does not answer) gets exactly what it asked for, and the processes a test starts
(the CLI, `airflow standalone` and its task processes, Celery workers) still create their stores themselves.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_template: Path | None = None


def _made_by_mlflow() -> Path:
    """An empty embedded store, created by MLflow itself through its public client (once per process)."""
    global _template
    if _template is None:
        import mlflow

        path = Path(tempfile.mkdtemp(prefix="steward-mlflow-template-")) / "mlflow.db"
        mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
        _template = path
    return _template


def seeding(real_client: Callable[..., Any]) -> Callable[..., Any]:
    """`steward.models.registry.client`, seeding the home's default store from the template first."""

    def client(paths: Any) -> Any:
        store = paths.mlflow_dir / "mlflow.db"
        if paths.tracking_uri == f"sqlite:///{store}" and not store.exists():
            store.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_made_by_mlflow(), store)
        return real_client(paths)

    return client
