"""Celery configuration for steward's Celery workers: Airflow's defaults, plus the task libraries preloaded.

Set `AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=steward.airflow.celery_config.CELERY_CONFIG` (docker-compose.yaml
and the production-shaped test do). The scheduler imports this module too (the Celery app is built from it to
send tasks), so importing it must stay light: it only connects a receiver to Celery's `import_modules`
signal, which fires in a worker's main process before it forks its pool. The pool processes, and the task
processes they fork, inherit the libraries (ADR 0020).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import import_modules

# Airflow's own settings (broker, result backend, concurrency ... from [celery]) unchanged.
CELERY_CONFIG: dict[str, Any] = dict(DEFAULT_CELERY_CONFIG)

# Airflow modules every task process imports at start under Celery (0.4-0.9 s each, measured with
# PYTHONPROFILEIMPORTTIME on the task logs); a LocalExecutor worker inherits them from the scheduler.
AIRFLOW_TASK_MODULES = ("airflow.api_fastapi.core_api.security",)


@import_modules.connect
def preload_task_libraries(**_: Any) -> None:
    """Import what the tasks import, once, in the worker's main process (see steward.airflow.executor)."""
    import importlib
    import sys

    from steward.airflow.executor import preload

    names = [*preload(), *AIRFLOW_TASK_MODULES]
    for name in AIRFLOW_TASK_MODULES:
        importlib.import_module(name)
    # the worker's logging is not set up yet at this signal: stderr lands in the worker's own log
    print(f"steward: preloaded {len(names)} task modules into the Celery worker", file=sys.stderr, flush=True)
