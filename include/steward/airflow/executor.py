"""A LocalExecutor whose worker processes import the task libraries once (issue 16, ADR 0019 and 0020).

Each Airflow task runs in a process forked from a LocalExecutor worker, and imports pandas, Great
Expectations, Evidently, MLflow and scikit-learn afresh: seconds per task, on every task of every night.
Here a worker imports them once, before its first task, and every task it forks inherits them. The
scheduler and the dag-processor never import them (the workers are forked from the scheduler, and the import
happens in the worker, after the fork), so parsing stays light.

The embedded default sets `AIRFLOW__CORE__EXECUTOR=steward.airflow.executor.PreloadingLocalExecutor`
(steward.settings.EMBEDDED_SCHEDULER). Every worker that picks up a task holds the libraries in memory, so
keep `[core] parallelism` near the number of cores. The Celery worker preloads through
steward.airflow.celery_config.
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import pkgutil
from typing import Any

from airflow.executors import local_executor
from airflow.executors.local_executor import LocalExecutor

# What the tasks import, measured with PYTHONPROFILEIMPORTTIME on the task logs of a night (ADR 0020): the
# libraries, and the submodules they load lazily on first use (MLflow's SQL stores alone cost 0.7 s a task).
TASK_LIBRARIES = (
    "pandas", "pyarrow.parquet", "pyarrow.dataset", "sklearn.pipeline", "sklearn.ensemble", "sklearn.inspection",
    "great_expectations", "evidently", "plotly.graph_objs", "narwhals.stable.v2", "fairlearn.metrics",
    "mlflow", "mlflow.sklearn", "mlflow.pyfunc.loaders", "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store", "mlflow.tracing.processor.base_mlflow", "git",
    "skops.io", "matplotlib.pyplot", "openlineage.client", "jinja2.ext",
    # the production shape: MLflow through its tracking server, steward's tables in Postgres
    "mlflow.store.tracking.rest_store", "mlflow.store.model_registry.rest_store",
    "mlflow.store.artifact.mlflow_artifacts_repo", "sqlalchemy.dialects.postgresql.psycopg2",
    # SQL sources and sinks (ADR 0023): the Postgres provider's hook, psycopg 3, ADBC
    "airflow.providers.postgres.hooks.postgres", "sqlalchemy.dialects.postgresql.psycopg", "adbc_driver_postgresql.dbapi",
)

# steward modules no task imports: the command line, the in-process runner, this module
NOT_IN_TASKS = {"steward.cli", "steward.airflow.runner", "steward.airflow.executor"}


def preload() -> list[str]:
    """Import the task libraries and every steward module into this process; returns the module names.

    Afterwards the imported objects are moved out of the garbage collector's reach (`gc.freeze`), as Airflow's
    Celery worker does for its own preloads: a collection in a forked task would otherwise touch every object
    and copy the pages the task shares with its worker. The collector is off while importing: imports make
    almost no garbage cycles, and each full collection would walk the whole growing heap again (measured:
    the preload took 8.3 s of CPU, 2.2 s of it in the collector, and 6.6 s with the collector off).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        names = list(TASK_LIBRARIES)
        for name in names:
            importlib.import_module(name)
        import steward

        for module in pkgutil.walk_packages(steward.__path__, "steward."):
            if module.name in NOT_IN_TASKS:
                continue
            importlib.import_module(module.name)
            names.append(module.name)
        warm_first_use_caches()
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
    return names


def warm_first_use_caches() -> None:
    """Fill the process-wide caches a task would otherwise fill on first use, in every forked process.

    Measured (ADR 0020): the first model a process logs makes MLflow map every installed distribution to its
    modules (importlib.metadata.packages_distributions, about 1 s for 300 packages) to check the model's
    requirements against the environment; every bootstrap and retraining task paid it. The cache is private
    to MLflow: tests/dags/test_dag_integrity.py fails if an upgrade renames it.
    """
    from mlflow.utils import requirements_utils

    requirements_utils._init_packages_to_modules_map()


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
