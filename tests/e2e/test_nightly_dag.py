"""End to end: the real DAG through dag.test() over simulated nights of the demo engagements."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest
import yaml

from steward import demo
from steward.config import load_engagement
from steward.governance import ledger
from steward.models import registry
from steward.operations import value
from steward.settings import StewardPaths
from steward.sources import batches
from tests.conftest import ENGAGEMENTS

NIGHTS = 12  # through the corrupt night (index 5), drift (7) and the concept shift (9-11)


@pytest.fixture(scope="module")
def signing_key() -> dict[str, str]:
    """A fresh Ed25519 key for the ledger's checkpoints (ADR 0017), as the operator would keep it: in an
    Airflow connection, here given through the environment, never in a file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return {"private": private, "public": public}


@pytest.fixture(scope="module")
def home(tmp_path_factory, signing_key):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEWARD_HOME", str(tmp_path_factory.mktemp("e2e")))
        mp.setenv("AIRFLOW_CONN_STEWARD_LEDGER_SIGNING",
                  json.dumps({"conn_type": "generic", "password": signing_key["private"]}))
        yield StewardPaths.from_env()


@pytest.fixture(scope="module")
def churn_runs(home):
    from steward.airflow.runner import run_night

    demo.generate("churn_telco", home.data_root, nights=NIGHTS)
    incoming = {d: batches.sha256_file(home.data_root / "churn_telco/incoming" / f"{d}.csv")
                for d in demo.night_dates(nights=NIGHTS)}
    results = {d: run_night("churn_telco", d) for d in demo.night_dates(nights=NIGHTS)}
    return results, incoming


def _client(home):
    return registry.client(home)


def _versions(home, eng):
    return sorted(int(v.version) for v in _client(home).search_model_versions(f"name='{eng.registered_model_name}'"))


def test_every_night_succeeds_and_writes_an_audit_record(churn_runs, home):
    results, _ = churn_runs
    assert all(r["state"].endswith("success") for r in results.values()), {d: r["state"] for d, r in results.items()}
    for day, r in results.items():
        path = home.artifacts / "churn_telco" / day.isoformat() / "audit.json"
        record = json.loads(path.read_text())
        assert record == r["audit"]
        assert record["logical_date"] == day.isoformat()
        assert len(record["config"]["sha256"]) == 64
        assert record["run"]["dag_id"] == "churn_telco"
        # the Airflow DAG version that ran, next to the config hash and the code version (issue 35)
        assert len(record["run"]["dag_version_id"]) == 36 and record["code_version"]
    entries = [e for e in ledger.read_entries(home, "churn_telco") if e["type"] == "run"]
    assert entries and all(e["record"]["run"]["dag_version_id"] for e in entries)


def test_first_night_bootstraps_a_champion(churn_runs):
    first = churn_runs[0][dt.date(2026, 3, 1)]["audit"]
    assert first["models"]["bootstrapped"] is True
    assert first["models"]["champion_after"] == 1
    assert first["outcome"] == "keep"


def test_corrupt_night_is_quarantined_and_raw_input_kept(churn_runs, home):
    results, incoming = churn_runs
    day = dt.date(2026, 3, 6)
    record = results[day]["audit"]
    assert record["outcome"] == "quarantine"
    assert record["drift"] is None and record["retraining"] is None  # downstream skipped, not failed
    assert record["task_states"]["detect_drift"] == "skipped"
    assert record["task_states"]["quarantine_batch"] == "success"
    qdir = home.quarantine / "churn_telco" / day.isoformat()
    reasons = json.loads((qdir / "reasons.json").read_text())
    failed = {(f["expectation"], f["column"]) for f in reasons["failed_expectations"]}
    assert ("expect_column_values_to_be_between", "tenure_months") in failed
    assert batches.sha256_file(qdir / f"{day}.csv") == incoming[day] == reasons["batch_sha256"]
    assert not (home.landed / "churn_telco" / day.isoformat()).exists()
    assert (home.artifacts / "churn_telco" / day.isoformat() / "quality_report.html").exists()
    assert record["models"]["champion_before"] == record["models"]["champion_after"]


