"""Start real servers (airflow standalone, mlflow ui) as processes for the UI tests, and stop them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}; log:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status < 500:
                    return
        except Exception:
            time.sleep(1)
    raise TimeoutError(f"{url} not up after {timeout}s; log:\n{log.read_text()[-4000:]}")


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    bin_dir = str(Path(sys.executable).parent)
    full_env = {**os.environ, **env, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    return subprocess.Popen(cmd, env=full_env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """Stop a server and everything it started: its whole process group, SIGTERM first, then SIGKILL for
    whatever is left. `airflow standalone` can exit before its scheduler does; a scheduler left behind
    lives on as an orphan that keeps stealing CPU (and tasks) from every later test."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)
    deadline = time.monotonic() + 5
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def standalone_env(home: Path, engagements: Path, airflow_home: Path, port: int, **extra: str) -> dict[str, str]:
    """Environment for `airflow standalone` on this project's dags/ and plugins/, with its own SQLite DB,
    steward state under `home` and engagement files from `engagements`; DAGs start unpaused. Task processes
    report to the API server's execution API, so its URL follows the (non-default) port."""
    root = Path(__file__).resolve().parents[2]
    return {
        "STEWARD_HOME": str(home), "STEWARD_ENGAGEMENTS_DIR": str(engagements), "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # as `make airflow-ui` runs it: task libraries imported once per worker (ADR 0019)
        "AIRFLOW__CORE__EXECUTOR": "steward.airflow.executor.PreloadingLocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        **extra,
    }
