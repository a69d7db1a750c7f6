"""A person approves each promotion where a client requires it (issue 35): the night asks and never waits; only
an approval moves the champion; every answer is a ledger entry; a high-risk engagement cannot go without."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import yaml

from steward import demo, mlflow_tags, pipeline, policy
from steward.config import EngagementConfigError, load_engagement
from steward.governance import approvals, ledger
from steward.models import registry, training
from tests.conftest import ENGAGEMENTS

NIGHT = dt.date(2026, 3, 10)


def _with_approval(tmp_path, **governance):
    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    raw["promotion"]["approval"] = {"required": True, "approvers": ["risk.officer"], "timeout_hours": 0.05}
    raw["governance"].update(governance)
    path = tmp_path / "engagements" / "churn_telco.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_engagement(path)


@pytest.fixture
def registered(tmp_path, paths):
    """Champion v1 and a challenger v2 that the gate would promote."""
    eng = _with_approval(tmp_path)
    c = registry.client(paths)
    frame = demo._churn_frame(np.random.default_rng(5), 600, 0, 0.0, False)
    for version, night in ((1, "2026-03-01"), (2, NIGHT.isoformat())):
        ref = registry.log_and_register(c, paths, eng, training.train(eng, frame.sample(frac=0.8, random_state=version)),
                                        training_key=f"k{version}", params={}, metrics={},
                                        tags={mlflow_tags.TRAINED_FOR: night})
        assert ref.version == version
    registry.tag_version(c, eng, 1, {registry.PROMOTED_FOR_TAG: "2026-03-01"})
    registry.set_alias(c, eng, registry.CHAMPION, 1)
    return eng, c


def _gate_passes(eng, c, paths):
    verdict = policy.Decision("promote", ["the evidence clears the margin"], ["performance"])
    return pipeline._make_champion(c, eng, paths, 2, NIGHT, verdict, evidence={"gain": 0.05, "rows": 900},
                                   champion=1)


def test_the_night_asks_and_does_not_promote(registered, paths):
    eng, c = registered
    verdict = _gate_passes(eng, c, paths)
    assert verdict.action == "approval" and "risk.officer" in verdict.reasons[-1]
    assert registry.get_alias(c, eng, registry.CHAMPION).version == 1
    assert registry.get_alias(c, eng, registry.AWAITING_APPROVAL).version == 2
    pending = approvals.read(paths, eng.id)
    assert pending["version"] == 2 and pending["approvers"] == ["risk.officer"]
    assert "v2" in approvals.body(pending) and "0.05" in approvals.body(pending)
    assert _gate_passes(eng, c, paths).action == "approval"  # a rerun of the night asks the same, once


def test_an_approval_promotes_from_the_next_night_and_is_in_the_ledger(registered, paths):
    eng, c = registered
    _gate_passes(eng, c, paths)
    result = approvals.answer(eng, paths, 2, "approved", by="risk.officer", comment="evidence reviewed",
                              answered_at="2026-03-10T09:00:00+00:00")
    assert result["promoted"] and registry.get_alias(c, eng, registry.CHAMPION).version == 2
    assert registry.champion_for_night(c, eng, "2026-03-10").version == 1  # the night that asked kept its champion
    assert registry.champion_for_night(c, eng, "2026-03-11").version == 2
    assert registry.get_alias(c, eng, registry.AWAITING_APPROVAL) is None
    entry = json.loads(ledger.ledger_path(paths, eng.id).read_text().splitlines()[-1])
    assert entry["type"] == "approval" and entry["detail"]["answered_by"] == "risk.officer"
    assert entry["detail"]["comment"] == "evidence reviewed" and entry["detail"]["champion_after"] == 2
    assert ledger.verify(paths, eng.id).ok  # the note beside the model card is cited with its hash
    # the next night's audit record names the answer given since the last recorded night
    from steward.governance import export

    [since] = export.answered_since_last_night(paths, eng.id)
    assert (since["answered_by"], since["comment"], since["version"]) == ("risk.officer", "evidence reviewed", 2)
    note = paths.run_dir(eng.id, NIGHT.isoformat()) / "model_v2" / "approval.md"
    assert "by risk.officer" in note.read_text() and ledger.artifact_key(paths, note) in entry["artifacts"]


@pytest.mark.parametrize("outcome,by", [("rejected", "risk.officer"), ("timed_out", None)])
def test_a_rejection_or_a_timeout_leaves_the_champion_untouched(registered, paths, outcome, by):
    eng, c = registered
    _gate_passes(eng, c, paths)
    result = approvals.answer(eng, paths, 2, outcome, by=by, comment="", answered_at="2026-03-10T09:00:00+00:00")
    assert not result["promoted"] and registry.get_alias(c, eng, registry.CHAMPION).version == 1
    assert registry.get_version(c, eng, 2).tags[mlflow_tags.APPROVAL] == outcome
    entry = json.loads(ledger.ledger_path(paths, eng.id).read_text().splitlines()[-1])
    assert entry["detail"]["outcome"] == outcome and entry["detail"]["champion_after"] == 1
    assert approvals.read(paths, eng.id)["answer"]["outcome"] == outcome
    assert _gate_passes(eng, c, paths).action == "approval"  # the answered request is not asked again ...
    assert registry.get_alias(c, eng, registry.AWAITING_APPROVAL) is None  # ... nor re-opened


def test_an_approval_of_a_request_a_newer_one_replaced_promotes_nothing(registered, paths):
    eng, c = registered
    _gate_passes(eng, c, paths)
    registry.set_alias(c, eng, registry.AWAITING_APPROVAL, 1)  # a newer request took the alias
    result = approvals.answer(eng, paths, 2, "approved", by="risk.officer", comment="",
                              answered_at="2026-03-10T09:00:00+00:00")
    assert result["outcome"] == "superseded" and registry.get_alias(c, eng, registry.CHAMPION).version == 1


def test_high_risk_needs_six_months_of_logs_and_named_approvers(tmp_path):
    with pytest.raises(EngagementConfigError, match=r"governance.retention_days.*Art. 19"):
        _with_approval(tmp_path, risk_class="high", retention_days=90)
    assert _with_approval(tmp_path, risk_class="high", retention_days=183).governance.risk_class == "high"
    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    raw["governance"]["risk_class"] = "high"
    (tmp_path / "engagements" / "churn_telco.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(EngagementConfigError, match="promotion.approval.required"):
        load_engagement(tmp_path / "engagements" / "churn_telco.yaml")
    raw["promotion"]["approval"] = {"required": True}
    (tmp_path / "engagements" / "churn_telco.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(EngagementConfigError, match="needs approvers"):
        load_engagement(tmp_path / "engagements" / "churn_telco.yaml")


def test_the_outcome_report_shows_a_waiting_request_and_the_answers():
    from steward.operations import report

    page = report._approvals_html({
        "awaiting_approval": {"version": 5, "requested_for": "2026-03-10", "approvers": ["risk.officer"]},
        "approvals": [{"night": "2026-03-09", "version": 4, "outcome": "rejected", "answered_by": "risk.officer",
                       "answered_at": "2026-03-09T10:00:00+00:00", "comment": "<script>no</script>"}]})
    assert "v5 awaits approval by risk.officer since the night of 2026-03-10" in page
    assert "&lt;script&gt;no&lt;/script&gt;" in page and "<script>" not in page  # an approver's comment is text
    assert report._approvals_html({"awaiting_approval": None, "approvals": []}) == ""
