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
