"""Client data cannot run script as the operator (issue 32): a category value `</script><script>...` in a batch.

Two defences, each attacked in headless Chromium against the Engagements app's own report route:
- the report escapes what it embeds: an Evidently drift report built from a batch carrying the payload
  renders, shows the value as text, and the payload never runs;
- the report is served in an opaque origin (`Content-Security-Policy: sandbox allow-scripts`, no network):
  a stored report whose script does try (written by anyone who can write the state volume) can neither read
  the UI's token (cookie, local storage) nor call the API as the user. The same page served without the
  headers steals both: the positive control, so that this test can fail.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support import browser

NIGHT = "2026-03-03"
SECRET = "secret-session-token"
THEFT = ("(function(){var r={};try{r.cookie=document.cookie}catch(e){r.cookie='blocked'}"
         "try{r.storage=localStorage.getItem('token')}catch(e){r.storage='blocked'}"
         "fetch('/api/engagements',{credentials:'include'}).then(function(x){return x.text()})"
         ".then(function(t){r.api=t.slice(0,40)}).catch(function(){r.api='blocked'})"
         ".finally(function(){document.title='pwned:'+JSON.stringify(r)})})()")
PAYLOAD = f"</script><script>{THEFT}</script>"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(paths, monkeypatch):
    """The Engagements app on a local port, its login replaced by "logged in" (Airflow's own auth is tested
    in test_standalone); plus, for the positive control, one route serving a report without the headers."""
    import uvicorn
    from fastapi import Depends
    from fastapi.responses import FileResponse

    from steward.airflow import ui

    monkeypatch.setattr(ui, "_auth_dependency", lambda: Depends(lambda: None))
    monkeypatch.setattr(ui, "_user_dependency", lambda: Depends(lambda: None))
    monkeypatch.setattr(ui, "readable", lambda user, ids: ids)  # per-DAG access: tests/servers/test_access.py
    app = ui.create_app()

    @app.get("/unsafe/{name}")
    def unsafe(name: str) -> FileResponse:  # what the route did before: text/html from the UI's origin
        return FileResponse(paths.artifacts / "churn_telco" / NIGHT / name, media_type="text/html")

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _hostile_drift_report(churn, out: Path) -> Path:
    from steward import demo
    from steward.monitoring import drift

    rng = np.random.default_rng(3)
    reference = demo._churn_frame(rng, 400, 1, 0.0, False).assign(prediction=rng.random(400))
    current = demo._churn_frame(rng, 200, 10_000, 0.0, False).assign(prediction=rng.random(200))
    current.loc[:59, "contract"] = PAYLOAD
    drift.detect_drift(churn, reference, current, out)
    return out / "drift_report.html"


def _open(url: str, page_url: str) -> tuple[str, str]:
    """Open `page_url` as a logged-in operator (a session cookie and a token in local storage on the app's
    origin); the page's title after its scripts ran, and its text."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser.ensure_chromium(), args=browser.FLAGS[1:])
        context = chromium.new_context()
        context.add_cookies([{"name": "_token", "value": SECRET, "url": url}])
        page = context.new_page()
        page.goto(url + "/api/engagements")
        page.evaluate(f"localStorage.setItem('token', '{SECRET}')")
        page.goto(page_url)
        page.wait_for_load_state("load")
        try:
            page.wait_for_function("document.title.startsWith('pwned:')", timeout=5_000)
        except Exception:  # noqa: BLE001 - no payload ran: the title stays the report's
            pass
        title, text = page.title(), page.locator("body").inner_text(timeout=30_000)
        chromium.close()
    return title, text


@pytest.mark.browser
def test_a_hostile_category_value_renders_as_text_and_never_runs(churn, paths, app_url):
    report = _hostile_drift_report(churn, paths.artifacts / "churn_telco" / NIGHT)
    raw = report.read_text()
    assert "</script><script>(function()" not in raw  # escaped where Evidently embeds it
    assert "\\u003c/script\\u003e\\u003cscript\\u003e" in raw
    title, text = _open(app_url, f"{app_url}/reports/churn_telco/{NIGHT}/drift_report.html")
    assert not title.startswith("pwned:"), title
    assert "contract" in text and "tenure_months" in text  # Evidently's script rendered the report


@pytest.mark.browser
def test_a_report_that_tries_reads_no_token_and_calls_no_api(churn, paths, app_url):
    folder = paths.artifacts / "churn_telco" / NIGHT
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "drift_report.html").write_text(f"<!doctype html><title>report</title><p>drift</p><script>{THEFT}</script>")
    title, _ = _open(app_url, f"{app_url}/reports/churn_telco/{NIGHT}/drift_report.html")
    assert title.startswith("pwned:"), "the planted script must run (scripts are allowed, in an opaque origin)"
    stolen = json.loads(title.removeprefix("pwned:"))
    assert SECRET not in json.dumps(stolen), stolen
    assert stolen["storage"] == "blocked" and stolen["api"] == "blocked", stolen
    # positive control: the same page from the UI's own origin without the headers steals both
    title, _ = _open(app_url, f"{app_url}/unsafe/drift_report.html")
    control = json.loads(title.removeprefix("pwned:"))
    assert SECRET in control["cookie"] and control["storage"] == SECRET and control["api"].startswith("["), control


def test_a_model_card_shows_quoted_html_as_text():
    """Fairness group values are client data, the decision log is YAML: the card quotes both, escaped."""
    from steward.models import model_card

    text = ("# Model card\n\n| group | selection rate |\n|---|---|\n| <img src=x onerror=alert(1)> | 0.4 |\n\n"
            "Decision log: <script>alert(2)</script> and a [link](javascript:alert(3))\n")
    page = model_card.render_html(text, "v1 <b>card</b>")
    assert "<img" not in page and "<script>" not in page and "javascript:" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "<table>" in page and "<title>v1 &lt;b&gt;card&lt;/b&gt;</title>" in page  # tables still render


def test_a_traversal_in_the_report_route_is_stopped_by_the_inside_guard(paths, monkeypatch):
    """Issue 32: the traversal test must reach the guard. A file planted where `../../ledger` leads is really
    there (a plain join would serve it); the route refuses it because `inside()` raises, and says nothing else."""
    from fastapi import Depends, HTTPException

    from steward import settings
    from steward.airflow import ui

    planted = paths.home / "ledger" / "drift_report.html"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text("<p>not a report</p>")
    assert (paths.artifacts / "churn_telco" / "../../ledger" / "drift_report.html").resolve() == planted.resolve()
    escapes = []

    def spying_inside(root, relative):
        try:
            return settings.inside(root, relative)
        except settings.PathEscapeError:
            escapes.append(relative)
            raise

    monkeypatch.setattr(ui, "inside", spying_inside)
    monkeypatch.setattr(ui, "_auth_dependency", lambda: Depends(lambda: None))
    monkeypatch.setattr(ui, "_user_dependency", lambda: Depends(lambda: None))
    monkeypatch.setattr(ui, "readable", lambda user, ids: ids)
    route = next(r for r in ui.create_app().routes if getattr(r, "path", "") == "/reports/{engagement_id}/{night}/{name}")
    with pytest.raises(HTTPException) as refused:
        route.endpoint("churn_telco", "../../ledger", "drift_report.html", user=None)
    assert refused.value.status_code == 404 and escapes == ["churn_telco/../../ledger/drift_report.html"]
