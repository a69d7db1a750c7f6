"""Adopting a pipeline built outside steward (`steward onboard --model`, ADR 0032): what is checked, what is
refused with exit 2 and nothing written, what is recorded, and that loading trusts only reviewed types."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from typer.testing import CliRunner

from steward.cli import app
from steward.config import AdoptedSpec, load_engagement
from steward.models import adoption, training, trust
from tests.test_onboard import loans

runner = CliRunner()
NUMERIC, CATEGORICAL = ["income", "debt_ratio", "age"], ["region"]


def project_pipeline(df: pd.DataFrame, target: str = "defaulted", regressor: bool = False,
                     handle_unknown: str = "ignore") -> Pipeline:
    """What a project team hands over: one-hot + scaling in a ColumnTransformer, then gradient boosting."""
    prep = ColumnTransformer([("num", StandardScaler(), NUMERIC),
                              ("cat", OneHotEncoder(handle_unknown=handle_unknown), CATEGORICAL)])
    est = GradientBoostingRegressor(n_estimators=20) if regressor else GradientBoostingClassifier(n_estimators=20)
    return Pipeline([("prep", prep), ("gb", est)]).fit(df[NUMERIC + CATEGORICAL], df[target])


@pytest.fixture
def env(tmp_path, monkeypatch):
    engs = tmp_path / "engagements"
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(engs))
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    allow = tmp_path / "reviewed-skops-types.txt"
    allow.write_text("# test allow-list\n")
    monkeypatch.setenv("STEWARD_REVIEWED_TYPES", str(allow))
    csv = tmp_path / "loans.csv"
    loans().to_csv(csv, index=False)
    return tmp_path, engs, csv


def _adopt(csv, model, *extra):
    return runner.invoke(app, ["onboard", "--data", str(csv), "--target", "defaulted", "--id", "loans_acme",
                               "--client", "Acme Bank", "--model", str(model), *extra])


def _nothing_written(tmp):
    assert not (tmp / "engagements" / "loans_acme.yaml").exists()
    assert not (tmp / "home" / "data" / "loans_acme").exists()
    assert not (tmp / "home" / "ledger").exists() or not any((tmp / "home" / "ledger").iterdir())


def test_adopted_pipeline_becomes_the_engagement_estimator_with_provenance(env):
    tmp, engs, csv = env
    model_file = tmp / "handover.skops"
    skops.io.dump(project_pipeline(loans()), model_file)
    result = _adopt(csv, model_file)
    assert result.exit_code == 0, result.stdout + result.stderr
    eng = load_engagement(engs / "loans_acme.yaml")
    spec = eng.retraining.estimator
    assert isinstance(spec, AdoptedSpec) and spec.kind == "classifier" and spec.source == str(model_file)
    assert spec.sha256 == adoption.sha256(model_file)
    # the features are the model's columns in its order; the column it does not read is carried
    assert list(eng.features) == NUMERIC + CATEGORICAL and "gender" not in eng.features
    copied = tmp / "home" / "data" / spec.file
    assert copied.read_bytes() == model_file.read_bytes()
    ledger = [json.loads(line) for line in (tmp / "home" / "ledger" / "loans_acme.jsonl").read_text().splitlines()]
    entry = ledger[-1]
    assert entry["type"] == "adoption" and entry["detail"]["sha256"] == spec.sha256
    assert entry["detail"]["baseline_on_reference"]["roc_auc"] > 0.6
    assert "roc_auc" in result.stdout
    # a candidate is a fresh clone: same steps and parameters, nothing fitted
    fresh = training.build_pipeline(eng)
    assert fresh.get_params()["gb__n_estimators"] == 20 and not hasattr(fresh.named_steps["gb"], "estimators_")
    # recency weights reach the final step under the name the team gave it
    frame = training.labelled(eng, loans(300, seed=5))
    weighted = training.train(eng, frame, sample_weight=[2.0] * 150 + [0.5] * 150)
    assert weighted.named_steps["gb"].n_estimators_ == 20


@pytest.mark.parametrize("case", ["regressor", "columns", "classes", "encoder", "corrupt", "pickle"])
def test_a_model_that_cannot_serve_this_data_is_refused_with_exit_2_and_nothing_written(env, case):
    tmp, _, csv = env
    df = loans()
    path = tmp / "handover.skops"
    if case == "regressor":  # a regressor offered for a classification target
        skops.io.dump(project_pipeline(df, regressor=True), path)
        expected = "it is a regressor"
    elif case == "columns":  # fitted on a column the data does not have
        prep = ColumnTransformer([("num", StandardScaler(), ["salary", "age"])])
        skops.io.dump(Pipeline([("prep", prep), ("model", GradientBoostingClassifier(n_estimators=5))]).fit(
            df.rename(columns={"income": "salary"})[["salary", "age"]], df.defaulted), path)
        expected = "columns the reference does not have: salary"
    elif case == "classes":  # fitted on words, not on 0/1
        skops.io.dump(project_pipeline(df.assign(defaulted=df.defaulted.map({0: "no", 1: "yes"}))), path)
        expected = "it predicts the classes"
    elif case == "encoder":  # an encoder that fails on a category of the reference
        skops.io.dump(project_pipeline(df[df.region != "east"], handle_unknown="error"), path)
        expected = "column 'region': the reference holds 'east'"
    elif case == "corrupt":
        skops.io.dump(project_pipeline(df), path)
        path.write_bytes(path.read_bytes()[:300])
        expected = "not a readable skops file"
    else:
        path = tmp / "handover.pkl"
        path.write_bytes(b"\x80\x04K\x01.")
        expected = "steward never loads pickle"
    result = _adopt(csv, path)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert expected in " ".join(result.stderr.split()), result.stderr
    _nothing_written(tmp)


def test_an_unreviewed_type_is_refused_until_trusted_and_trust_is_recorded(env, monkeypatch):
    tmp, engs, csv = env
    import lightgbm

    # a LightGBM booster, with the built-in list emptied of LightGBM's types: as a type nobody reviewed
    monkeypatch.setattr(trust, "BUILT_IN", tuple(t for t in trust.BUILT_IN if not t.startswith("lightgbm")))
    path = tmp / "handover.skops"
    skops.io.dump(Pipeline([("model", lightgbm.LGBMClassifier(n_estimators=5, verbose=-1))]).fit(
        loans()[NUMERIC], loans().defaulted), path)
    refused = _adopt(csv, path)
    assert refused.exit_code == 2 and "lightgbm.basic.Booster" in refused.stderr and "--trust" in refused.stderr
    _nothing_written(tmp)
    assert _adopt(csv, path, "--trust", "builtins.eval").exit_code == 2  # never, whatever is asked
    needed = [t for t in skops.io.get_untrusted_types(file=path) if t not in trust.BUILT_IN]
    accepted = _adopt(csv, path, *[a for t in needed for a in ("--trust", t)])
    assert accepted.exit_code == 0, accepted.stdout + accepted.stderr
    allow = (tmp / "reviewed-skops-types.txt").read_text()
    assert all(t in allow.splitlines() for t in needed) and "loans_acme" in allow
    assert set(needed) <= set(trust.reviewed())
    ledger = (tmp / "home" / "ledger" / "loans_acme.jsonl").read_text().splitlines()
    assert json.loads(ledger[-1])["detail"]["trusted_types_added"] == needed


def test_the_engagement_file_cannot_widen_trust_or_swap_the_file(env):
    tmp, engs, csv = env
    path = tmp / "handover.skops"
    skops.io.dump(project_pipeline(loans()), path)
    assert _adopt(csv, path).exit_code == 0
    eng = load_engagement(engs / "loans_acme.yaml")
    copied = tmp / "home" / "data" / eng.retraining.estimator.file
    # a file swapped on the state volume is refused before it is loaded
    other = tmp / "other.skops"
    skops.io.dump(project_pipeline(loans(seed=9)), other)
    copied.write_bytes(other.read_bytes())
    adoption._load_pinned.cache_clear()
    with pytest.raises(adoption.AdoptedFileError, match="pins"):
        adoption.template(eng)
    # and YAML has no field that names a type: an unknown field is refused, naming it
    text = (engs / "loans_acme.yaml").read_text().replace("    name: adopted", "    name: adopted\n    trusted: [builtins.eval]")
    (engs / "loans_acme.yaml").write_text(text)
    from steward.config import EngagementConfigError

    with pytest.raises(EngagementConfigError, match="retraining.estimator.trusted"):
        load_engagement(engs / "loans_acme.yaml")


def test_an_mlflow_model_is_adopted_from_its_uri_and_a_pickled_one_is_refused(env):
    """`--model models:/NAME/VERSION`: the sklearn flavour saved with skops is adopted; one saved with
    cloudpickle (MLflow's old default) is refused with exit 2, the recipe to convert it, nothing written."""
    import mlflow
    import mlflow.sklearn

    from steward.models import registry
    from steward.settings import StewardPaths

    tmp, engs, csv = env
    registry.client(StewardPaths.from_env())
    pipeline = project_pipeline(loans())
    for name, fmt in (("handover_skops", "skops"), ("handover_pickle", "cloudpickle")):
        with mlflow.start_run():
            # The client's pip requirements are not under test; left out, MLflow infers them by loading the model
            # in a subprocess (4-5 CPU-s per model, measured).
            mlflow.sklearn.log_model(pipeline, name="model", serialization_format=fmt, registered_model_name=name,
                                     pip_requirements=["scikit-learn"],
                                     **({"skops_trusted_types": trust.reviewed()} if fmt == "skops" else {}))
    refused = _adopt(csv, "models:/handover_pickle/1")
    assert refused.exit_code == 2 and "stored as cloudpickle" in refused.stderr and "skops.io.dump" in refused.stderr
    assert not (engs / "loans_acme.yaml").exists()
    adopted = _adopt(csv, "models:/handover_skops/1")
    assert adopted.exit_code == 0, adopted.stdout + adopted.stderr
    spec = load_engagement(engs / "loans_acme.yaml").retraining.estimator
    assert spec.source == "models:/handover_skops/1"
    restored = skops.io.load(tmp / "home" / "data" / spec.file, trusted=trust.reviewed())
    x = loans()[NUMERIC + CATEGORICAL]
    assert (restored.predict_proba(x) == pipeline.predict_proba(x)).all()


def test_skops_is_imported_without_flooding_the_log_with_airflow_deprecations():
    """skops's import scans every loaded module for each scipy ufunc, and Airflow's lazily re-exporting modules
    answer with a DeprecatedImportWarning each (1,160 in a first night's log). steward imports it quietly; the
    same scan run afterwards shows the warnings are real (the positive control)."""
    import subprocess
    import sys

    probe = (
        "import warnings, airflow.utils.timezone, airflow.utils.trigger_rule\n"
        "from steward.models import trust\n"
        "with warnings.catch_warnings(record=True) as quiet:\n"
        "    warnings.simplefilter('always')\n"
        "    trust.skops_io()\n"
        "import numpy, scipy.special\n"
        "from skops.io._utils import get_public_type_names\n"
        "with warnings.catch_warnings(record=True) as scan:\n"
        "    warnings.simplefilter('always')\n"
        "    get_public_type_names(module=scipy.special, oftype=numpy.ufunc)\n"
        "name = lambda ws: [w for w in ws if type(w.message).__name__ == 'DeprecatedImportWarning']\n"
        "print(len(name(quiet)), len(name(scan)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    quiet, scan = map(int, out.stdout.split()[-2:])
    assert quiet == 0 and scan > 100, (quiet, scan)
