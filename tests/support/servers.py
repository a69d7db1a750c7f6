"""Start real servers (airflow standalone, mlflow ui) as processes for the UI tests, and stop them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from steward.settings import EMBEDDED_SCHEDULER


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


def server_dirs(root: Path) -> tuple[Path, Path, Path]:
    """A server's own STEWARD_HOME, engagements folder and AIRFLOW_HOME under `root`, created empty."""
    dirs = root / "home", root / "engagements", root / "airflow"
    for d in dirs:
        d.mkdir()
    return dirs


def standalone_env(home: Path, engagements: Path, airflow_home: Path, port: int, *, workers: int | None = None,
                   **extra: str) -> dict[str, str]:
    """Environment for `airflow standalone` on this project's dags/ and plugins/, with its own SQLite DB,
    steward state under `home` and engagement files from `engagements`; DAGs start unpaused. Task processes
    report to the API server's execution API, so its URL follows the (non-default) port.

    `workers`: how many tasks the suite runs at once. The LocalExecutor forks all its workers when the
    scheduler starts and each preloading worker imports the task libraries at once (about 10 s of CPU each,
    measured): a suite that runs one task at a time does not pay for four."""
    root = Path(__file__).resolve().parents[2]
    return {
        "STEWARD_HOME": str(home), "STEWARD_ENGAGEMENTS_DIR": str(engagements), "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        **EMBEDDED_SCHEDULER,  # as `make airflow-ui` runs it (ADR 0019, 0020)
        **({} if workers is None else {"AIRFLOW__CORE__PARALLELISM": str(workers)}),
        **extra,
    }


def get(url: str, token: str | None = None) -> tuple[int, str]:
    """(status, body) of a GET, with a JWT when given; an HTTP error is an answer, not an exception."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def rest(url: str, body: dict | None = None, method: str | None = None, token: str | None = None) -> dict:
    """Call Airflow's REST API, with a JWT from `token(...)` (or none on a standalone whose users are all
    admins). Polling through the `airflow` CLI instead would start a Python process with Airflow imported
    every few seconds, on the two cores the nights need."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 method=method or ("GET" if body is None else "POST"), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{req.method} {url}: {exc.code} {exc.read()[:2000]!r}") from exc


def rest_patch(url: str, body: dict, token: str | None = None) -> dict:
    return rest(url, body, method="PATCH", token=token)


def token(base: str, username: str, password: str) -> str:
    """A JWT for Airflow's REST API from a user's password (simple auth manager)."""
    body = json.dumps({"username": username, "password": password}).encode()
    req = urllib.request.Request(f"{base}/auth/token", data=body, headers={"Content-Type": "application/json"},
                                 method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["access_token"]


def trigger_run(api: str, dag_id: str, run_id: str, logical_date: str, token: str | None = None) -> None:
    """Trigger a DAG run. SQLite under a busy scheduler can answer "database is locked" (HTTP 500, nothing
    written): try again; a 409 means an earlier attempt did create the run."""
    for attempt in range(10):
        try:
            rest(f"{api}/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": logical_date}, token=token)
            return
        except AssertionError as exc:
            if ": 409 " in str(exc):
                return
            if ": 500 " not in str(exc) or attempt == 9:
                raise
            time.sleep(2)
