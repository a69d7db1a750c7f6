"""`steward.airflow.runner`: the in-process night (`dag.test()`) and what it changes about Airflow's own loop."""

from __future__ import annotations

import time
from unittest import mock

from steward.airflow import runner


def _fake_dag_test():
    """A function named `test` compiled as if it were Airflow's `DAG.test`, sleeping a second per idle pass."""
    source = "def test(passes):\n    import time\n    for _ in range(passes):\n        time.sleep(1)\n"
    namespace: dict = {}
    exec(compile(source, "/venv/site-packages/airflow/sdk/definitions/dag.py", "exec"), namespace)
    return namespace["test"]


def test_dag_test_idle_polls_are_brisk_up_to_a_budget_and_nothing_else_is_shortened():
    real = time.sleep
    slept: list[float] = []
    with mock.patch.object(time, "sleep", slept.append):  # what the context manager takes as the real sleep
        with runner._brisk_polls() as shortened:
            _fake_dag_test()(runner.POLL_BUDGET + 3)
            time.sleep(1)  # anyone else's sleep (a task's, a retry's) keeps its length
    assert slept == [runner.BRISK_POLL_SECONDS] * runner.POLL_BUDGET + [1] * 3 + [1]
    assert shortened == [runner.POLL_BUDGET]
    assert runner.POLL_BUDGET >= 2 and slept[0] <= 0.1  # a skipped branch takes two idle passes to settle
    assert time.sleep is real  # undone on exit


def test_request_time_dependants_are_built_once_overrides_still_apply_and_equal_wrappers_stay_apart():
    """FastAPI rebuilds every sub-dependency's Dependant per request while any override is set (Airflow's in-process
    execution API sets four). Inside the runner the first build is reused; the override still answers, and two
    callables that compare equal (as Cadwyn's wrappers do) but are different objects get their own Dependant."""
    from fastapi import Depends, FastAPI
    from fastapi.dependencies import utils
    from fastapi.testclient import TestClient

    class EqualWrapper:  # compares equal to what it wraps, as cadwyn.schema_generation._CallableWrapper does
        def __init__(self, fn, tag):
            self.fn, self.tag = fn, tag

        def __call__(self, q: int = 0):
            return f"{self.tag}:{self.fn(q)}"

        def __eq__(self, other):
            return self.fn == getattr(other, "fn", other)

        def __hash__(self):
            return hash(self.fn)

    def double(q: int = 0):
        return 2 * q

    def guarded() -> str:
        return "real guard"

    first, second = EqualWrapper(double, "a"), EqualWrapper(double, "b")
    clients = []
    for wrapper in (first, second):  # one path in two apps, as Cadwyn serves one route in several API versions
        app = FastAPI()

        @app.get("/v")
        def route(value: str = Depends(wrapper), guard: str = Depends(guarded)):
            return [value, guard]

        app.dependency_overrides[guarded] = lambda: "overridden guard"
        clients.append(TestClient(app))

    def four_requests():
        return [client.get("/v", params={"q": 3}).json() for client in clients * 2]

    builds: list[str] = []
    real = utils.get_dependant

    def counting(**kwargs):
        builds.append(kwargs["name"])
        return real(**kwargs)

    with mock.patch.object(utils, "get_dependant", counting):
        plain = four_requests()
        per_request = len(builds)
        builds.clear()
        with runner._dependants_built_once() as cache:
            once = four_requests()
    assert once == plain == [["a:6", "overridden guard"], ["b:6", "overridden guard"]] * 2
    assert per_request == 8  # two sub-dependencies rebuilt on each of four requests without the runner's reuse
    # with it: each app's first request only; the two wrappers compare equal but each gets its own Dependant
    assert sorted(builds) == ["guard", "guard", "value", "value"]
    values = [built for call, built in cache.values() if isinstance(call, EqualWrapper)]
    assert len(cache) == 4 and [d.call.tag for d in values] == ["a", "b"]
    assert utils.get_dependant is real  # both patches undone on exit


def test_in_process_requests_skip_the_network_only_middleware_and_the_app_is_restored():
    """Inside the runner the in-process execution API answers without the correlation-id echo and the JWT reissue;
    outside it (the positive control) the same request comes back with the echoed header, so the middleware really ran."""
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor, in_process_api_server

    app = in_process_api_server().app
    before = list(app.user_middleware)
    client = InProcessTestSupervisor._api_client()
    sent = client.get("health")  # the client adds a fresh correlation-id header to every request
    assert sent.status_code == 200 and sent.headers.get("correlation-id") == sent.request.headers["correlation-id"]
    with runner._without_network_only_middleware() as left_out:
        lean = client.get("health")
        names = [m.cls.__name__ for m in app.user_middleware]
    assert sorted(left_out) == ["CorrelationIdMiddleware", "JWTReissueMiddleware"]  # an Airflow that renames one fails here
    assert not set(left_out) & set(names) and names  # the others (version picking) stay
    assert lean.status_code == 200 and lean.json() == sent.json() and "correlation-id" not in lean.headers
    assert app.user_middleware == before
    again = client.get("health")
    assert again.headers.get("correlation-id") == again.request.headers["correlation-id"]  # rebuilt with both


