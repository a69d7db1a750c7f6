from __future__ import annotations

from pathlib import Path

import pytest

from steward.config import EngagementConfigError, discover, load_all, load_engagement
from tests.conftest import ENGAGEMENTS

INVALID = sorted((Path(__file__).parent / "configs" / "invalid").glob("*.yaml"))


@pytest.mark.parametrize("path", discover(ENGAGEMENTS), ids=lambda p: p.stem)
def test_every_shipped_engagement_validates(path):
    eng = load_engagement(path)
    assert eng.id == path.stem
    assert eng.features and eng.governance.owners


def test_demo_engagements_cover_classification_and_regression():
    good, errors = load_all(ENGAGEMENTS)
    assert not errors
    kinds = {e.problem_type for e in good.values()}
    assert "regression" in kinds and kinds & {"binary_classification", "multiclass_classification"}


def test_invalid_fixture_folder_is_not_empty():
    assert len(INVALID) >= 15


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_file_names_file_and_field(path):
    head = path.read_text().splitlines()
    expected = head[0].removeprefix("# expect-field: ").strip()
    message = head[1].removeprefix("# expect-message: ").strip() if head[1].startswith("# expect-message:") else ""
    with pytest.raises(EngagementConfigError) as info:
        load_engagement(path)
    assert info.value.field.startswith(expected), str(info.value)
    assert message in str(info.value), str(info.value)  # refused for the stated reason, not another one
    assert str(path) in str(info.value)
    assert f"field '{info.value.field}'" in str(info.value)


def test_bad_file_does_not_stop_good_ones(tmp_path):
    for p in discover(ENGAGEMENTS):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / "drift_threshold_out_of_range.yaml").write_bytes(
        (Path(__file__).parent / "configs" / "invalid" / "drift_threshold_out_of_range.yaml").read_bytes()
    )
    good, errors = load_all(tmp_path)
    assert set(good) == {p.stem for p in discover(ENGAGEMENTS)}
    assert [e.field for e in errors] == ["drift.threshold"]


def test_estimator_params_are_typed(churn):
    assert churn.retraining.estimator.name == "logistic_regression"
    assert churn.retraining.estimator.params.max_iter == 2000


def test_the_engagement_file_reference_is_generated_from_the_models():
    """docs/engagement-file.md is the models' own description: a field added or reworded without `make docs`
    fails here."""
    from steward import config_reference
    from steward.settings import PROJECT_ROOT

    text = (PROJECT_ROOT / "docs" / "engagement-file.md").read_text()
    assert "| `retraining.growth_factor` | number | `1.0` |" in text  # a real row (positive control)
    assert text == config_reference.render(), "docs/engagement-file.md is stale: run `make docs`"
