"""The suites that need Airflow's real scheduler, against one `airflow standalone` (LocalExecutor, steward's
preloading workers) and one `mlflow ui`, started once for this module (ADR 0018).

- Faults: the worker is SIGKILLed in the middle of retraining and twice in the middle of the audit export,
  and Airflow retries. The night must end exactly like an undisturbed twin engagement's: one model version,
  one ledger entry, a record that verifies. Then clearing the export task re-runs it without changing a byte.
- Freshness SLA as an Airflow 3 Deadline Alert: an engagement whose batch never arrives, with a 6-second
  freshness deadline. The scheduler notices the miss and runs steward's callback on the executor, which
  records the SLA evaluation, opens an incident, writes the alert to the incident log and appends an 'sla'
  entry to the ledger.
- The operator's seat: the Airflow UI with the Engagements page, behind Airflow's login, and the MLflow UI;
  the browser is Debian's chromium driven by Playwright (no browser download). Screenshots land in
  test-artifacts/.

One server for the three: each engagement starts paused (the shipped ones stay paused, so the scheduler runs
nothing the browser checks do not expect) and the suites unpause their own; every REST call carries a JWT
from the admin's password, as the login the browser proves is required.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from steward import demo, store
from steward.config import load_engagement
from steward.governance import ledger, lineage
from steward.models import registry
from steward.operations import incidents, notify
from steward.settings import PROJECT_ROOT, StewardPaths
from steward.sources import batches
from tests.conftest import ENGAGEMENTS
from tests.support import browser, servers

pytestmark = pytest.mark.e2e  # and browser, by its folder: the faults run nights on the shared standalone
PASSWORD = "steward-test-pass"
SHOTS = PROJECT_ROOT / "test-artifacts"
NIGHT = dt.date(2026, 3, 2)  # the faults' night: the second, where a daily scheduled refresh retrains
FAULTS = ("retrain.after_register", "export.after_record", "export.after_ledger")
TWINS = ("fault_churn", "calm_churn")
LATE = "late_feed"
APPROVE, LAPSE = "approval_churn", "approval_lapse"  # issue 35: answered by people, and left unanswered
USERS = {"admin": "admin", "approver": "user", "intruder": "user"}


def _with_approval(folder: Path, eng_id: str, timeout_hours: float) -> None:
    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    raw.update(id=eng_id, schedule="0 2 29 2 *")  # its nights never run here: the requests are prepared
    raw["promotion"]["approval"] = {"required": True, "approvers": ["approver"], "timeout_hours": timeout_hours}
    (folder / f"{eng_id}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def _awaiting(paths: StewardPaths, engagements: Path, eng_id: str, versions: int | None = None) -> int:
    """Register versions 1..`versions` (v1 champion) and ask for an approval of the newest, as the night's
    gate does when the evidence would promote (steward.pipeline._make_champion)."""
    from steward import mlflow_tags, pipeline, policy
    from steward.models import training

    eng = load_engagement(engagements / f"{eng_id}.yaml")
    c = registry.client(paths)
    frame = demo._churn_frame(np.random.default_rng(7), 400, 0, 0.0, False)
    have = len(c.search_model_versions(f"name='{eng.registered_model_name}'"))
    versions = versions or have + 1
    for v in range(have + 1, versions + 1):
        registry.log_and_register(c, paths, eng, training.train(eng, frame.sample(frac=0.9, random_state=v)),
                                  training_key=f"k{v}", params={}, metrics={},
                                  tags={mlflow_tags.TRAINED_FOR: f"2026-03-{v:02d}"})
    if registry.get_alias(c, eng, registry.CHAMPION) is None:
        registry.tag_version(c, eng, 1, {registry.PROMOTED_FOR_TAG: "2026-03-01"})
        registry.set_alias(c, eng, registry.CHAMPION, 1)
    champion = registry.get_alias(c, eng, registry.CHAMPION).version
    verdict = pipeline._make_champion(c, eng, paths, versions, dt.date(2026, 3, 10),
                                      policy.Decision("promote", ["the evidence clears the margin"]),
                                      evidence={"gain": 0.04, "rows": 900, "nights": 3}, champion=champion)
    assert verdict.action == "approval"
    return versions


def _fault_twin(folder: Path, eng_id: str) -> None:
    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    # Fires only on Feb 29: the scheduler creates no run of its own, only the ones the test triggers.
    raw.update(id=eng_id, schedule="0 2 29 2 *")
    raw["retraining"]["refresh_every_days"] = 1  # a candidate on the second night: one night of history suffices
    (folder / f"{eng_id}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def _late_feed(folder: Path) -> None:
    raw = yaml.safe_load((ENGAGEMENTS / "prepaid_churn.yaml").read_text())
    raw["id"] = LATE
    raw["data"]["wait_minutes"] = 5  # the sensor is still waiting when the deadline passes
    raw["sla"]["freshness"] = {"minutes_after_schedule": 0.1}
    # today's 02:00 run is created hours late by this test, so a completion deadline would fire as well
    raw["sla"].pop("completion")
    (folder / f"{LATE}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from steward.airflow.runner import run_night

    root = tmp_path_factory.mktemp("standalone")
    home, engagements, airflow_home = servers.server_dirs(root)
    for shipped in ENGAGEMENTS.glob("*.yaml"):  # the Engagements page lists what a deployment ships
        shutil.copy(shipped, engagements)
    for eng_id in TWINS:
        _fault_twin(engagements, eng_id)
    _late_feed(engagements)
    _with_approval(engagements, APPROVE, timeout_hours=1)
    _with_approval(engagements, LAPSE, timeout_hours=0.01)  # 36 seconds
    (airflow_home / "passwords.json").write_text(json.dumps({user: PASSWORD for user in USERS}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEWARD_HOME", str(home))
        mp.setenv("STEWARD_ENGAGEMENTS_DIR", str(engagements))
        paths = StewardPaths.from_env()
        demo.generate("churn_telco", paths.data_root, nights=3)  # the twins read churn_telco's batches too
        for day in demo.night_dates(nights=3):  # what the browser shows
            assert run_night("churn_telco", day)["state"].endswith("success")
        for eng_id in TWINS:  # the history before the faults' night, in-process
            assert run_night(eng_id, NIGHT - dt.timedelta(days=1))["state"].endswith("success")
        for eng_id in (APPROVE, LAPSE):
            _awaiting(paths, engagements, eng_id, versions=2)

        port, mlflow_port = servers.free_port(), servers.free_port()
        env = servers.standalone_env(
            home, engagements, airflow_home, port, workers=2,  # the twins' runs side by side
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=",".join(f"{u}:{role}" for u, role in USERS.items()),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(airflow_home / "passwords.json"),
            STEWARD_MLFLOW_UI_URL=f"http://127.0.0.1:{mlflow_port}",
            STEWARD_RETRY_DELAY_SECONDS="2",
            STEWARD_FAULTS=",".join(f"fault_churn:{p}" for p in FAULTS),
        )
        log, mlflow_log = root / "standalone.log", root / "mlflow.log"
        airflow = servers.start([str(Path(sys.executable).with_name("airflow")), "standalone"], env, log)
        mlflow = servers.start([str(Path(sys.executable).with_name("mlflow")), "ui", "--backend-store-uri",
                                paths.tracking_uri, "--host", "127.0.0.1", "--port", str(mlflow_port),
                                "--workers", "1"],  # one browser: one worker, not four
                               {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, mlflow_log)
        url = f"http://127.0.0.1:{port}"
        s = {"url": url, "api": f"{url}/api/v2", "mlflow": f"http://127.0.0.1:{mlflow_port}", "home": home,
             "engagements": engagements, "paths": paths, "proc": airflow, "log": log}
        try:
            servers.wait_http(f"{url}/api/v2/version", 240, airflow, log)
            s["token"] = servers.token(url, "admin", PASSWORD)
            ours = {*TWINS, LATE, f"{APPROVE}__approval", f"{LAPSE}__approval"}
            _wait_for(s, lambda: ours <= {d["dag_id"] for d in _rest(s, "/dags?limit=100")["dags"]},
                      "the DAGs to be parsed")
            for eng_id in sorted(ours):
                servers.rest_patch(f"{s['api']}/dags/{eng_id}", {"is_paused": False}, token=s["token"])
            servers.wait_http(f"http://127.0.0.1:{mlflow_port}/health", 120, mlflow, mlflow_log)
            yield s
        finally:
            servers.stop(airflow)
            servers.stop(mlflow)


def _rest(s: dict, path: str, body: dict | None = None) -> dict:
    return servers.rest(s["api"] + path, body, token=s["token"])


def _wait_for(s: dict, condition, what: str, timeout: float = 420) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert s["proc"].poll() is None, s["log"].read_text()[-4000:]
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}; log tail:\n{s['log'].read_text()[-6000:]}")


def _night_entries(paths, eng_id):
    return [e for e in ledger.read_entries(paths, eng_id) if e["type"] == "run" and e["logical_date"] == NIGHT.isoformat()]


def test_sigkill_mid_retrain_and_mid_export_then_retry_ends_like_an_undisturbed_run(stack):
    home, paths = stack["home"], stack["paths"]
    for eng_id in TWINS:
        servers.trigger_run(stack["api"], eng_id, f"faults_{NIGHT}", f"{NIGHT.isoformat()}T00:00:00Z",
                            token=stack["token"])

    def state(eng_id: str) -> str:
        return _rest(stack, f"/dags/{eng_id}/dagRuns/faults_{NIGHT}")["state"]

    _wait_for(stack, lambda: {state("fault_churn"), state("calm_churn")} <= {"success", "failed"}, "both runs to finish")
    states = {e: state(e) for e in TWINS}
    assert states == {"fault_churn": "success", "calm_churn": "success"}, stack["log"].read_text()[-4000:]

    # every fault fired (the worker really died three times) ...
    assert sorted(p.name for p in (home / "faults").iterdir()) == sorted(f"fault_churn.{p}" for p in FAULTS)
    # ... and the night ended like the undisturbed twin's
    c = registry.client(paths)
    versions = {e: sorted(int(v.version) for v in c.search_model_versions(f"name='steward.{e}'")) for e in TWINS}
    assert versions["fault_churn"] == versions["calm_churn"]  # no duplicate version from the killed retrain
    [faulty], [calm] = _night_entries(paths, "fault_churn"), _night_entries(paths, "calm_churn")
    f_rec, c_rec = faulty["record"], calm["record"]
    assert f_rec["outcome"] == c_rec["outcome"] == "retrain"
    same = {"decision": ("action", "reasons", "triggers"),
            "retraining": ("training", "holdout_rows", "metric", "scores"),
            "promotion": ("action", "reasons", "promoted", "champion_before", "champion_after")}
    for section, keys in same.items():
        assert {k: f_rec[section][k] for k in keys} == {k: c_rec[section][k] for k in keys}, section
    assert f_rec["retraining"]["challenger"]["version"] == c_rec["retraining"]["challenger"]["version"]
    # the retry found the version the killed attempt had registered, by its training key
    assert (f_rec["retraining"]["reused_existing_version"], c_rec["retraining"]["reused_existing_version"]) == \
        (True, False)
    assert f_rec["run"]["try_number"] == 2  # the export that reached the ledger was the retry
    audit_path = paths.run_dir("fault_churn", NIGHT.isoformat()) / "audit.json"
    assert json.loads(audit_path.read_text()) == f_rec
    assert ledger.verify(paths, "fault_churn").ok and ledger.verify(paths, "calm_churn").ok
    final_events = [e for e in lineage.read_events(paths, "fault_churn")
                    if e["job"]["name"] == "fault_churn" and e["eventType"] == "COMPLETE"
                    and e["run"]["runId"] == lineage.run_uuid("fault_churn", f_rec["run"]["run_id"])]
    assert len(final_events) == 1

    # clearing the export task re-runs it: same bytes, no new ledger entry
    before = (batches.sha256_file(audit_path), len(ledger.read_entries(paths, "fault_churn")))
    status_file = home / "status" / "fault_churn.json"
    stamp = json.loads(status_file.read_text())["row"]["updated_at"]
    cleared = _rest(stack, "/dags/fault_churn/clearTaskInstances", {
        "dag_run_id": f_rec["run"]["run_id"], "task_ids": ["export_audit"], "dry_run": False, "only_failed": False})
    assert [t["task_id"] for t in cleared["task_instances"]] == ["export_audit"], cleared
    _wait_for(stack, lambda: json.loads(status_file.read_text())["row"]["updated_at"] != stamp, "the cleared export")
    assert (batches.sha256_file(audit_path), len(ledger.read_entries(paths, "fault_churn"))) == before
    eng = load_engagement(stack["engagements"] / "fault_churn.yaml")
    assert registry.get_alias(registry.client(paths), eng, registry.CHAMPION).version == 1


def test_missed_freshness_deadline_fires_the_alert(stack):
    paths = stack["paths"]
    incident_log = notify.incident_log_path(paths, LATE)
    _wait_for(stack, incident_log.exists, "the freshness alert", timeout=300)
    # one alert per missed run (the scheduler may have created more than one run of the DAG by then)
    lines = [json.loads(x) for x in incident_log.read_text().splitlines()]
    assert lines and all(f"{LATE}: freshness" in x["subject"] for x in lines)
    assert "not landed 0.1 min after the scheduled time" in lines[0]["body"]
    found = incidents.list_for(paths, LATE)
    assert found and {(i["condition"], i["state"]) for i in found} == {("freshness", "open")}
    evaluations = store.select_rows(paths, store.sla_evaluations, {"engagement": LATE, "sla": "freshness"})
    assert {e["logical_date"] for e in evaluations if e["met"] is False} == {i["opened_on"] for i in found}
    entries = [e for e in ledger.read_entries(paths, LATE) if e["type"] == "sla"]
    assert {e["detail"]["incident"] for e in entries} == {i["id"] for i in found}
    assert all(e["detail"]["source"] == "airflow deadline alert" for e in entries)


def _ask(s: dict, eng_id: str, run_id: str) -> str:
    """Start the approval DAG (as the night's asset event would) and wait until it waits for a person."""
    dag_id = f"{eng_id}__approval"
    servers.trigger_run(s["api"], dag_id, run_id, dt.datetime.now(dt.UTC).isoformat(), token=s["token"])
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve_promotion"
    _wait_for(s, lambda: _rest(s, path)["state"] == "awaiting_input", f"{dag_id} to ask")
    # A person answers minutes later; a test could answer before the scheduler has handled the executor's event of
    # the execution that parked the task, and Airflow 3.3 then fails the resumed task ("finished with state
    # success, but the task instance's state attribute is queued"; seen once under CI load). So the answer waits
    # for the scheduler's own line saying it handled that event (0.2 to 5 s after the task parks; a fixed 10 s
    # sleep before).
    handled = f"TaskInstance Finished: dag_id={dag_id}, task_id=approve_promotion, run_id={run_id},"
    _wait_for(s, lambda: any(handled in line and "state=awaiting_input" in line
                             for line in s["log"].read_text(errors="replace").splitlines()),
              f"the scheduler to handle {dag_id}'s parked execution")
    return f"{s['api']}{path}/-1/hitlDetails"


def _answer(s: dict, hitl: str, user: str, option: str, comment: str) -> dict:
    return servers.rest_patch(hitl, {"chosen_options": [option], "params_input": {"comment": comment}},
                              token=servers.token(s["url"], user, PASSWORD))


def _run_state(s: dict, eng_id: str, run_id: str) -> str:
    return _rest(s, f"/dags/{eng_id}__approval/dagRuns/{run_id}")["state"]


def _approvals(paths, eng_id):
    return [e["detail"] for e in ledger.read_entries(paths, eng_id) if e["type"] == "approval"]


def test_approval_through_the_rest_api_only_the_named_approver_answers(stack):
    """Issue 35, on the real scheduler: the request waits in Required Actions with the evidence; a user who is
    not named is refused; Approve promotes and the ledger names who and why; Reject, and no answer in time,
    leave the champion untouched."""
    paths = stack["paths"]
    lapse = _ask(stack, LAPSE, "ask_lapse")  # its 36 seconds run while the others are answered
    hitl = _ask(stack, APPROVE, "ask_1")
    detail = servers.rest(hitl, token=stack["token"])
    assert detail["subject"] == f"Promote {APPROVE} v2?" and "gain 0.04 over 900 labelled rows" in detail["body"]
    assert [u["id"] for u in detail["assigned_users"]] == ["approver"] and detail["defaults"] == ["Reject"]
    with pytest.raises(AssertionError, match=": 403 "):
        _answer(stack, hitl, "intruder", "Approve", "not mine to answer")
    _answer(stack, hitl, "approver", "Approve", "gain reviewed with the client")
    _wait_for(stack, lambda: _run_state(stack, APPROVE, "ask_1") in ("success", "failed"), "the approval to land")
    assert _run_state(stack, APPROVE, "ask_1") == "success", stack["log"].read_text()[-4000:]
    eng = load_engagement(stack["engagements"] / f"{APPROVE}.yaml")
    c = registry.client(paths)
    assert registry.get_alias(c, eng, registry.CHAMPION).version == 2
    [approved] = _approvals(paths, APPROVE)
    assert (approved["outcome"], approved["answered_by"], approved["comment"]) == \
        ("approved", "approver", "gain reviewed with the client")

    _awaiting(paths, stack["engagements"], APPROVE, versions=3)  # the next challenger: rejected
    hitl = _ask(stack, APPROVE, "ask_2")
    _answer(stack, hitl, "approver", "Reject", "not before the audit")
    _wait_for(stack, lambda: _run_state(stack, APPROVE, "ask_2") in ("success", "failed"), "the rejection to land")
    assert registry.get_alias(c, eng, registry.CHAMPION).version == 2
    assert _approvals(paths, APPROVE)[-1]["outcome"] == "rejected"

    _wait_for(stack, lambda: _run_state(stack, LAPSE, "ask_lapse") in ("success", "failed"), "the timeout", 240)
    lapsed = load_engagement(stack["engagements"] / f"{LAPSE}.yaml")
    assert registry.get_alias(c, lapsed, registry.CHAMPION).version == 1
    [timed_out] = _approvals(paths, LAPSE)
    assert timed_out["outcome"] == "timed_out" and timed_out["answered_by"] is None
    assert servers.rest(lapse, token=stack["token"])["chosen_options"] == ["Reject"]
    assert ledger.verify(paths, APPROVE).ok and ledger.verify(paths, LAPSE).ok


def _logged_in(p, s: dict, user: str):
    """Debian's Chromium, logged in to the Airflow UI as `user` through its login form."""
    chromium = p.chromium.launch(executable_path=browser.ensure_chromium(), args=browser.FLAGS[1:])
    page = chromium.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(s["url"] + "/")
    page.wait_for_selector("input[name='username']", timeout=60_000)
    page.fill("input[name='username']", user)
    page.fill("input[name='password']", PASSWORD)
    page.click("button[type='submit']")
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
    return chromium, page


@pytest.mark.browser
def test_engagements_page_requires_airflow_auth(stack):
    base = stack["url"]
    for path in ("/steward/engagements", "/steward/api/engagements", "/steward/engagements/churn_telco",
                 "/steward/reports/churn_telco/2026-03-03/drift_report.html"):
        code, _ = servers.get(base + path)
        assert code in (401, 403), (path, code)
    code, body = servers.get(base + "/steward/api/engagements", stack["token"])
    assert code == 200
    rows = {r["engagement"]: r for r in json.loads(body)}
    assert rows["churn_telco"]["last_night"] == "2026-03-03" and rows["churn_telco"]["champion_version"] == 1
    assert rows["demand_retail"]["last_run_state"] == "never run"
    code, _ = servers.get(base + "/steward/reports/churn_telco/2026-03-03/..%2F..%2F..%2Fledger", stack["token"])
    assert code == 404


@pytest.mark.browser
def test_browser_login_dags_engagements_report_and_mlflow(stack):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium, page = _logged_in(p, stack, "admin")
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


@pytest.mark.browser
def test_approval_in_the_browser_required_actions_approve_then_reject(stack):
    """Issue 35: the approver logs in, finds the request under Required Actions, reads the evidence and clicks
    Approve: the champion moves and the ledger names them; the next request is rejected by a click and the
    champion stays."""
    from playwright.sync_api import sync_playwright

    paths, engagements = stack["paths"], stack["engagements"]
    version = _awaiting(paths, engagements, APPROVE)
    _ask(stack, APPROVE, "browser_1")
    with sync_playwright() as p:
        chromium, page = _logged_in(p, stack, "approver")
        eng = load_engagement(engagements / f"{APPROVE}.yaml")
        c = registry.client(paths)
        before = registry.get_alias(c, eng, registry.CHAMPION).version
        for run_id, option, comment in (("browser_1", "Approve", "clicked after reading the evidence"),
                                        ("browser_2", "Reject", "not this one")):
            if run_id == "browser_2":
                version = _awaiting(paths, engagements, APPROVE)
                _ask(stack, APPROVE, run_id)
            page.goto(stack["url"] + "/required_actions")
            page.get_by_text(f"Promote {APPROVE} v{version}?").first.click()  # the request, listed for the approver
            page.get_by_text("Evidence: gain 0.04 over 900 labelled rows").wait_for(timeout=60_000)
            page.locator("input[name='element_comment']").fill(comment)  # the `comment` param's field
            page.screenshot(path=str(SHOTS / f"required_action_{option.lower()}.png"))
            page.get_by_role("button", name=option, exact=True).click()
            _wait_for(stack, lambda run=run_id: _run_state(stack, APPROVE, run) in ("success", "failed"),
                      f"the {option} clicked in the browser to land")
            answer = _approvals(paths, APPROVE)[-1]
            assert (answer["version"], answer["answered_by"], answer["comment"]) == (version, "approver", comment)
            if option == "Approve":
                assert answer["outcome"] == "approved"
                assert registry.get_alias(c, eng, registry.CHAMPION).version == version != before
                before = version
            else:
                assert answer["outcome"] == "rejected"
                assert registry.get_alias(c, eng, registry.CHAMPION).version == before  # untouched
        chromium.close()
