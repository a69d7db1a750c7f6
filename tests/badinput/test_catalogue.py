"""Bad-input catalogue: each corrupt batch or config and the behaviour it must get.

Batches: the night ends quarantined with the expected failed check in reasons.json, the raw input is
byte-identical afterwards (and so is the quarantined copy), the champion alias did not move, the ledger
recorded the night, and (for the batches that break the reader) another engagement's run in the same test
succeeded.
Configs: an error naming the file and the field; the other engagement files still load.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from steward import demo
from steward.config import EngagementConfigError, discover, load_all, load_engagement
from steward.governance import ledger
from steward.models import registry
from steward.settings import StewardPaths
from tests.conftest import ENGAGEMENTS

FIRST = dt.date(2026, 3, 1)


def good() -> pd.DataFrame:
    return demo._churn_frame(np.random.default_rng(77), 1500, 5_000_000, 0.0, False)


def csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def _with(df: pd.DataFrame, col: str, idx, value) -> pd.DataFrame:
    out = df.copy()
    out[col] = out[col].astype(object)
    out.loc[out.index[idx], col] = value
    return out


# name -> (bytes builder, the check that must fail)
BATCHES = {
    "truncated_mid_line": (lambda: csv(good())[:-25], "expect_column_values_to_not_be_null"),
    "wrong_delimiter": (lambda: good().to_csv(index=False, sep=";").encode(), "expect_table_columns_to_match_set"),
    "latin1_encoding": (lambda: good().assign(contract="caf\u00e9").to_csv(index=False).encode("latin-1"),
                        "batch_is_readable"),
    "utf16_encoding": (lambda: good().to_csv(index=False).encode("utf-16"), "batch_is_readable"),
    "header_only": (lambda: csv(good().head(0)), "expect_table_row_count_to_be_between"),
    "zero_bytes": (lambda: b"", "batch_is_readable"),
    "binary_garbage": (lambda: bytes(range(256)) * 40, "batch_is_readable"),
    "extra_column": (lambda: csv(good().assign(surprise=1)), "expect_table_columns_to_match_set"),
    "missing_column": (lambda: csv(good().drop(columns=["support_calls"])), "expect_column_to_exist"),
    "string_in_numeric": (lambda: csv(_with(good(), "support_calls", [3, 4], "three")),
                          "expect_column_values_to_be_in_type_list"),
    "all_null_column": (lambda: csv(good().assign(monthly_charges=np.nan)), "expect_column_values_to_not_be_null"),
    "infinities": (lambda: csv(_with(good(), "data_usage_gb", [1, 2], np.inf)), "values_are_finite"),
    "duplicate_ids": (lambda: csv(_with(good(), "customer_id", [1], "C5000000")), "expect_column_values_to_be_unique"),
    "missing_ids": (lambda: csv(_with(good(), "customer_id", [5, 6], None)), "expect_column_values_to_not_be_null"),
    "new_category": (lambda: csv(_with(good(), "contract", [0], "lifetime")), "expect_column_values_to_be_in_set"),
    "new_target_class": (lambda: csv(_with(good(), "churned", [0], 2)), "expect_column_values_to_be_in_set"),
    "row_count_spike_10x": (lambda: csv(pd.concat([good()] * 10, ignore_index=True)
                                        .assign(customer_id=lambda d: [f"S{i}" for i in range(len(d))])),
                            "expect_table_row_count_to_be_between"),
    "null_share_jump": (lambda: csv(_with(good(), "data_usage_gb", slice(0, 300), np.nan)),
                        "expect_column_proportion_of_non_null_values_to_be_between"),
    "out_of_range_negative": (lambda: csv(_with(good(), "tenure_months", [0], -40)),
                              "expect_column_values_to_be_between"),
    "batch_from_the_wrong_date": (None, "batch_is_not_a_resend"),  # yesterday's file sent again
}
# The batches that break the reader itself (and the one that looks like another night's): while they are
# quarantined, another engagement's night runs in the same test.
OTHER_ENGAGEMENT_CHECKED = {"binary_garbage", "zero_bytes", "utf16_encoding", "batch_from_the_wrong_date"}
CONFIGS = {  # files in tests/configs/invalid -> the field the error must name
    "unknown_key": "colour",
    "wrong_type": "retraining.window_days",
    "unknown_estimator": "retraining.estimator",
    "unknown_estimator_param": "retraining.estimator.params.fit_intercept_magic",
    "unsafe_id": "id",
    "data_path_escapes_root": "data.directory",
    "alias_bomb": "line",
}


def test_catalogue_has_at_least_25_cases():
    assert len(BATCHES) + len(CONFIGS) >= 25


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from steward.airflow.runner import run_night

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEWARD_HOME", str(tmp_path_factory.mktemp("badinput")))
        paths = StewardPaths.from_env()
        demo.generate("churn_telco", paths.data_root, nights=1)
        demo.generate("demand_retail", paths.data_root, nights=len(BATCHES) + 1)
        assert run_night("churn_telco", FIRST)["audit"]["outcome"] == "keep"  # bootstrap a champion
        yield paths


@pytest.mark.parametrize("case", sorted(BATCHES), ids=str)
def test_bad_batch(case, home):
    from steward.airflow.runner import run_night

    index = sorted(BATCHES).index(case)
    day = FIRST + dt.timedelta(days=1 + index)
    build, failing_check = BATCHES[case]
    source = home.data_root / "churn_telco" / "incoming" / f"{day}.csv"
    raw = (home.data_root / "churn_telco" / "incoming" / f"{FIRST}.csv").read_bytes() if build is None else build()
    source.write_bytes(raw)
    eng = load_engagement(ENGAGEMENTS / "churn_telco.yaml")
    client = registry.client(home)
    champion_before = registry.get_alias(client, eng, registry.CHAMPION).version

    result = run_night("churn_telco", day)

    assert result["state"].endswith("success"), case
    record = result["audit"]
    assert record["outcome"] == "quarantine", (case, record["quality"] and record["quality"]["checks"][-3:])
    qdir = home.quarantine / "churn_telco" / day.isoformat()
    reasons = json.loads((qdir / "reasons.json").read_text())
    assert failing_check in {f["expectation"] for f in reasons["failed_expectations"]}, reasons["failed_expectations"]
    assert source.read_bytes() == raw                      # the client's file is untouched
    assert (qdir / source.name).read_bytes() == raw        # the quarantined copy is byte-identical
    assert registry.get_alias(client, eng, registry.CHAMPION).version == champion_before
    entry = [e for e in ledger.read_entries(home, "churn_telco") if e["logical_date"] == day.isoformat()][-1]
    assert entry["record"]["outcome"] == "quarantine"
    assert any(k.endswith("reasons.json") for k in entry["artifacts"])
    if case in OTHER_ENGAGEMENT_CHECKED:  # other engagements keep running (a few cases: each costs a night)
        other = run_night("demand_retail", FIRST + dt.timedelta(days=index))
        assert other["state"].endswith("success") and other["audit"]["outcome"] != "failed"


@pytest.mark.parametrize("case", sorted(CONFIGS), ids=str)
def test_bad_config(case, tmp_path):
    bad = Path(__file__).parents[1] / "configs" / "invalid" / f"{case}.yaml"
    for p in discover(ENGAGEMENTS):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / bad.name).write_bytes(bad.read_bytes())
    good, errors = load_all(tmp_path)
    assert set(good) == {p.stem for p in discover(ENGAGEMENTS)}
    assert len(errors) == 1 and isinstance(errors[0], EngagementConfigError)
    assert errors[0].field.startswith(CONFIGS[case]) and bad.name in str(errors[0])


def test_yaml_alias_bomb_is_refused_fast():
    import time

    bad = Path(__file__).parents[1] / "configs" / "invalid" / "alias_bomb.yaml"
    t0 = time.perf_counter()
    with pytest.raises(EngagementConfigError, match="aliases are not allowed"):
        load_engagement(bad)
    assert time.perf_counter() - t0 < 1.0


def test_batches_read_as_written():
    # the builders themselves produce what their names say (guards the catalogue against silent drift)
    assert BATCHES["zero_bytes"][0]() == b""
    assert pd.read_csv(io.BytesIO(BATCHES["extra_column"][0]())).shape[1] == len(good().columns) + 1
