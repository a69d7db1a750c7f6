"""The operator's seat in real servers: Airflow UI (standalone) with the Engagements page, and MLflow UI.

Servers run as processes started here; the browser is Debian's chromium driven by Playwright
(no browser download). Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

import pytest

from steward import demo
from steward.settings import PROJECT_ROOT, StewardPaths
from tests.support import browser, servers

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
PASSWORD = "steward-test-pass"
SHOTS = PROJECT_ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from steward.airflow.runner import run_night

    home = tmp_path_factory.mktemp("ui")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEWARD_HOME", str(home))
        paths = StewardPaths.from_env()
        demo.generate("churn_telco", paths.data_root, nights=3)
        for day in demo.night_dates(nights=3):
            assert run_night("churn_telco", day)["state"].endswith("success")
        airflow_home = home / "airflow-ui"
        airflow_home.mkdir()
        (airflow_home / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
        port, mlflow_port = servers.free_port(), servers.free_port()
        env = {
            "STEWARD_HOME": str(home), "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
            "STEWARD_MLFLOW_UI_URL": f"http://127.0.0.1:{mlflow_port}",
        }
        airflow = servers.start([str(servers.Path(sys.executable).with_name("airflow")), "standalone"], env,
                                home / "standalone.log")
        mlflow = servers.start([str(servers.Path(sys.executable).with_name("mlflow")), "ui", "--backend-store-uri",
                                paths.tracking_uri, "--host", "127.0.0.1", "--port", str(mlflow_port)], env,
                               home / "mlflow.log")
        try:
            servers.wait_http(f"http://127.0.0.1:{port}/api/v2/version", 240, airflow, home / "standalone.log")
            servers.wait_http(f"http://127.0.0.1:{mlflow_port}/health", 120, mlflow, home / "mlflow.log")
            yield {"url": f"http://127.0.0.1:{port}", "mlflow": f"http://127.0.0.1:{mlflow_port}", "home": home}
        finally:
            servers.stop(airflow)
            servers.stop(mlflow)


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _token(base: str) -> str:
    req = urllib.request.Request(f"{base}/auth/token", data=json.dumps({"username": "admin", "password": PASSWORD}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["access_token"]


def test_engagements_page_requires_airflow_auth(stack):
    base = stack["url"]
    for path in ("/steward/engagements", "/steward/api/engagements", "/steward/engagements/churn_telco",
                 "/steward/reports/churn_telco/2026-03-03/drift_report.html"):
        code, _ = _get(base + path)
        assert code in (401, 403), (path, code)
    code, body = _get(base + "/steward/api/engagements", _token(base))
    assert code == 200
    rows = {r["engagement"]: r for r in json.loads(body)}
    assert rows["churn_telco"]["last_night"] == "2026-03-03" and rows["churn_telco"]["champion_version"] == 1
    assert rows["demand_retail"]["last_run_state"] == "never run"
    code, _ = _get(base + "/steward/reports/churn_telco/2026-03-03/..%2F..%2F..%2Fledger", _token(base))
    assert code == 404


def test_browser_login_dags_engagements_report_and_mlflow(stack):
    from playwright.sync_api import sync_playwright

    browser.ensure_chromium()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser.ensure_chromium(), args=browser.FLAGS[1:])
        page = chromium.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(stack["url"] + "/")
        page.wait_for_selector("input[name='username']", timeout=60_000)
        page.fill("input[name='username']", "admin")
        page.fill("input[name='password']", PASSWORD)
        page.click("button[type='submit']")
        page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
        page.goto(stack["url"] + "/dags")
        page.get_by_text("churn_telco").first.wait_for(timeout=90_000)
        page.screenshot(path=str(SHOTS / "airflow_dags.png"))
        page.goto(stack["url"] + "/plugin/steward-engagements")
        frame = page.frame_locator("iframe").first
        frame.locator("tr[data-engagement='churn_telco']").wait_for(timeout=60_000)
        assert "Northwind Telecom" in frame.locator("tr[data-engagement='churn_telco']").inner_text()
        page.screenshot(path=str(SHOTS / "airflow_engagements_page.png"))
        # follow a link to a report, in a page of its own (same Airflow session cookie)
        page.goto(stack["url"] + "/steward/engagements")
        page.click("tr[data-engagement='churn_telco'] a:text('drift')")
        page.wait_for_load_state()
        assert "/steward/reports/churn_telco/2026-03-03/drift_report.html" in page.url
        report_text = page.locator("body").inner_text(timeout=60_000).lower()
        assert "drift" in report_text and "monthly_charges" in report_text  # the report itself, not an error page
        page.screenshot(path=str(SHOTS / "drift_report_via_plugin.png"))
        page.goto(stack["url"] + "/steward/engagements/churn_telco")
        assert page.locator("svg polyline").count() == 2
        page.screenshot(path=str(SHOTS / "engagement_detail.png"))
        page.goto(stack["mlflow"] + "/#/models/steward.churn_telco")
        page.get_by_text("champion").first.wait_for(timeout=60_000)
        page.screenshot(path=str(SHOTS / "mlflow_registered_model.png"))
        chromium.close()
    for name in ("airflow_dags.png", "airflow_engagements_page.png", "drift_report_via_plugin.png",
                 "engagement_detail.png", "mlflow_registered_model.png"):  # test artefacts in test-artifacts/
        shot = SHOTS / name
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000, name