def test_incoming_files_are_never_modified(churn_runs, home):
    _, incoming = churn_runs
    for day, sha in incoming.items():
        assert batches.sha256_file(home.data_root / "churn_telco/incoming" / f"{day}.csv") == sha


def test_drift_is_flagged_and_reports_kept(churn_runs, home):
    record = churn_runs[0][dt.date(2026, 3, 8)]["audit"]
    assert record["drift"]["dataset_drift"] is True and record["drift"]["persistent"] is False  # first night
    assert "drift" not in record["decision"]["triggers"]
    held = churn_runs[0][dt.date(2026, 3, 9)]["audit"]  # the second night in a row: it persists, it retrains
    assert held["drift"]["persistent"] is True and "drift" in held["decision"]["triggers"]
    assert (home.artifacts / "churn_telco" / "2026-03-08" / "drift_report.html").exists()
    stable = churn_runs[0][dt.date(2026, 3, 2)]["audit"]
    assert stable["drift"]["dataset_drift"] is False and stable["decision"]["action"] == "keep"


def test_concept_shift_retrains_and_promotes(churn_runs, home):
    eng = load_engagement(ENGAGEMENTS / "churn_telco.yaml")
    shift = churn_runs[0][dt.date(2026, 3, 10)]["audit"]
    assert shift["performance"]["metrics"]["roc_auc"] < eng.performance.threshold
    assert "performance" in shift["decision"]["triggers"]
    assert shift["outcome"] == "promote"
    assert shift["models"]["champion_after"] > shift["models"]["champion_before"]
    assert shift["retraining"]["scores"]["challenger"] > shift["retraining"]["scores"]["champion"]
    c = _client(home)
    champion = registry.get_alias(c, eng, registry.CHAMPION)
    last = churn_runs[0][dt.date(2026, 3, 12)]["audit"]
    assert champion.version == last["models"]["champion_after"] > 1
    assert registry.get_alias(c, eng, registry.PREVIOUS_CHAMPION) is not None
    assert 1 in _versions(home, eng)  # the bootstrap champion stays registered for rollback
    run = c.get_run(shift["retraining"]["challenger"]["run_id"])
    assert run.data.tags["steward.engagement"] == "churn_telco"
    assert run.data.tags["steward.dag_id"] == "churn_telco"
    assert run.data.tags["steward.airflow_run_id"] == shift["run"]["run_id"]


def test_challenger_not_better_is_not_promoted(churn_runs):
    refused = [r["audit"] for r in churn_runs[0].values() if r["audit"]["outcome"] == "retrain"]
    assert refused, "the demo must show a refused challenger"
    for rec in refused:
        assert rec["promotion"]["action"] in {"refuse", "keep"}
        assert rec["models"]["champion_before"] == rec["models"]["champion_after"]


def test_rerun_registers_nothing_new_and_never_moves_champion_back(churn_runs, home):
    from steward.airflow.runner import run_night

    eng = load_engagement(ENGAGEMENTS / "churn_telco.yaml")
    c = _client(home)
    versions = _versions(home, eng)
    champion = registry.get_alias(c, eng, registry.CHAMPION).version
    promoting_night = dt.date(2026, 3, 10)
    first = churn_runs[0][promoting_night]["audit"]
    again = run_night("churn_telco", promoting_night)  # the night that promoted today's champion
    assert again["state"].endswith("success")
    for key in ("outcome", "decision", "models"):
        assert _stable(again["audit"][key]) == _stable(first[key]), key
    assert again["audit"]["retraining"]["scores"] == first["retraining"]["scores"]
    assert again["audit"]["retraining"]["reused_existing_version"] is True
    refused_night = dt.date(2026, 3, 9)  # its challenger was refused; today's champion is newer
    older = run_night("churn_telco", refused_night)
    assert older["state"].endswith("success")
    for key in ("outcome", "decision", "models", "drift", "performance"):
        assert _stable(older["audit"][key]) == _stable(churn_runs[0][refused_night]["audit"][key]), key
    assert _versions(home, eng) == versions
    assert registry.get_alias(c, eng, registry.CHAMPION).version == champion


