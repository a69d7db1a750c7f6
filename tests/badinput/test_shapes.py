"""Bad-input catalogue, part 2: the shapes real client data has, and late labels that are not what they should be.

One engagement (shapes_credit.yaml) on real loan applications, labels one night late. Each case is one
night: a clean batch of real rows with one thing changed (or tonight's label file changed). Every case
ends in its documented state (DOCUMENTED below, also in README.md) with nothing lost: the client's files
are byte-identical afterwards, a quarantined batch is kept byte for byte with its reasons, the night is
in the ledger, and the champion did not move.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from steward.config import load_engagement
from steward.governance import ledger
from steward.models import registry
from steward.settings import StewardPaths
from tests.realdata import sources

CONFIG = Path(__file__).with_name("shapes_credit.yaml")
FIRST = dt.date(2026, 4, 1)
ROWS = 40
REFERENCE_ROWS = 600


def _real_rows() -> pd.DataFrame:
    raw = pd.read_pickle(sources.path_of("credit"), compression="xz").sample(frac=1.0, random_state=5)
    rng = np.random.default_rng(5)
    stamps = pd.Timestamp("2026-03-01T08:00:00") + pd.to_timedelta(rng.integers(0, 86_400 * 30, len(raw)), unit="s")
    return pd.DataFrame({
        "application_id": [f"A{int(i):05d}" for i in raw["rownames"]],
        "seniority": raw["Seniority"].to_numpy(), "home": raw["Home"].fillna("other").to_numpy(),
        "age": raw["Age"].clip(18, 80).to_numpy(), "records": raw["Records"].eq("yes").to_numpy(),
        "income": raw["Income"].clip(upper=1200).astype("Int64").to_numpy(),
        "amount": raw["Amount"].clip(upper=6000).to_numpy(),
        "submitted_at": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in stamps],
        "status": raw["Status"].to_numpy(),
    })


def _set(frame: pd.DataFrame, column: str, rows, value) -> pd.DataFrame:
    out = frame.copy()
    out[column] = out[column].astype(object)
    out.loc[out.index[rows], column] = value
    return out


def _offsets(frame: pd.DataFrame) -> pd.DataFrame:
    """The same instants written three ways: Z, an explicit +02:00 offset, and a space separator."""
    stamps = pd.to_datetime(frame["submitted_at"], utc=True)
    written = [t.strftime("%Y-%m-%dT%H:%M:%SZ") if i % 3 == 0 else
               (t + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00") if i % 3 == 1 else
               t.strftime("%Y-%m-%d %H:%M:%S") for i, t in enumerate(stamps)]
    return frame.assign(submitted_at=written)


def _one_sided(labels: pd.DataFrame) -> pd.DataFrame:
    """Only the 'good' outcomes arrived tonight (defaults are reported later, if ever)."""
    return labels[labels["status"] == "good"]


def _outside(labels: pd.DataFrame) -> pd.DataFrame:
    return _set(labels, "status", [0, 1, 2], "maybe")


# case -> (batch change, change to tonight's label file, documented state)
CASES = [
    ("booleans_written_any_case", lambda f: _set(_set(f, "records", slice(0, 10), "TRUE"), "records", slice(10, 20), "false"),
     None, "accepted"),
    ("label_values_outside_classes", None, _outside, "accepted, 3 label rows set aside"),
    ("one_class_label_day", None, _one_sided, "accepted, realised roc_auc not computable"),
    ("one_class_training_window", None, _one_sided, "accepted, no candidate: one-class training window"),
    ("integers_with_nulls", lambda f: _set(f, "income", slice(0, 4), None), None, "accepted"),
    ("timestamps_with_offsets", _offsets, None, "accepted"),
    ("constant_column", lambda f: f.assign(age=40), None, "accepted"),
    ("unseen_category_one_row", lambda f: _set(f, "home", [0], "boat"), None, "accepted with a warning"),
    ("booleans_as_yes_no", lambda f: f.assign(records=np.where(f["records"], "yes", "no")), None, "quarantine"),
    ("integer_with_a_fraction", lambda f: _set(f, "amount", [3], "1500.5"), None, "quarantine"),
    ("timestamp_garbage", lambda f: _set(f, "submitted_at", [2], "yesterday"), None, "quarantine"),
    ("all_null_column", lambda f: f.assign(income=pd.NA), None, "quarantine"),
    ("unseen_categories_most_rows", lambda f: _set(f, "home", slice(0, 30), "boat"), None, "quarantine"),
]
DOCUMENTED = {name: state for name, _, _, state in CASES}
QUARANTINE_CHECK = {
    "booleans_as_yes_no": ("values_match_schema", "records"),
    "integer_with_a_fraction": ("values_match_schema", "amount"),
    "timestamp_garbage": ("values_match_schema", "submitted_at"),
    "all_null_column": ("expect_column_proportion_of_non_null_values_to_be_between", "income"),
    "unseen_categories_most_rows": ("expect_column_values_to_be_in_set", "home"),
}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """Write every night's batch and label file, then run the nights in order (each case on its own night)."""
    from steward.airflow.runner import run_night

    root = tmp_path_factory.mktemp("shapes")
    engagements = root / "engagements"
    engagements.mkdir()
    shutil.copyfile(CONFIG, engagements / CONFIG.name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEWARD_HOME", str(root / "home"))
        mp.setenv("STEWARD_ENGAGEMENTS_DIR", str(engagements))
        paths = StewardPaths.from_env()
        data = paths.data_root / "shapes_credit"
        (data / "incoming").mkdir(parents=True)
        (data / "labels").mkdir()
        rows = _real_rows()
        rows.iloc[:REFERENCE_ROWS].to_csv(data / "reference.csv", index=False)
        eng = load_engagement(engagements / CONFIG.name)
        nights = [("bootstrap", None, None, "accepted"), *CASES]
        files: dict[str, dict[str, bytes]] = {}
        for i, (name, change_batch, _, _) in enumerate(nights):
            day = FIRST + dt.timedelta(days=i)
            clean = rows.iloc[REFERENCE_ROWS + i * ROWS: REFERENCE_ROWS + (i + 1) * ROWS].reset_index(drop=True)
            batch = change_batch(clean) if change_batch else clean
            batch.drop(columns=["status"]).to_csv(data / "incoming" / f"{day}.csv", index=False)
            labels = clean[["application_id", "status"]]  # tonight's batch's labels arrive tomorrow
            files[name] = {"batch": (data / "incoming" / f"{day}.csv").read_bytes()}
            files.setdefault(f"labels:{day + dt.timedelta(days=1)}", {"labels": labels})
        for i, (name, _, change_labels, _) in enumerate(nights):  # tonight's label file, possibly changed
            day = FIRST + dt.timedelta(days=i)
            arriving = files.get(f"labels:{day}", {}).get("labels")
            if arriving is None:
                continue
            (change_labels(arriving) if change_labels else arriving).to_csv(data / "labels" / f"{day}.csv", index=False)
            files[name]["labels"] = (data / "labels" / f"{day}.csv").read_bytes()
        results = {}
        client = registry.client(paths)
        for i, (name, *_rest) in enumerate(nights):
            day = FIRST + dt.timedelta(days=i)
            before = sorted(int(v.version) for v in client.search_model_versions(f"name='{eng.registered_model_name}'"))
            results[name] = {"day": day, "run": run_night("shapes_credit", day), "versions_before": before,
                             "champion": registry.get_alias(client, eng, registry.CHAMPION).version,
                             "versions_after": sorted(int(v.version) for v in
                                                      client.search_model_versions(f"name='{eng.registered_model_name}'"))}
        yield {"paths": paths, "data": data, "files": files, "results": results, "eng": eng}


def test_every_case_is_documented():
    assert len(CASES) >= 9 and set(QUARANTINE_CHECK) == {n for n, s in DOCUMENTED.items() if s == "quarantine"}


@pytest.mark.parametrize("case", [name for name, *_ in CASES], ids=str)
def test_case_ends_in_its_documented_state_with_nothing_lost(case, catalogue):
    result = catalogue["results"][case]
    day, run, paths = result["day"], result["run"], catalogue["paths"]
    record = run["audit"]
    assert run["state"].endswith("success"), run["log"]
    assert record["failed_tasks"] == [] and "non_finite_replaced" not in json.dumps(record)
    quarantined = DOCUMENTED[case] == "quarantine"
    assert (record["outcome"] == "quarantine") == quarantined, record["quality"]["failed"]
    # nothing lost: the client's files are byte-identical, the batch is kept (landed or quarantined) as sent
    sent = catalogue["files"][case]
    assert (catalogue["data"] / "incoming" / f"{day}.csv").read_bytes() == sent["batch"]
    if "labels" in sent:
        assert (catalogue["data"] / "labels" / f"{day}.csv").read_bytes() == sent["labels"]
    kept = (paths.quarantine if quarantined else paths.landed) / "shapes_credit" / day.isoformat() / f"{day}.csv"
    assert kept.read_bytes() == sent["batch"]
    # the champion did not move, and the night is in the ledger
    assert result["champion"] == catalogue["results"]["bootstrap"]["champion"] == 1
    entry = [e for e in ledger.read_entries(paths, "shapes_credit") if e["logical_date"] == day.isoformat()][-1]
    assert entry["record"]["outcome"] == record["outcome"]
    if quarantined:
        expectation, column = QUARANTINE_CHECK[case]
        reasons = json.loads((paths.quarantine / "shapes_credit" / day.isoformat() / "reasons.json").read_text())
        assert (expectation, column) in {(f["expectation"], f["column"]) for f in reasons["failed_expectations"]}


def test_types_are_read_as_declared(catalogue):
    profile = lambda case: catalogue["results"][case]["run"]["audit"]["data"]["profile"]["columns"]  # noqa: E731
    assert profile("booleans_written_any_case")["records"] == "boolean"
    assert profile("integers_with_nulls")["income"] == "Int64"
    assert profile("timestamps_with_offsets")["submitted_at"] == "datetime64[ns]"
    bad = catalogue["results"]["integer_with_a_fraction"]["run"]["audit"]["quality"]["checks"]
    schema_check = next(c for c in bad if c["expectation"] == "values_match_schema")
    assert schema_check["column"] == "amount" and schema_check["sample_unexpected"] == ["1500.5"]


def test_label_values_outside_the_classes_are_set_aside(catalogue):
    result = catalogue["results"]["label_values_outside_classes"]
    labels = result["run"]["audit"]["labels"]
    assert labels["outside_classes"]["rows"] == 3 and labels["outside_classes"]["examples"] == ["maybe"]
    aside = pd.read_csv(labels["outside_classes"]["path"])
    assert list(aside["status"]) == ["maybe"] * 3 and aside["reason"].str.contains("not one of").all()
    assert labels["joined"] == ROWS - 3


def test_one_class_label_day_is_not_computable_and_its_rows_still_count(catalogue):
    """Tonight's labels hold one class: no realised ROC AUC for their date, but the rows train (the window's
    other night has both classes), so a candidate is trained and judged; nothing fails."""
    result = catalogue["results"]["one_class_label_day"]
    record = result["run"]["audit"]
    realised = record["labels"]["performance"]
    assert realised and realised[0]["realised_value"] is None
    assert "one class only" in realised[0]["not_computable"]
    assert record["labels"]["joined"] < ROWS  # only the good outcomes arrived
    assert record["retraining"] is not None and record["retraining"]["scores"]["challenger"] is not None
    assert len(result["versions_after"]) == len(result["versions_before"]) + 1


def test_one_class_training_window_trains_nothing(catalogue):
    result = catalogue["results"]["one_class_training_window"]
    reasons = result["run"]["audit"]["decision"]["reasons"]
    assert any("training window has one class only" in r for r in reasons), reasons
    assert result["run"]["audit"]["outcome"] == "keep"
    assert result["versions_after"] == result["versions_before"]


def test_unseen_category_on_one_row_warns(catalogue):
    record = catalogue["results"]["unseen_category_one_row"]["run"]["audit"]
    assert record["quality"]["success"] and record["quality"]["warnings"] >= 1
    warned = [c for c in record["quality"]["checks"] if not c["success"]]
    assert {(c["column"], c["severity"]) for c in warned} == {("home", "warn")}
    assert record["alerts"]["conditions"] and any(c["condition"] == "quality_warning" and c["state"] == "active"
                                                   for c in record["alerts"]["conditions"])


def test_clean_nights_with_labels_do_train(catalogue):
    """Positive control for the 'trains nothing' cases: once both classes are labelled again, candidates are
    trained (a night whose 40-row batch gives a one-class holdout by chance may still skip, with its reason)."""
    later = ["integers_with_nulls", "timestamps_with_offsets", "constant_column", "unseen_category_one_row"]
    trained = [c for c in later if catalogue["results"][c]["run"]["audit"]["retraining"] is not None]
    assert trained
    for case in trained:
        result = catalogue["results"][case]
        assert len(result["versions_after"]) == len(result["versions_before"]) + 1
    for case in set(later) - set(trained):
        reasons = catalogue["results"][case]["run"]["audit"]["decision"]["reasons"]
        assert any(r.startswith("no candidate tonight") for r in reasons), reasons
