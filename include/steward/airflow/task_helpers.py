"""What every steward task body needs from Airflow: the strict-JSON task decorator, the XCom pull, the night's
logical date and state paths, SQL engines and object-storage paths for connection ids, retries. Shared by the
nightly DAG (dag_builder) and the maintenance DAGs; task logs go to the `steward.airflow` loggers."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
from typing import Any

from airflow.sdk import get_current_context, task

from steward import mlflow_tags
from steward.config import Engagement
from steward.frame_stack import call_with_room

log = logging.getLogger(__name__)


def json_task(fn: Any = None, **kwargs: Any) -> Any:
    """`@task` for steward stages: one small, strict-JSON dict as one XCom.

    Airflow would infer multiple_outputs from the `-> dict` annotation and also push each key as its own
    XCom (74 XCom writes a night instead of 11). A NaN or infinity left in a result would make the XCom
    push fail after the work was done: it is replaced by null and named under `non_finite_replaced`.
    """

    def decorate(body: Any) -> Any:
        @functools.wraps(body)
        def strict(*args: Any, **kw: Any) -> Any:
            from steward.finite import flagged

            result = call_with_room(_fail_fast_on_configuration, body, *args, **kw)
            clean = flagged(result)
            if isinstance(clean, dict) and clean.get("non_finite_replaced"):
                log.warning("non-finite values replaced by null in %s: %s", body.__name__,
                            clean["non_finite_replaced"])
            return clean

        return task(multiple_outputs=False, **kwargs)(strict)

    return decorate(fn) if fn is not None else decorate

def _fail_fast_on_configuration(body: Any, *args: Any, **kw: Any) -> Any:
    """A SQL source or sink that is misconfigured (missing table, query error, permission denied, an
    undefined connection) fails the task at once with its message: retrying cannot fix it. A database that
    does not answer raises SqlSourceUnavailableError, which Airflow retries like any other error."""
    try:
        return body(*args, **kw)
    except Exception as exc:
        from steward.airflow.connections import ConnectionNotDefinedError
        from steward.sources.batches import SourceConfigurationError

        if not isinstance(exc, SourceConfigurationError | ConnectionNotDefinedError):
            raise
        from airflow.sdk.exceptions import AirflowFailException

        log.error("REFUSED: %s", exc)
        raise AirflowFailException(str(exc)) from None


DEFAULT_RETRIES = 2


def retry_delay() -> dt.timedelta:
    """Two minutes by default; a deployment (or the fault-injection tests) may change it."""
    return dt.timedelta(seconds=float(os.environ.get("STEWARD_RETRY_DELAY_SECONDS", "120")))


def state_paths():
    from steward.settings import StewardPaths

    return StewardPaths.from_env()


def connect(conn_id: str) -> Any:
    from steward.airflow.connections import engine_for

    return engine_for(conn_id)


def opener(eng: Engagement) -> Any:
    """url -> Airflow's ObjectStoragePath with the engagement's connection (object storage sources only)."""
    conn_id = getattr(eng.data, "conn_id", None) if eng.data.source == "object_storage" else None

    def open_path(url: str) -> Any:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(url, conn_id=conn_id)

    return open_path


def logical_day() -> str:
    ctx = get_current_context()
    run = ctx["dag_run"]
    when = run.logical_date or run.run_after
    return when.date().isoformat()


def pull(ti: Any, task_id: str, key: str = "return_value") -> Any:
    """One upstream task's XCom. No steward task is mapped, so ask for map index -1: without it Airflow
    fetches every map index through the execution API's slice route, several times the cost (measured:
    6.7 % of a night's CPU for the 15 pulls of a night)."""
    return ti.xcom_pull(task_ids=task_id, key=key, map_indexes=-1)


def run_tags() -> dict[str, str]:
    ctx = get_current_context()
    return {mlflow_tags.DAG_ID: ctx["dag"].dag_id, mlflow_tags.AIRFLOW_RUN_ID: ctx["run_id"]}
