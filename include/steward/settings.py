"""Where steward keeps its state: one root (`STEWARD_HOME`) for everything the embedded mode writes.

Stores are read from the environment so the same code runs embedded (defaults under STEWARD_HOME)
or against servers (MLFLOW_TRACKING_URI, STEWARD_DATA_ROOT ... set by the deployment).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# How the embedded default runs Airflow's scheduler (`make airflow-ui`, `make up`, the standalone test suites,
# bench/scheduler_parallel.py "after"); ADR 0019 and 0020. Makefile and scripts/up.sh repeat these values for
# the shell (tests/dags/test_dag_integrity.py checks they agree).
EMBEDDED_SCHEDULER = {
    # task libraries imported once per executor worker, not once per task
    "AIRFLOW__CORE__EXECUTOR": "steward.airflow.executor.PreloadingLocalExecutor",
    # every worker holds the libraries (~400 MB): about two per core
    "AIRFLOW__CORE__PARALLELISM": "4",
    # the scheduler's nap when a loop found nothing to do (default 1 s): a finished task's successor waits
    # for it, about ten times a night. Embedded only: a night alone takes 7 s instead of 13 s, for ~10% of a
    # core more while busy; production keeps Airflow's 1 s (ADR 0020)
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25",
}


class PathEscapeError(ValueError):
    """A path built from config resolved outside the root it must stay in."""


def inside(root: Path, relative: str | Path) -> Path:
    """Join and resolve `relative` under `root`, refusing anything that escapes it (../, symlinks)."""
    root = root.resolve()
    candidate = (root / relative).resolve()
    if candidate != root and root not in candidate.parents:
        raise PathEscapeError(f"{relative!s} resolves to {candidate}, outside {root}")
    return candidate


@dataclass(frozen=True)
class StewardPaths:
    home: Path

    @classmethod
    def from_env(cls) -> StewardPaths:
        home = Path(os.environ.get("STEWARD_HOME") or PROJECT_ROOT / ".steward")
        return cls(home=home.resolve())

    @property
    def data_root(self) -> Path:
        return Path(os.environ.get("STEWARD_DATA_ROOT") or self.home / "data").resolve()

    @property
    def landed(self) -> Path:
        return self.home / "landed"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def tracking_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def registry_uri(self) -> str:
        return os.environ.get("MLFLOW_REGISTRY_URI") or self.tracking_uri

    @property
    def mlflow_artifact_root(self) -> str:
        return os.environ.get("STEWARD_MLFLOW_ARTIFACT_ROOT") or (self.mlflow_dir / "artifacts").as_uri()

    def run_dir(self, engagement_id: str, run_key: str) -> Path:
        """Per-run output folder `<artifacts>/<engagement>/<run_key>/` (run_key = logical date)."""
        return inside(self.artifacts, f"{engagement_id}/{run_key}")


def engagements_dir() -> Path:
    return Path(os.environ.get("STEWARD_ENGAGEMENTS_DIR") or PROJECT_ROOT / "include" / "engagements")


def configure_embedded_airflow(paths: StewardPaths | None = None) -> None:
    """Point Airflow at the embedded stores under STEWARD_HOME unless the deployment already did.

    Must run before `airflow` is imported (Airflow reads its config at import time).
    """
    paths = paths or StewardPaths.from_env()
    paths.airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW_HOME", str(paths.airflow_home))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(PROJECT_ROOT / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    os.environ.setdefault(
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{paths.airflow_home / 'airflow.db'}"
    )
    os.environ.setdefault("STEWARD_HOME", str(paths.home))
