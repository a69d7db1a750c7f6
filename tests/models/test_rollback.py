from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from typer.testing import CliRunner

from steward import demo
from steward.cli import app
from steward.governance import ledger
from steward.models import registry, rollback, training


@pytest.fixture
def two_versions(churn, paths):
    c = registry.client(paths)
    model = training.train(churn, demo._churn_frame(np.random.default_rng(1), 400, 0, 0.0, False))
    v1 = registry.log_and_register(c, paths, churn, model, training_key="k1", params={}, metrics={}, tags={})
    v2 = registry.log_and_register(c, paths, churn, model, training_key="k2", params={}, metrics={}, tags={})
    registry.tag_version(c, churn, v1.version, {registry.PROMOTED_FOR_TAG: "2026-03-01", registry.REPLACED_TAG: ""})
    registry.tag_version(c, churn, v2.version, {registry.PROMOTED_FOR_TAG: "2026-03-05",
                                                registry.REPLACED_TAG: str(v1.version)})
    registry.set_alias(c, churn, registry.PREVIOUS_CHAMPION, v1.version)
    registry.set_alias(c, churn, registry.CHAMPION, v2.version)
    return c, v1.version, v2.version


def test_rollback_moves_alias_and_writes_the_reason_to_the_ledger(churn, paths, two_versions):
    c, v1, v2 = two_versions
    result = rollback.rollback(churn, paths, reason="v2 over-predicts churn for prepaid", today=dt.date(2026, 3, 7))
    assert (result["from"], result["to"]) == (v2, v1)
    assert registry.get_alias(c, churn, registry.CHAMPION).version == v1
    assert registry.get_alias(c, churn, registry.PREVIOUS_CHAMPION).version == v2
    entry = ledger.read_entries(paths, churn.id)[-1]
    assert entry["type"] == "rollback" and entry["detail"]["reason"] == "v2 over-predicts churn for prepaid"
    assert ledger.verify(paths, churn.id).ok
    # later nights start from the restored champion; nights before the rollback keep their history
    assert registry.champion_for_night(c, churn, "2026-03-08").version == v1
    assert registry.champion_for_night(c, churn, "2026-03-07").version == v1  # the rollback's own night
    assert registry.champion_for_night(c, churn, "2026-03-06").version == v2


def test_rollback_refusals_change_nothing(churn, paths, two_versions):
    c, v1, v2 = two_versions
    with pytest.raises(rollback.RollbackError, match="--reason"):
        rollback.rollback(churn, paths, reason=" ")
    with pytest.raises(rollback.RollbackError, match="no version 99"):
        rollback.rollback(churn, paths, reason="x", to_version=99)
    with pytest.raises(rollback.RollbackError, match="already the champion"):
        rollback.rollback(churn, paths, reason="x", to_version=v2)
    assert registry.get_alias(c, churn, registry.CHAMPION).version == v2
    assert ledger.read_entries(paths, churn.id) == []


def test_cli_rollback_exit_codes(churn, paths, two_versions):
    runner = CliRunner()
    bad = runner.invoke(app, ["model", "rollback", "churn_telco", "--to", "99", "--reason", "test"])
    assert bad.exit_code == 2 and "no version 99" in bad.stderr
    ok = runner.invoke(app, ["model", "rollback", "churn_telco", "--reason", "bad release"])
    assert ok.exit_code == 0 and "champion v2 -> v1" in ok.stdout
