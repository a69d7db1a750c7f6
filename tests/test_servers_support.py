"""The test harness's own promise: a stopped server leaves no process behind (an orphaned scheduler from one
suite steals CPU and tasks from every later one)."""

from __future__ import annotations

import os
import time

from tests.support import servers


def test_stop_kills_a_child_that_outlives_its_parent(tmp_path):
    pid_file = tmp_path / "child.pid"
    # the child ignores SIGTERM (as a scheduler busy shutting down would), the parent exits on it
    script = f"(trap '' TERM; exec sleep 300) & echo $! > {pid_file}; exec sleep 300"
    proc = servers.start(["bash", "-c", script], {}, tmp_path / "log")
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    child = int(pid_file.read_text())
    os.kill(child, 0)  # alive before

    servers.stop(proc)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"process {child} of the stopped server's group is still alive")