def test_rendered_fields_use_one_json_value_adapter_and_serialize_as_before():
    from airflow.sdk.bases.operator import BaseOperator
    from airflow.sdk.execution_time import task_runner
    from pydantic import JsonValue

    class Templated(BaseOperator):
        template_fields = ("command", "env")

        def __init__(self, command: str, env: dict, **kwargs):
            super().__init__(**kwargs)
            self.command, self.env = command, env

    task = Templated(task_id="t", command="echo {{ ds }}", env={"A": ["1", 2, None]})
    plain = task_runner._serialize_rendered_fields(task)
    assert task_runner.TypeAdapter(JsonValue) is not task_runner.TypeAdapter(JsonValue)  # Airflow's own: one per call
    with runner._json_value_adapter_built_once() as shared:
        assert task_runner.TypeAdapter(JsonValue) is shared is task_runner.TypeAdapter(JsonValue)
        assert task_runner.TypeAdapter(int) is not task_runner.TypeAdapter(int)  # any other type as before
        assert task_runner.TypeAdapter(int).validate_python("3") == 3
        lean = task_runner._serialize_rendered_fields(task)
    assert lean == plain == {"command": "echo {{ ds }}", "env": {"A": ["1", 2, None]}}
    assert task_runner.TypeAdapter(JsonValue) is not shared  # undone on exit


def _on_a_loop_thread(name: str, coroutine_function):
    """Run `coroutine_function()` on a fresh event loop in a thread called `name`; its result."""
    import asyncio
    import threading

    out: list = []
    thread = threading.Thread(target=lambda: out.append(asyncio.run(coroutine_function())), name=name)
    thread.start()
    thread.join(timeout=30)
    return out[0], thread


def test_sync_work_runs_inline_only_on_the_in_process_api_loop():
    """Inside the runner, `anyio.to_thread.run_sync` called on the in-process API's loop thread runs the function on
    that thread; from a loop on any other thread, or outside the runner (the positive controls), anyio's worker
    thread runs it as before."""
    import threading

    import anyio.to_thread

    async def where():
        return await anyio.to_thread.run_sync(threading.current_thread)

    real = anyio.to_thread.run_sync
    with runner._sync_work_inline_on_the_api_loop() as inline:
        ran_on, api_loop = _on_a_loop_thread(runner.API_LOOP_THREAD, where)
        assert ran_on is api_loop and inline == [1]
        ran_on, other_loop = _on_a_loop_thread("someone-elses-loop", where)
        assert ran_on is not other_loop and ran_on.name != "someone-elses-loop" and inline == [1]
    assert anyio.to_thread.run_sync is real  # undone on exit
    ran_on, api_loop = _on_a_loop_thread(runner.API_LOOP_THREAD, where)
    assert ran_on is not api_loop


def test_the_in_process_api_does_its_sync_work_on_its_loop_and_answers_as_before():
    """Airflow names the in-process API's loop thread as runner.API_LOOP_THREAD (a rename fails here, not silently in
    the nights' CPU); a request's sync dependencies and route run inline there, with the same answer."""
    import threading

    from airflow.sdk.api.client import ServerResponseError
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor, in_process_api_server

    runner.ensure_airflow_db()  # the route reads the metadata DB
    assert in_process_api_server().transport is not None  # built on first use: it starts the loop thread
    assert runner.API_LOOP_THREAD in {t.name for t in threading.enumerate()}

    client = InProcessTestSupervisor._api_client()

    def answer() -> tuple[int, dict]:  # a sync route with a DB session dependency; the client raises on a 404
        try:
            response = client.request("GET", "xcoms/no_dag/no_run/no_task/return_value?map_index=-1")
        except ServerResponseError as exc:
            response = exc.response
        return response.status_code, response.json()

    plain = answer()
    with runner._sync_work_inline_on_the_api_loop() as inline:
        lean = answer()
    assert inline[0] >= 2  # the session dependency and the route at least
    assert lean == plain and plain[0] == 404 and "not found" in plain[1]["detail"]["message"]
