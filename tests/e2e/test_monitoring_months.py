"""Monitoring that stays right for months, on the real DAG (ADR 0012).

- a persistent shift retrains once, not every night, and the promotion switches the drift reference to the
  new champion's training data (drift falls back the next nights); a rollback switches it back;
- a 20-row night is judged on a window of the latest nights; a night too small even with its window is
  "not enough data yet", not an alarm; a one-night blip neither alarms nor retrains.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from steward import demo
from steward.config import load_engagement
from steward.governance import lineage
from steward.models import rollback
from steward.operations import incidents, status, summary
from steward.settings import StewardPaths
from tests.conftest import ENGAGEMENTS

START = dt.date(2026, 3, 1)


def _setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shadow_nights: int = 0) -> StewardPaths:
    """churn_telco as shipped, except that a 20-row night is a valid batch (the row-count floor is lowered),
    and optionally a shadow period before a promotion."""
    engagements = tmp_path / "engagements"
    engagements.mkdir()
    text = (ENGAGEMENTS / "churn_telco.yaml").read_text()
    assert "row_count: {min: 500, max: 5000}" in text and "  min_improvement: 0.01\n" in text
    text = text.replace("row_count: {min: 500,", "row_count: {min: 10,")
    if shadow_nights:
        text = text.replace("  min_improvement: 0.01\n", f"  min_improvement: 0.01\n  shadow_nights: {shadow_nights}\n")
    (engagements / "churn_telco.yaml").write_text(text)
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(engagements))
    paths = StewardPaths.from_env()
    demo.generate("churn_telco", paths.data_root, nights=0)  # the reference file only
    return paths


def _write_night(paths: StewardPaths, night: int, rows: int, drift: float, shifted: bool) -> None:
    frame = demo._churn_frame(np.random.default_rng([5, night]), rows, 2_000_000 + night * 10_000, drift, shifted)
    target = paths.data_root / "churn_telco" / "incoming" / f"{START + dt.timedelta(days=night)}.csv"
    frame.to_csv(target, index=False)


def _run(nights: range) -> dict[int, dict]:
    from steward.airflow.runner import run_night

    out = {}
    for night in nights:
        result = run_night("churn_telco", START + dt.timedelta(days=night))
        assert result["state"].endswith("success"), (night, result["state"])
        out[night] = result["audit"]
    return out


def test_a_persistent_shift_retrains_once_not_every_night(tmp_path, monkeypatch):
    paths = _setup(tmp_path, monkeypatch)
    for night in range(6):  # from night 2 on the customers change (covariate shift) and stay changed
        _write_night(paths, night, 1500, 1.0 if night >= 2 else 0.0, shifted=False)
    records = _run(range(6))

    assert records[2]["drift"]["dataset_drift"] and not records[2]["drift"]["persistent"]  # one night: not yet
    candidates = {n: r["retraining"]["challenger"]["version"] for n, r in records.items() if r.get("retraining")}
    assert candidates == {3: 2}, candidates  # drift held on nights 2 and 3: one candidate, not four
    # judged out of time (ADR 0013): trained on night 1, the gate's holdout is nights 2 and 3, each scored
    holdout = records[3]["retraining"]["holdout"]
    assert holdout["method"] == "newest_nights" and holdout["batches"] == ["2026-03-03", "2026-03-04"]
    assert set(holdout["scores_by_batch"]) == {"2026-03-03", "2026-03-04"}
    training = records[3]["retraining"]["training"]  # expanding (ADR 0024): the champion's 4000 rows + night 1, 2
    assert training["mode"] == "expanding" and training["champion_rows"] == 4000
    assert training["nights"] == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    assert training["train_rows"] == 4000 + 2 * 1500 and training["champion_source"]["kind"] == "reference file"
    gate = records[3]["retraining"]["evidence"]  # the holdout's paired test, with what its rows could detect
    assert gate["rows"] == 3000 and gate["nights"] == 2 and gate["bounds"]["mde"] > 0
    for night in (4, 5):  # the drift persists, but it was acted on: the same drift is no new information
        decision = records[night]["decision"]
        assert records[night]["drift"]["persistent"] and decision["action"] == "keep"
        assert decision["deferred"] == ["drift"] and any("drift already acted on: candidate v2" in r
                                                         for r in decision["reasons"]), decision["reasons"]
    drift_incidents = [i for i in incidents.list_for(paths, "churn_telco") if i["condition"] == "drift"]
    assert len(drift_incidents) == 1 and drift_incidents[0]["opened_on"] == "2026-03-04"  # one incident, deduplicated


def test_small_nights_use_a_window_and_a_blip_neither_alarms_nor_retrains(tmp_path, monkeypatch):
    paths = _setup(tmp_path, monkeypatch)
    plan = {0: (20, 0.0), 1: (1500, 0.0), 2: (20, 0.0), 3: (1500, 1.0), 4: (1500, 0.0), 5: (1500, 0.0)}
    for night, (rows, drift) in plan.items():
        _write_night(paths, night, rows, drift, shifted=False)
    records = _run(range(6))

    first = records[0]["drift"]  # 20 rows and nothing before it
    assert first["state"] == "not_enough_data" and "not enough data yet" in first["reason"]
    assert first["window"]["rows"] == 20 and not first["dataset_drift"]
    history = status.read(paths, "churn_telco")["history"]
    assert history[0]["drift_share"] is None and history[1]["drift_share"] == 0.0  # a gap in the plot, not a 0

    small = records[2]["drift"]  # 20 rows topped up with the night before
    assert small["state"] == "judged"
    assert small["window"]["nights"] == ["2026-03-02", "2026-03-03"] and small["window"]["rows"] == 1520
    assert small["sample"]["batch"]["rows"] == 1520

    blip = records[3]
    assert blip["drift"]["dataset_drift"] and not blip["drift"]["persistent"]
    assert blip["decision"]["action"] == "keep" and "must hold on 2" in " ".join(blip["decision"]["reasons"])
    assert all(r.get("retraining") is None for r in records.values())
    assert records[5]["models"]["champion_after"] == 1
    assert [i for i in incidents.list_for(paths, "churn_telco") if i["condition"] == "drift"] == []


def _shadow_state(paths: StewardPaths) -> tuple[int | None, int | None, dict[int, str]]:
    """The champion and shadow aliases now, and each version's shadow verdict tag."""
    from steward.models import registry

    eng = load_engagement(paths.home.parent / "engagements" / "churn_telco.yaml")
    c = registry.client(paths)
    champion, shadow = registry.get_alias(c, eng, registry.CHAMPION), registry.get_alias(c, eng, registry.SHADOW)
    verdicts = {int(mv.version): mv.tags[registry.SHADOW_VERDICT_TAG] for mv in c.search_model_versions(
        f"name='{eng.registered_model_name}'") if registry.SHADOW_VERDICT_TAG in mv.tags}
    return champion and champion.version, shadow and shadow.version, verdicts


