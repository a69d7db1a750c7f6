"""Per-engagement access (issue 32): the Engagements app shows an engagement only to a user whom Airflow's auth
manager lets read its DAG. Run as the shipped deployment runs it (docker-compose.yaml): a real `airflow
api-server` with the FAB auth manager, two users whose roles read one DAG each, the DAG permissions made by
Airflow's own `sync-perm` and `roles add-perms`. Each user is refused the other's engagement everywhere (list,
page, report); the positive control shows that the same routes serve what the role does allow, so a refusal is
the check, not a broken route.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ENGAGEMENTS
from tests.support import servers

FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
USERS = {"alice": ("churn_telco", "alice-pass-1"), "bob": ("demand_retail", "bob-pass-2")}
NIGHT = "2026-03-01"


# Airflow's own CLI commands, run one after the other in one interpreter (Airflow's CLI parser, as the `airflow`
# entry point uses it): nine `airflow` processes each imported Airflow, its providers and FAB, about 3 s of CPU apiece
# (this suite 41 -> 15 CPU-s and 43 -> 16 s of wall, measured 2026-12-05).
_RUN_COMMANDS = """
import json, sys
from airflow.cli import cli_parser
parser = cli_parser.get_parser()
for argv in json.loads(sys.argv[1]):
    args = parser.parse_args(argv)
    args.func(args)
"""


def _airflow(env: dict[str, str], *commands: list[str]) -> None:
    full = {**os.environ, **env}
    done = subprocess.run([sys.executable, "-c", _RUN_COMMANDS, json.dumps(commands)], env=full, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"airflow {commands}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("access")
    home, engagements, airflow_home = servers.server_dirs(root)
    for eng_id, _ in USERS.values():
        shutil.copy(ENGAGEMENTS / f"{eng_id}.yaml", engagements)
        report = home / "artifacts" / eng_id / NIGHT / "drift_report.html"
        report.parent.mkdir(parents=True)
        report.write_text(f"<p>drift of {eng_id}</p>")
    port = servers.free_port()
    env = servers.standalone_env(home, engagements, airflow_home, port, AIRFLOW__CORE__AUTH_MANAGER=FAB,
                                 AIRFLOW__API_AUTH__JWT_SECRET="access-test-secret")
    commands = [["db", "migrate"],
                ["dags", "reserialize"],  # the DAGs exist, so that sync-perm makes their DAG:<id> resources
                ["sync-perm", "--include-dags"]]
    for user, (eng_id, password) in USERS.items():
        commands += [["roles", "create", f"{user}_role"],
                     ["roles", "add-perms", f"{user}_role", "-a", "can_read", "-r", f"DAG:{eng_id}"],
                     ["users", "create", "-u", user, "-p", password, "-r", f"{user}_role", "-e", f"{user}@example.com",
                      "-f", user, "-l", "tester"]]
    _airflow(env, *commands)
    log = root / "api-server.log"
    proc = servers.start([str(Path(sys.executable).with_name("airflow")), "api-server", "--port", str(port)], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        servers.wait_http(f"{url}/api/v2/version", 240, proc, log)
        yield {"url": url, "tokens": {u: servers.token(url, u, p) for u, (_, p) in USERS.items()}}
    finally:
        servers.stop(proc)


def test_each_user_sees_only_the_engagements_whose_dag_they_may_read(api):
    base = api["url"] + "/steward"
    for user, (mine, _) in USERS.items():
        theirs = next(e for e, _ in USERS.values() if e != mine)
        token = api["tokens"][user]
        code, body = servers.get(f"{base}/api/engagements", token)
        assert code == 200 and [r["engagement"] for r in json.loads(body)] == [mine]
        code, page = servers.get(f"{base}/engagements", token)
        assert code == 200 and mine in page and theirs not in page
        # positive control: the routes serve what the role allows
        assert servers.get(f"{base}/reports/{mine}/{NIGHT}/drift_report.html", token) == (200, f"<p>drift of {mine}</p>")
        assert servers.get(f"{base}/engagements/{mine}", token)[0] == 404  # it has not run yet: the page says so
        assert "has not run yet" in servers.get(f"{base}/engagements/{mine}", token)[1]
        # the other engagement does not exist for this user: the same 404 as a made-up id
        code, body = servers.get(f"{base}/reports/{theirs}/{NIGHT}/drift_report.html", token)
        assert code == 404 and "drift of" not in body
        code, body = servers.get(f"{base}/engagements/{theirs}", token)
        assert code == 404 and "unknown engagement" in body
    # Airflow agrees: the same users read only their DAG through the REST API
    code, body = servers.get(f"{api['url']}/api/v2/dags", api["tokens"]["alice"])
    assert code == 200 and [d["dag_id"] for d in json.loads(body)["dags"]] == ["churn_telco"]


def test_no_login_no_page_and_no_schema(api):
    base = api["url"] + "/steward"
    for path in ("/engagements", "/api/engagements", f"/reports/churn_telco/{NIGHT}/drift_report.html"):
        assert servers.get(base + path, None)[0] in (401, 403), path
    for path in ("/docs", "/redoc", "/openapi.json"):  # off: they would describe the routes to anyone
        assert servers.get(base + path, api["tokens"]["alice"])[0] == 404, path
        assert servers.get(base + path, None)[0] in (401, 403, 404), path