def _stable(section):
    """Drop wall-clock timings and attempt ids, which are recorded separately from the facts."""
    if isinstance(section, dict):
        return {k: _stable(v) for k, v in section.items() if k not in {"timing", "mlflow_run_ids"}}
    return section


def test_missing_batch_ends_skipped_with_audit_record(churn_runs, home):
    from steward.airflow.runner import run_night

    result = run_night("churn_telco", dt.date(2026, 4, 30))
    assert result["state"].endswith("success")
    assert result["audit"]["outcome"] == "missing"
    assert result["audit"]["task_states"]["land_batch"] == "skipped"


def test_adoption_is_read_from_the_feedback_files_on_the_nights_after_serving(churn_runs, home):
    """The demo's CRM feedback: every served date except the last is known (its feedback is read the night
    after), the quarantined night served nothing, the counts match the files, the audit record carries them."""
    import pandas as pd

    results, _ = churn_runs
    eng = load_engagement(ENGAGEMENTS / "churn_telco.yaml")
    nights = demo.night_dates(nights=NIGHTS)
    known = {r["prediction_date"]: r for r in value.adoption_history(home, eng.id)}
    served = [d.isoformat() for d in nights if (home.home / "predictions" / eng.id / f"{d}.parquet").is_file()]
    assert "2026-03-06" not in served and len(served) == NIGHTS - 1  # the corrupt night was quarantined
    assert sorted(known) == served[:-1]
    for pdate, row in known.items():
        feedback = pd.read_csv(home.data_root / "churn_telco/feedback" / f"{pdate}.csv")
        assert row["acted_rows"] == int((feedback["acted"] == "yes").sum()) and row["scored_rows"] == len(feedback)
        assert row["recorded_on"] == (dt.date.fromisoformat(pdate) + dt.timedelta(days=1)).isoformat()
    second = results[nights[1]]["audit"]["labels"]["adoption"]["recorded"]
    assert [r["prediction_date"] for r in second] == [nights[0].isoformat()]
    shares = [known[d]["acted_rows"] / known[d]["scored_rows"] for d in sorted(known)]
    assert shares[0] < 0.65 < shares[-1]  # the demo's team acts on more scores as the weeks go by
    total = value.period(eng, home, nights[0], nights[-1])
    assert total["adoption"] == round(sum(r["acted_rows"] for r in known.values()) /
                                      sum(r["scored_rows"] for r in known.values()), 4)


def test_regression_engagement_runs(home):
    from steward.airflow.runner import run_night

    demo.generate("demand_retail", home.data_root, nights=2)
    first = run_night("demand_retail", dt.date(2026, 3, 1))
    second = run_night("demand_retail", dt.date(2026, 3, 2))
    assert first["state"].endswith("success") and second["state"].endswith("success")
    assert second["audit"]["performance"]["metrics"]["rmse"] < 15
    assert second["audit"]["models"]["champion_after"] == 1
    # labels inside the batch: each night is priced that night (1.2 EUR per unit of absolute error, ADR 0022)
    from steward.config import load_engagement
    from steward.operations import value

    eng = load_engagement(ENGAGEMENTS / "demand_retail.yaml")
    priced = value.history(home, "demand_retail")
    assert [r["prediction_date"] for r in priced] == ["2026-03-01", "2026-03-02"]
    for r in priced:
        assert r["cost_of_errors"] == round(r["absolute_error"] * 1.2, 2) > 0 and r["value_delivered"] == 0
        assert r["labelled_rows"] == r["scored_rows"] and r["minutes_saved"] == r["scored_rows"] * 2
    mean_abs_error = priced[1]["absolute_error"] / priced[1]["labelled_rows"]
    assert mean_abs_error <= second["audit"]["performance"]["metrics"]["rmse"]  # MAE never exceeds RMSE
    assert value.period(eng, home, dt.date(2026, 3, 1), dt.date(2026, 3, 2))["pending_rows"] == 0


