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
