"""Run an engagement's real DAG in-process (`dag.test()`), for the CLI, the demo and the tests.

Call `steward.settings.configure_embedded_airflow()` before importing this module: Airflow reads
its configuration when it is first imported.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from steward.config import load_engagement
from steward.frame_stack import call_with_room
from steward.settings import StewardPaths, engagements_dir

_db_ready = False


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send everything written to fds 1 and 2 to `path` (task logs go to a file per night).

    Airflow's structlog keeps its own handle on stdout, so swapping `sys.stdout` is not enough:
    the redirect happens at the file-descriptor level and is undone afterwards.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("wb") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _parsing_only(dag_id: str) -> contextlib.AbstractContextManager:
    """While `dag.test()` runs, the DAG factory builds only `dag_id` (and its approval DAG).

    `dag.test()` parses the whole DAG folder again on every call and writes every DAG it finds to the metadata
    DB; with the parsing context that Airflow sets for a worker running one task, the folder holds this
    engagement's DAG only. Writing them was 8.6 % of a night's samples with five DAGs in the folder (py-spy,
    2026-12-05).
    """
    from unittest import mock

    from airflow.sdk.definitions.context import _AIRFLOW_PARSING_CONTEXT_DAG_ID as key

    return mock.patch.dict(os.environ, {key: dag_id})


# dag.test() sleeps a whole second after every pass of its loop that finds nothing to run. On a night whose branch
# skipped the model stages that happens twice while the skips propagate: 2 s of a 3.6 s quarantine night (1.5 s
# of CPU), measured. The first passes of a night poll briskly; after POLL_BUDGET of them the loop is back to its
# own second, so a run that really waits (a retry delay) does not spin.
BRISK_POLL_SECONDS = 0.05
POLL_BUDGET = 20
_DAG_TEST_FILE = os.path.join("airflow", "sdk", "definitions", "dag.py")  # whose `test` function's sleeps are cut


@contextlib.contextmanager
def _brisk_polls() -> Iterator[list[int]]:
    """Shorten dag.test()'s idle polls (only its own: a frame check), at most POLL_BUDGET per run.

    Yields a one-item list holding how many polls were shortened (the tests read it)."""
    import time
    from unittest import mock

    real_sleep = time.sleep
    shortened = [0]

    def sleep(seconds: float) -> None:
        caller = sys._getframe(1).f_code
        if caller.co_name == "test" and caller.co_filename.endswith(_DAG_TEST_FILE) and shortened[0] < POLL_BUDGET:
            shortened[0] += 1
            seconds = min(seconds, BRISK_POLL_SECONDS)
        real_sleep(seconds)

    with mock.patch.object(time, "sleep", sleep):
        yield shortened


# dag.test() talks to Airflow's execution API in-process, and that app replaces its auth dependencies through
# FastAPI's `dependency_overrides`. While any override is set, FastAPI (0.136; fastapi/fastapi#16342 proposes the fix)
# builds every sub-dependency's Dependant again, signature analysis and pydantic fields included, on every request:
# 37 % of an in-process request's CPU, and a night makes about 90 of them (py-spy, 2026-12-06).
_SOLVER = "solve_dependencies"


@contextlib.contextmanager
def _dependants_built_once() -> Iterator[dict]:
    """Build each Dependant that FastAPI's request-time override path asks for once per run, not once per request.

    Only calls from `solve_dependencies` (the override path) are reused: a route's own Dependants, built when the app
    starts, are left alone. What FastAPI builds there is a function of the arguments and of the callable's signature,
    and FastAPI does not change a Dependant once built, so handing back the first one is what it would build again.
    The key holds every argument, the callable by identity: Cadwyn's wrappers compare equal to the function they wrap.
    Yields the cache (the tests read it)."""
    from unittest import mock

    from fastapi.dependencies import utils

    real = utils.get_dependant
    built: dict[tuple, tuple[object, object]] = {}

    def get_dependant(**kwargs):  # FastAPI passes keywords only; whatever it adds later is part of the key
        if sys._getframe(1).f_code.co_name != _SOLVER:
            return real(**kwargs)
        call = kwargs["call"]
        key = tuple(sorted((name, id(value) if name == "call" else tuple(value) if isinstance(value, list) else value)
                           for name, value in kwargs.items()))
        hit = built.get(key)
        if hit is None or hit[0] is not call:
            hit = built[key] = (call, real(**kwargs))
        return hit[1]

    with mock.patch.object(utils, "get_dependant", get_dependant):
        yield built


# Two of the in-process execution API's middlewares serve callers that come over the network: one echoes the caller's
# correlation id into response headers (and binds it to the API's log lines), the other reissues a JWT that is about to
# expire; dag.test()'s client sends no token. Both are Starlette BaseHTTPMiddlewares, which run every request through
# a task group and memory streams of their own: 1.2 to 2 ms of the 6.6 to 8 ms of CPU a request takes here
# (bench, 2026-12-06).
NETWORK_ONLY_MIDDLEWARE = ("CorrelationIdMiddleware", "JWTReissueMiddleware")


@contextlib.contextmanager
def _without_network_only_middleware() -> Iterator[list[str]]:
    """Serve this run's in-process requests without NETWORK_ONLY_MIDDLEWARE; the app is as it was afterwards.

    Yields the names of the middlewares left out (the tests read them)."""
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    app = in_process_api_server().app
    full = list(app.user_middleware)
    kept = [m for m in full if getattr(m.cls, "__name__", "") not in NETWORK_ONLY_MIDDLEWARE]
    app.user_middleware, app.middleware_stack = kept, None  # Starlette builds the stack again at the next request
    try:
        yield [m.cls.__name__ for m in full if m not in kept]
    finally:
        app.user_middleware, app.middleware_stack = full, None


@contextlib.contextmanager
def _json_value_adapter_built_once() -> Iterator[object]:
    """Airflow's task runner builds a pydantic TypeAdapter for JsonValue (a whole core schema) for every template
    field of every task it runs, to send the rendered fields to the API: 1.6 % of a warm night (py-spy, 2026-12-06).
    Inside the run it gets one adapter, built once; any other type is built as before. Yields that adapter."""
    from unittest import mock

    from airflow.sdk.execution_time import task_runner
    from pydantic import JsonValue

    real = task_runner.TypeAdapter
    json_value = real(JsonValue)

    def adapter(type_, *args, **kwargs):
        return json_value if type_ is JsonValue and not args and not kwargs else real(type_, *args, **kwargs)

    with mock.patch.object(task_runner, "TypeAdapter", adapter):
        yield json_value


# FastAPI runs every sync dependency and sync route of a request in anyio's worker threads, so that a server's event
# loop keeps serving other requests meanwhile. The in-process API's loop serves one request at a time: dag.test()
# blocks until each answer. Each hop to a worker thread and back (a thread wake-up, the GIL handed over twice, the
# loop woken again) costs more than the work of most routes: 7.2-7.7 -> 5.2-5.6 ms of CPU per request with the sync
# work run on the loop's own thread (five alternations of 600 requests, one process, 2026-12-06); a night makes
# about 90 requests. The execution API opens an unscoped session per request, so nothing thread-local moves.
API_LOOP_THREAD = "InProcessExecutionAPI-loop"  # the name Airflow gives the in-process API's event-loop thread


@contextlib.contextmanager
def _sync_work_inline_on_the_api_loop() -> Iterator[list[int]]:
    """While the run lasts, `anyio.to_thread.run_sync` called on the in-process API's loop thread runs the function
    right there; a call from any other thread goes to anyio as before. Yields a one-item count of inline calls."""
    import threading
    from unittest import mock

    import anyio.to_thread

    real = anyio.to_thread.run_sync
    inline = [0]

    async def run_sync(func, *args, abandon_on_cancel=False, cancellable=None, limiter=None):
        if threading.current_thread().name != API_LOOP_THREAD:
            return await real(func, *args, abandon_on_cancel=abandon_on_cancel, cancellable=cancellable,
                              limiter=limiter)
        inline[0] += 1
        return func(*args)

    with mock.patch.object(anyio.to_thread, "run_sync", run_sync):
        yield inline


def ensure_airflow_db() -> None:
    """Create or migrate the Airflow metadata DB (SQLite under STEWARD_HOME by default) once per process."""
    global _db_ready
    if _db_ready:
        return
    from airflow.utils.db import upgradedb

    log_path = StewardPaths.from_env().home / "logs" / "airflow-db-migrate.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with _output_to(log_path):
        upgradedb()
    _db_ready = True


def run_night(engagement_id: str, day: dt.date, *, quiet: bool = True) -> dict:
    """One nightly run of the real DAG for `day`. Returns {'state', 'run_id', 'audit'}."""
    import pendulum

    from steward.airflow.dag_builder import build_dag

    ensure_airflow_db()
    path = Path(engagements_dir()) / f"{engagement_id}.yaml"
    eng = load_engagement(path)
    dag = build_dag(eng, path)
    # Deadline Alerts are the scheduler's job. Airflow 3.3's dag.test() cannot finish a run that has them
    # (DagRun.update_state looks the alerts up by serialized id, which an in-process DAG does not have).
    dag.deadline = None
    logical = pendulum.datetime(day.year, day.month, day.day, tz="UTC")
    paths = StewardPaths.from_env()
    log_path = paths.home / "logs" / eng.id / f"{day.isoformat()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with (_output_to(log_path) if quiet else contextlib.nullcontext(), _parsing_only(eng.id), _brisk_polls(),
          _dependants_built_once(), _without_network_only_middleware(), _json_value_adapter_built_once(),
          _sync_work_inline_on_the_api_loop()):
        dr = call_with_room(dag.test, logical_date=logical)
    record_path = paths.run_dir(eng.id, day.isoformat()) / "audit.json"
    record = None
    if record_path.exists():
        import json

        record = json.loads(record_path.read_text())
    _freeze_what_the_first_night_loaded()
    return {"state": str(getattr(dr, "state", "unknown")), "run_id": getattr(dr, "run_id", None), "audit": record,
            "log": str(log_path) if quiet else None}


_heap_frozen = False


def _freeze_what_the_first_night_loaded() -> None:
    """After the first night in a process, move every object alive (Airflow, MLflow, GX, Evidently and
    scikit-learn as imported, the DAG machinery) out of the collector's reach, as Airflow's own scheduler and
    executors do before they fork: each full collection of a later night otherwise walks those millions of
    objects again. Measured on twelve churn nights in one process (2026-12-06): the collector's full passes
    1.8 s -> 1.1 s of 52 CPU-s."""
    global _heap_frozen
    if not _heap_frozen:
        import gc

        gc.collect()
        gc.freeze()
        _heap_frozen = True


def run_nights(engagement_id: str, first: dt.date, last: dt.date, *, on_night=None) -> list[dict]:
    """Run the real DAG for every night from `first` to `last`, in order, in this process.

    A night that fails (or whose run cannot even start) is recorded and the next night still runs, as
    the scheduler would. `on_night(day, result, seconds)` is called after each night (progress output).
    Returns one {'date', 'state', 'outcome', 'seconds', 'log', 'error'} per night.
    """
    import time
    import traceback

    out = []
    day = first
    while day <= last:
        t0 = time.perf_counter()
        try:
            result = run_night(engagement_id, day)
            error = None
        except Exception as exc:  # a run that could not start: record it, go on with the next night
            result = {"state": "failed", "audit": None, "log": None, "run_id": None}
            error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        seconds = time.perf_counter() - t0
        night = {"date": day.isoformat(), "state": result["state"], "outcome": (result["audit"] or {}).get("outcome"),
                 "seconds": round(seconds, 2), "log": result["log"], "error": error,
                 "audit": result["audit"]}
        out.append(night)
        if on_night is not None:
            on_night(day, night, seconds)
        day += dt.timedelta(days=1)
    return out