def test_a_challenger_serves_in_shadow_until_unseen_nights_confirm_it_then_the_reference_follows_it(
        tmp_path, monkeypatch):
    """One shift that stays, three claims on the same nights (one run of them, not two): the challenger serves in
    shadow until unseen nights confirm it; the baselines are scored on every night; once promoted, the drift
    reference is the new champion's training data, and a rollback switches it back."""
    paths = _setup(tmp_path, monkeypatch, shadow_nights=2)
    for night in range(9):  # a shift that stays (covariates and concept) from night 2
        _write_night(paths, night, 1500, 1.0 if night >= 2 else 0.0, shifted=night >= 2)
    records = _run(range(8))
    assert records[0]["drift"]["reference"]["kind"] == "reference_file"

    entered = [n for n, r in records.items() if (r.get("promotion") or {}).get("action") == "shadow"]
    assert len(entered) == 1, {n: (r.get("promotion") or {}).get("action") for n, r in records.items()}
    gate_night = entered[0]
    version = records[gate_night]["retraining"]["challenger"]["version"]
    assert not records[gate_night]["promotion"]["promoted"] and records[gate_night]["models"]["champion_after"] == 1
    assert "serves in shadow" in records[gate_night]["promotion"]["reasons"][-1]
    waiting, confirming = records[gate_night + 1], records[gate_night + 2]
    for r in (waiting, confirming):  # judged, not retrained: the shadow is the answer being checked
        assert r["decision"]["action"] == "shadow" and r.get("retraining") is None
        assert r["promotion"]["decided_by"] == "steward.policy.shadow_verdict"
    assert waiting["promotion"]["action"] == "wait" and waiting["outcome"] == "keep"
    assert list(waiting["promotion"]["shadow"]["nights"]) == [(START + dt.timedelta(days=gate_night + 1)).isoformat()]
    assert confirming["promotion"]["action"] == "promote" and confirming["outcome"] == "promote"
    assert confirming["models"]["champion_after"] == version and len(confirming["promotion"]["shadow"]["nights"]) == 2
    for s in confirming["promotion"]["shadow"]["nights"].values():
        assert s["challenger"] > s["champion"]
    assert gate_night + 3 < 8 and records[gate_night + 3]["models"]["champion_before"] == version  # starts from it
    assert _shadow_state(paths) == (version, None, {version: "promoted"})
    # the counterfactual baselines (ADR 0025) scored every night on the same rows, outside the registry: after
    # the promotion the served model beats the never-retrained one on each shifted night, and in total
    from steward.models import baselines

    compared = {c["prediction_date"]: c for c in baselines.history(paths, "churn_telco")}
    assert sorted(compared) == [(START + dt.timedelta(days=n)).isoformat() for n in range(8)]
    for n in range(gate_night + 3, 8):
        c = compared[(START + dt.timedelta(days=n)).isoformat()]
        assert c["served_version"] == version and c["served_value"] > c["never_retrained_value"] + 0.2, c
    total = baselines.summarize(list(compared.values()))
    assert total["dates"] == 8 and total["added_vs_never_retrained"] > 0
    week = [(START + dt.timedelta(days=7 * (n // 7))).isoformat() for n in range(8)]  # refitted every 7 nights
    assert [records[n]["baselines"]["periodic_refit"]["refit_for"] for n in range(8)] == week
    from steward.models import registry

    c = registry.client(paths)
    registered = c.search_model_versions("name='steward.churn_telco'")  # the refits are not model versions
    assert len(registered) == 1 + sum(1 for r in records.values() if r.get("retraining"))
    assert list((paths.home / "baselines" / "churn_telco" / "periodic").glob("*.skops"))
    cells = {r["date"]: r["shadow"] for r in summary.rows(paths, "churn_telco")}  # what `steward summary` shows
    day = [(START + dt.timedelta(days=gate_night + k)).isoformat() for k in range(3)]
    pooled = waiting["promotion"]["shadow"]["pooled"]  # the gate's held-out rows and the first night after it
    assert pooled["rows"] > 1500 and pooled["bounds"]["lower"] > 0.01
    assert [cells[d] for d in day] == ["in shadow", f"shadow v{version}: {pooled['rows']} rows pooled",
                                       f"shadow v{version}: confirmed"]
    # a rerun of the confirming night decides the same and moves nothing
    from steward.airflow.runner import run_night

    again = run_night("churn_telco", START + dt.timedelta(days=gate_night + 2))["audit"]
    assert again["promotion"]["action"] == "promote" and again["promotion"]["shadow"] == confirming["promotion"]["shadow"]
    assert _shadow_state(paths) == (version, None, {version: "promoted"})

    # the drift reference follows the champion: judged against what the new champion learnt from, the shift is
    # the new normal (ADR 0012)
    promoted = gate_night + 2
    after = [records[n] for n in range(promoted + 1, 8)]
    assert len(after) >= 2, "the shift must be caught early enough to watch the nights after"
    kept = paths.home / "references" / "churn_telco" / f"v{version}.parquet"
    for r in after:
        ref = r["drift"]["reference"]
        assert ref["kind"] == "champion_training_data" and ref["model_version"] == version
        assert ref["path"] == str(kept) and ref["rows"] > 0 and len(ref["sha256"]) == 64
        assert not r["drift"]["dataset_drift"] and r.get("retraining") is None
    assert kept.is_file()
    # the lineage names it too: an input of detect_drift, versioned by its sha256
    night_after = (START + dt.timedelta(days=promoted + 1)).isoformat()
    events = [e for e in lineage.read_events(paths, "churn_telco") if e["job"]["name"] == "churn_telco.detect_drift"
              and e["eventType"] == "COMPLETE" and e["run"]["facets"]["nominalTime"]["nominalStartTime"].startswith(
                  night_after)]
    inputs = {i["name"]: i["facets"]["version"]["datasetVersion"] for i in events[-1]["inputs"]}
    assert inputs[f"steward.churn_telco/{version}/reference"] == after[0]["drift"]["reference"]["sha256"]
    assert events[-1]["run"]["facets"]["steward_drift"]["reference"]["modelVersion"] == version

    eng = load_engagement(tmp_path / "engagements" / "churn_telco.yaml")
    rollback.rollback(eng, paths, reason="test: back to the bootstrap", today=START + dt.timedelta(days=8))
    back = _run(range(8, 9))[8]
    assert back["models"]["champion_before"] == 1
    assert back["drift"]["reference"]["kind"] == "reference_file" and back["drift"]["reference"]["model_version"] == 1
    assert back["drift"]["dataset_drift"]  # the shifted data is drift again, measured against v1's reference


def test_a_challenger_for_a_shift_that_ends_is_retired_in_shadow(tmp_path, monkeypatch):
    paths = _setup(tmp_path, monkeypatch, shadow_nights=2)
    for night in range(8):  # the concept shifts on nights 2 and 3 only (a competitor's offer that ends)
        _write_night(paths, night, 1500, 1.0 if night in (2, 3) else 0.0, shifted=night in (2, 3))
    records = _run(range(8))

    entered = [n for n, r in records.items() if (r.get("promotion") or {}).get("action") == "shadow"]
    assert len(entered) == 1, {n: (r.get("promotion") or {}).get("action") for n, r in records.items()}
    version = records[entered[0]]["retraining"]["challenger"]["version"]
    # pooled with the night it won, the nights after the offer refute it: not on one lost night (the evidence is
    # clustered by night), but once the nights that disagree with the gate outweigh it (ADR 0024)
    verdicts = {n: (records[n].get("promotion") or {}).get("action") for n in range(entered[0] + 1, 8)}
    assert "refuse" in verdicts.values() and "promote" not in verdicts.values(), verdicts
    retired = records[next(n for n, v in verdicts.items() if v == "refuse")]
    assert "rules out a gain" in retired["promotion"]["reasons"][0], retired["promotion"]["reasons"]
    assert retired["promotion"]["shadow"]["pooled"]["gain"] < 0
    assert all(r["models"]["champion_after"] == 1 for r in records.values())  # the champion never moved
    assert _shadow_state(paths) == (1, None, {version: "retired"})
