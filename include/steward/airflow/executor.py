"""A LocalExecutor whose worker processes import the task libraries once (issue 16; opt-in for now).

Each Airflow task runs in a process forked from a LocalExecutor worker, and imports pandas, Great
Expectations, Evidently, MLflow and scikit-learn afresh: seconds per task, on every task of every night.
Here a worker imports them once, before its first task, and every task it forks inherits them. The
scheduler and the dag-processor never import them (the workers are forked from the scheduler, and the import
happens in the worker, after the fork), so parsing stays light.

Opt in with `AIRFLOW__CORE__EXECUTOR=steward.airflow.executor.PreloadingLocalExecutor`. Every worker that
picks up a task holds the libraries in memory (about 400 MB), so keep `[core] parallelism` near the number of
cores (the LocalExecutor forks all `parallelism` workers at start).
"""

from __future__ import annotations

import importlib
import multiprocessing
from typing import Any

from airflow.executors import local_executor
from airflow.executors.local_executor import LocalExecutor

# what the stage functions import; steward.pipeline pulls in the rest of the domain package
TASK_LIBRARIES = ("pandas", "sklearn.pipeline", "great_expectations", "evidently", "mlflow", "skops.io",
                  "steward.pipeline", "steward.export")


def preload() -> list[str]:
    """Import the task libraries into this process; returns the module names (for the worker's log)."""
    for name in TASK_LIBRARIES:
        importlib.import_module(name)
    return list(TASK_LIBRARIES)


def _run_preloading_worker(**kwargs: Any) -> None:
    preload()
    local_executor._run_worker(**kwargs)


class PreloadingLocalExecutor(LocalExecutor):
    """LocalExecutor with workers that import the task libraries before their first task."""

    def _spawn_worker(self) -> None:
        # Same as LocalExecutor._spawn_worker (Airflow 3.3), with the worker target wrapped.
        p = multiprocessing.Process(
            target=_run_preloading_worker,
            kwargs={
                "logger_name": self.log.name,
                "input": self.activity_queue,
                "output": self.result_queue,
                "unread_messages": self._unread_messages,
                "team_conf": self.conf,
            },
        )
        p.start()
        self.workers[p.pid] = p