def test_ledger_chains_every_night_and_detects_a_changed_report(churn_runs, home):
    from steward.governance import ledger

    result = ledger.verify(home, "churn_telco")
    assert result.ok, result.problems
    entries = ledger.read_entries(home, "churn_telco")
    runs = [e for e in entries if e["type"] == "run"]
    assert {e["logical_date"] for e in runs} >= {d.isoformat() for d in churn_runs[0]}
    assert entries[0]["type"] == "config" and "churn_telco" in entries[0]["detail"]["text"]
    quarantined = next(e for e in runs if e["logical_date"] == "2026-03-06")
    assert any(k.endswith("reasons.json") for k in quarantined["artifacts"])
    trained = next(e for e in runs if e["record"]["outcome"] == "promote")
    assert any(k.endswith("model.skops") for k in trained["artifacts"])
    report = home.artifacts / "churn_telco" / "2026-03-02" / "drift_report.html"
    original = report.read_bytes()
    report.write_bytes(original.replace(b"<html", b"<HTML", 1))
    try:
        broken = ledger.verify(home, "churn_telco")
        assert not broken.ok and "drift_report.html changed" in broken.problems[0]
    finally:
        report.write_bytes(original)
    assert ledger.verify(home, "churn_telco").ok


def test_lineage_events_validate_against_the_official_spec(churn_runs, home):
    from steward.governance import lineage
    from tests.support.openlineage_schema import EventValidator

    events = lineage.read_events(home, "churn_telco")
    assert events
    validator = EventValidator()
    seen: set[str] = set()
    for event in events:
        seen.update(validator.validate(event))
    assert {"schema", "dataQualityAssertions", "dataQualityMetrics", "nominalTime", "parent", "ownership",
            "documentation", "jobType", "version", "steward_drift", "steward_decision", "steward_modelVersion"} <= seen
    kinds = {(e["job"]["name"], e["eventType"]) for e in events}
    assert ("churn_telco.validate_batch", "START") in kinds and ("churn_telco.validate_batch", "COMPLETE") in kinds
    assert ("churn_telco", "COMPLETE") in kinds
    quarantine_night = [e for e in events if e["job"]["name"] == "churn_telco.validate_batch"
                        and e["eventType"] == "COMPLETE" and e["run"]["facets"]["nominalTime"][
                            "nominalStartTime"].startswith("2026-03-06")][0]
    assertions = quarantine_night["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert any(not a["success"] and a.get("column") == "tenure_months" for a in assertions)
    assert quarantine_night["inputs"][0]["facets"]["version"]["datasetVersion"] == \
        churn_runs[0][dt.date(2026, 3, 6)]["audit"]["data"]["batch"]["sha256"]


@pytest.fixture(scope="module")
def bundle_dir(churn_runs, home, tmp_path_factory):
    from steward.governance import bundle

    out = tmp_path_factory.mktemp("bundles") / "churn_telco-march"
    summary = bundle.export(home, "churn_telco", dt.date(2026, 3, 1), dt.date(2026, 3, 12), out)
    assert summary["ledger_ok"] and summary["runs"] >= NIGHTS
    return out


def test_bundle_is_self_contained_and_verifiable(bundle_dir, home):
    import subprocess

    assert (bundle_dir.parent / "churn_telco-march.zip").stat().st_size > 0
    assert (bundle_dir / "ledger.jsonl").read_bytes() == (home.home / "ledger" / "churn_telco.jsonl").read_bytes()
    for name in ("index.html", "VERIFY.md", "lineage.jsonl", "artifacts.sha256", "verify_chain.sh"):
        assert (bundle_dir / name).exists(), name
    assert any((bundle_dir / "model_cards").glob("v*/model_card.html"))
    assert any((bundle_dir / "config_history").glob("*.yaml"))
    ok = subprocess.run(["sh", "verify_chain.sh"], cwd=bundle_dir, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "chain ok" in ok.stdout and "artifacts ok" in ok.stdout
    # one flipped byte in the bundled ledger is caught by the shell check alone
    ledger_file = bundle_dir / "ledger.jsonl"
    original = ledger_file.read_bytes()
    ledger_file.write_bytes(original.replace(b'"outcome":"quarantine"', b'"outcome":"quarantinE"', 1))
    try:
        broken = subprocess.run(["sh", "verify_chain.sh"], cwd=bundle_dir, capture_output=True, text=True)
        assert broken.returncode == 1 and "chain broken" in broken.stdout
    finally:
        ledger_file.write_bytes(original)
    events = [json.loads(line) for line in (bundle_dir / "lineage.jsonl").read_text().splitlines()]
    assert events and all(e["run"]["facets"]["nominalTime"]["nominalStartTime"][:10] <= "2026-03-12" for e in events)


def test_every_night_signs_the_ledger_head_and_the_bundle_checks_with_ssh_keygen(churn_runs, home, bundle_dir,
                                                                              signing_key, tmp_path):
    import subprocess

    from typer.testing import CliRunner

    from steward.cli import app
    from steward.governance import ledger, signing

    points = ledger.read_checkpoints(home, "churn_telco")
    runs = [e for e in ledger.read_entries(home, "churn_telco") if e["type"] == "run"]
    assert {p["seq"] for p in points} >= {e["seq"] for e in runs}  # every night's entry was a signed head
    assert all("signature" in p and p["key"] == signing.fingerprint(signing_key["public"]) for p in points)
    allowed = tmp_path / "allowed_signers"  # the auditor's own copy of the public key
    allowed.write_text(signing.allowed_signers_line(signing_key["public"]) + "\n")
    result = ledger.verify(home, "churn_telco", trusted_keys=[signing_key["public"]], check_artifacts=False)
    assert result.ok and result.signed_through >= runs[-1]["seq"] and not result.unsigned_runs
    ok = subprocess.run(["sh", "verify_signatures.sh"], cwd=bundle_dir, capture_output=True, text=True)
    assert ok.returncode == 0 and "signatures ok" in ok.stdout, ok.stdout + ok.stderr
    assert (bundle_dir / "allowed_signers").read_text() == allowed.read_text()
    assert "unsigned</span>" not in (bundle_dir / "index.html").read_text()

    # Someone with write access to the state volume, but not the key, rewrites the whole chain: the second
    # run entry gets another outcome, every later line is re-hashed and the head file recomputed.
    forged = tmp_path / "forged"
    shutil.copytree(home.home / "ledger", forged / "ledger")
    target = runs[1]["seq"]
    lines, prev, out = (forged / "ledger" / "churn_telco.jsonl").read_bytes().splitlines(), ledger.GENESIS, []
    for number, line in enumerate(lines, start=1):
        entry = json.loads(line)
        entry["prev"] = prev
        if number == target:
            entry["record"]["outcome"] = "promote"
        line = ledger.canonical(entry)
        prev = ledger.sha256_bytes(line)
        out.append(line + b"\n")
    (forged / "ledger" / "churn_telco.jsonl").write_bytes(b"".join(out))
    (forged / "ledger" / "churn_telco.head").write_text(json.dumps({"seq": len(out), "hash": prev}) + "\n")
    forged_paths = StewardPaths(forged)
    assert ledger.verify(forged_paths, "churn_telco", check_artifacts=False).problems[0].startswith(
        f"churn_telco.jsonl line {target}: the checkpoint signed for this entry says hash")
    runner = CliRunner()
    cli = runner.invoke(app, ["audit", "verify", "churn_telco", "--chain-only", "--allowed-signers", str(allowed)],
                        env={"STEWARD_HOME": str(forged)})
    assert cli.exit_code == 1 and f"line {target}: the checkpoint signed" in cli.output, cli.output
    # the second anchor: the heads the history database kept disagree, with both values named
    from steward import store

    real_db = f"sqlite:///{home.home / 'steward.db'}"
    cli = runner.invoke(app, ["audit", "verify", "churn_telco", "--chain-only"],
                        env={"STEWARD_HOME": str(forged), "STEWARD_DB_URL": real_db})
    anchored = next(h for h in store.heads_of(home, "churn_telco") if h["seq"] >= target)
    assert cli.exit_code == 1 and f"line {anchored['seq']}: the history database's anchor says hash " \
        f"{anchored['hash']}, the ledger has" in " ".join(cli.output.split()), cli.output
    # ... and rewriting the checkpoints too, with a key of their own, fails against the auditor's copy
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    (forged / "ledger" / "churn_telco.checkpoints.jsonl").unlink()
    ledger.checkpoint(forged_paths, "churn_telco", Ed25519PrivateKey.generate())
    own = ledger.verify(forged_paths, "churn_telco", trusted_keys=[signing_key["public"]], check_artifacts=False)
    assert not own.ok and "does not verify with the trusted key" in own.problems[0]
    # the bundle's standard-tool check catches the rewrite of the bundled ledger
    bundled = bundle_dir / "ledger.jsonl"
    original = bundled.read_bytes()
    bundled.write_bytes((forged / "ledger" / "churn_telco.jsonl").read_bytes())
    try:
        broken = subprocess.run(["sh", "verify_signatures.sh"], cwd=bundle_dir, capture_output=True, text=True)
        assert broken.returncode == 1 and "does not verify" in broken.stdout, broken.stdout + broken.stderr
    finally:
        bundled.write_bytes(original)


def test_the_private_key_is_in_no_file_no_bundle_and_no_task_log(churn_runs, home, bundle_dir, signing_key, capfd):
    from steward.airflow.runner import run_night
    from tests.support.logs import caught

    body = "".join(signing_key["private"].strip().splitlines()[1:-1])
    needles = [body[i:i + 40] for i in range(0, len(body) - 40, 40)]  # any 40-character run of it
    # one more signed night with its task logs on the captured streams (under pytest they never reach the
    # night's log file): the export says it signed, and nothing of the key is in what the tasks printed
    with caught("steward.airflow") as lines:
        assert run_night("churn_telco", dt.date(2026, 5, 1), quiet=False)["state"].endswith("success")
    logs = "".join(capfd.readouterr()) + "\n".join(lines.lines)
    assert "head signed by SHA256:" in logs and not any(n in logs for n in needles)
    searched = 0
    for root in (home.home, bundle_dir):
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                searched += 1
                assert not any(n.encode() in data for n in needles), path
    assert searched > 100


def test_bundle_index_in_headless_chromium(bundle_dir):
    from steward.settings import PROJECT_ROOT
    from tests.support import browser

    url = (bundle_dir / "index.html").as_uri()
    dom = browser.dump_dom(url)
    assert dom.count("<tr class=") >= NIGHTS
    assert "quarantine" in dom and "expect_column_values_to_be_between(tenure_months)" in dom
    assert "Ledger verified at export" in dom
    shot = browser.screenshot(url, PROJECT_ROOT / "test-artifacts" / "bundle_index.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")


def test_export_bad_input_writes_nothing(churn_runs, home, tmp_path):
    from typer.testing import CliRunner

    from steward.cli import app

    runner = CliRunner()
    out = tmp_path / "bundle"
    unknown = runner.invoke(app, ["audit", "export", "nope", "--since", "2026-03-01", "--until", "2026-03-02",
                                  "--out", str(out)])
    assert unknown.exit_code == 2 and "unknown engagement" in unknown.stderr
    empty = runner.invoke(app, ["audit", "export", "churn_telco", "--since", "2025-01-01", "--until",
                                "2025-01-31", "--out", str(out)])
    assert empty.exit_code == 2 and "no runs of churn_telco" in empty.stderr
    backwards = runner.invoke(app, ["audit", "export", "churn_telco", "--since", "2026-03-05", "--until",
                                    "2026-03-01", "--out", str(out)])
    assert backwards.exit_code == 2
    assert not out.exists() and list(tmp_path.iterdir()) == []
    verify = runner.invoke(app, ["audit", "verify", "churn_telco"])
    assert verify.exit_code == 0 and "verified churn_telco" in verify.stdout

    # an export signs the head too: an entry appended since the last night is covered in the bundle
    import subprocess

    from steward.governance import ledger

    late = ledger.append(home, "churn_telco", "report", detail={"note": "appended after the last night"})
    good = runner.invoke(app, ["audit", "export", "churn_telco", "--since", "2026-03-01", "--until", "2026-03-12",
                               "--out", str(out)])
    assert good.exit_code == 0, good.output
    assert ledger.read_checkpoints(home, "churn_telco")[-1]["seq"] == late["seq"]
    assert (out / "signatures" / f"{late['seq']}.sig").is_file()
    checked = subprocess.run(["sh", "verify_signatures.sh"], cwd=out, capture_output=True, text=True)
    assert checked.returncode == 0 and f"entries 1..{late['seq']} of {late['seq']} are signed" in checked.stdout


def test_residency_conflict_refuses_the_run_and_is_recorded(churn_runs, home, monkeypatch):
    from steward.airflow.runner import run_night
    from steward.governance import ledger

    monkeypatch.setenv("STEWARD_STORAGE_REGION", "us-east-1")
    day = dt.date(2026, 3, 3)
    result = run_night("churn_telco", day)
    assert not result["state"].endswith("success")
    assert result["audit"]["outcome"] == "failed"
    assert result["audit"]["task_states"]["land_batch"] == "failed"
    assert ledger.read_entries(home, "churn_telco")[-1]["record"]["outcome"] == "failed"
    monkeypatch.setenv("STEWARD_STORAGE_REGION", "eu-west-1")
    assert run_night("churn_telco", day)["audit"]["outcome"] == churn_runs[0][day]["audit"]["outcome"]


def test_unparseable_batch_is_quarantined_byte_for_byte(churn_runs, home):
    from steward.airflow.runner import run_night

    day = dt.date(2026, 3, 25)
    raw = "customer_id,tenure\n\xe9t\xe9,1\n".encode("latin-1")  # latin-1, not UTF-8
    src = home.data_root / "churn_telco" / "incoming" / f"{day}.csv"
    src.write_bytes(raw)
    result = run_night("churn_telco", day)
    assert result["state"].endswith("success")
    record = result["audit"]
    assert record["outcome"] == "quarantine"
    assert record["data"]["read_error"]
    reasons = json.loads((home.quarantine / "churn_telco" / day.isoformat() / "reasons.json").read_text())
    assert reasons["failed_expectations"][0]["expectation"] == "batch_is_readable"
    assert (home.quarantine / "churn_telco" / day.isoformat() / f"{day}.csv").read_bytes() == raw == src.read_bytes()


def test_cli_run_exit_codes(churn_runs, home):
    import os
    import subprocess
    import sys
    from pathlib import Path

    steward = Path(sys.executable).with_name("steward")
    env = {**os.environ, "STEWARD_HOME": str(home.home)}
    ok = subprocess.run([str(steward), "run", "churn_telco", "--date", "2026-04-02"], env=env,
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "outcome missing" in ok.stdout
    bad = subprocess.run([str(steward), "run", "churn_telco", "--date", "tomorrow"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2


def test_a_night_in_process_writes_only_its_own_dags_to_the_metadata_db(tmp_path, monkeypatch):
    """`dag.test()` parses the whole DAG folder on every call and writes each DAG it finds; `run_night` sets the
    parsing context, so a night writes its engagement's DAG and its approval DAG, not every engagement's (8.6 % of a
    night's samples with five DAGs in the folder)."""
    from airflow.models.dag import DagModel

    from steward.airflow.dag_builder import approval_dag_id
    from steward.airflow.runner import run_night

    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    folder = tmp_path / "engagements"
    folder.mkdir()
    for eng_id, approval in (("probe_asks", True), ("probe_other", False)):
        promotion = {**raw["promotion"], **({"approval": {"required": True, "approvers": ["risk.officer"]}}
                                            if approval else {})}
        (folder / f"{eng_id}.yaml").write_text(yaml.safe_dump({**raw, "id": eng_id, "promotion": promotion}))
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(folder))
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    demo.generate("churn_telco", StewardPaths.from_env().data_root, nights=1)
    assert run_night("probe_asks", dt.date(2026, 3, 1))["state"].endswith("success")
    ids = ("probe_asks", approval_dag_id("probe_asks"), "probe_other")
    written = {d: DagModel.get_current(d) is not None for d in ids}
    assert written == {"probe_asks": True, approval_dag_id("probe_asks"): True, "probe_other": False}
