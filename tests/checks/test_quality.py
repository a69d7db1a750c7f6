from __future__ import annotations

import numpy as np
import pytest

from steward import demo
from steward.checks import quality


@pytest.fixture
def good_churn():
    return demo._churn_frame(np.random.default_rng(1), 800, 0, 0.0, False)


def _failed(result):
    return {(c["expectation"], c["column"]) for c in result["failed"]}


def test_clean_batch_passes(churn, good_churn):
    result = quality.validate_frame(churn, good_churn)
    assert result["success"], result["failed"]
    assert result["evaluated"] == len(quality.build_expectations(churn)) >= 20


def test_corrupt_demo_batch_fails_on_the_right_checks(churn, good_churn):
    bad = demo._corrupt_churn(good_churn, np.random.default_rng(2))
    result = quality.validate_frame(churn, bad)
    assert not result["success"]
    failed = _failed(result)
    assert ("expect_column_values_to_be_between", "tenure_months") in failed
    assert ("expect_column_values_to_not_be_null", "customer_id") in failed
    # the 'N/A' strings: either a type failure or (read by pandas as NaN) a null failure
    assert {("expect_column_values_to_not_be_null", "monthly_charges"),
            ("expect_column_values_to_be_in_type_list", "monthly_charges")} & failed


def test_string_in_numeric_column_fails_type_check(churn, good_churn):
    df = good_churn.astype({"support_calls": object})
    df.loc[3, "support_calls"] = "three"
    assert ("expect_column_values_to_be_in_type_list", "support_calls") in _failed(quality.validate_frame(churn, df))


def test_missing_and_extra_columns(churn, good_churn):
    df = good_churn.drop(columns=["contract"]).assign(surprise=1)
    failed = _failed(quality.validate_frame(churn, df))
    assert ("expect_table_columns_to_match_set", None) in failed
    assert ("expect_column_to_exist", "contract") in failed


def test_row_count_and_uniqueness(churn, good_churn):
    small = good_churn.head(10).copy()
    small.loc[1, "customer_id"] = small.loc[0, "customer_id"]
    failed = _failed(quality.validate_frame(churn, small))
    assert ("expect_table_row_count_to_be_between", None) in failed
    assert ("expect_column_values_to_be_unique", "customer_id") in failed


def test_null_share_bound_catches_missing_value_jump(churn, good_churn):
    df = good_churn.copy()
    df.loc[df.index[:100], "data_usage_gb"] = np.nan  # 12.5% > 5% allowed
    assert ("expect_column_proportion_of_non_null_values_to_be_between", "data_usage_gb") in _failed(
        quality.validate_frame(churn, df))


def test_report_html_lists_failures(churn, good_churn):
    bad = demo._corrupt_churn(good_churn, np.random.default_rng(2))
    page = quality.render_html(churn, "2026-03-06", quality.validate_frame(churn, bad))
    assert "FAILED" in page and "tenure_months" in page and "<table>" in page


def test_result_is_strict_json(churn, good_churn):
    import json

    json.dumps(quality.validate_frame(churn, good_churn), allow_nan=False)
