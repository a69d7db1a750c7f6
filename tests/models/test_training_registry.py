from __future__ import annotations

import hashlib

import numpy as np
import pytest
import skops.io

from steward import demo
from steward.models import registry, training


@pytest.fixture
def ref(churn):
    return demo._churn_frame(np.random.default_rng(5), 1200, 0, 0.0, False)


def test_holdout_split_is_deterministic_and_disjoint(churn, ref):
    a_train, a_hold = training.split_holdout(churn, ref)
    b_train, b_hold = training.split_holdout(churn.model_copy(), ref.sample(frac=1, random_state=3))
    assert set(a_hold.customer_id) == set(b_hold.customer_id)
    assert not set(a_hold.customer_id) & set(a_train.customer_id)
    assert 0.2 < len(a_hold) / len(ref) < 0.4


@pytest.mark.parametrize("name", sorted(training.ESTIMATOR_CLASSES))
def test_every_allowed_estimator_round_trips_through_skops(churn, demand, name, tmp_path):
    from steward.config import CLASSIFIERS

    eng = churn if name in CLASSIFIERS else demand
    cfg = eng.model_copy(update={"retraining": eng.retraining.model_copy(update={"estimator": _spec(name)})})
    df = (demo._churn_frame if eng is churn else demo._demand_frame)(np.random.default_rng(1), 300, 0, 0.0, False)
    model = training.train(cfg, df)
    path = tmp_path / "m.skops"
    training.save_model(model, str(path))
    loaded = training.load_model(str(path))
    assert (loaded.predict(df[list(eng.features)]) == model.predict(df[list(eng.features)])).all()


def _spec(name):
    from pydantic import TypeAdapter

    from steward.config import EstimatorSpec

    return TypeAdapter(EstimatorSpec).validate_python({"name": name, "params": {}})


def test_loader_refuses_unreviewed_types(tmp_path):
    from collections import OrderedDict

    class Sneaky(OrderedDict):
        pass

    path = tmp_path / "evil.skops"
    skops.io.dump({"payload": Sneaky(a=1)}, str(path))
    with pytest.raises(skops.io.exceptions.UntrustedTypesFoundException):
        training.load_model(str(path))


def test_a_model_is_loaded_once_per_file_content_and_a_changed_file_is_loaded_and_checked_again(churn, ref, tmp_path):
    from collections import OrderedDict

    path = tmp_path / "m.skops"
    first = training.train(churn, ref)
    training.save_model(first, str(path))
    loaded = training.load_model(str(path))
    assert training.load_model(str(path)) is loaded  # the same night's next stage: no second skops load
    copy = tmp_path / "copy.skops"
    copy.write_bytes(path.read_bytes())
    assert training.load_model(str(copy)) is loaded  # the same content under another name
    other = training.train(churn, ref.iloc[::2])
    training.save_model(other, str(path))  # the file changed: its content is loaded, not the cached model
    reloaded = training.load_model(str(path))
    features = ref[list(churn.features)]
    assert reloaded is not loaded and (reloaded.predict_proba(features) == other.predict_proba(features)).all()

    class Sneaky(OrderedDict):
        pass

    skops.io.dump({"payload": Sneaky(a=1)}, str(path))  # and an unreviewed type is still refused
    with pytest.raises(skops.io.exceptions.UntrustedTypesFoundException):
        training.load_model(str(path))


def test_register_alias_and_find_by_training_key(churn, paths, ref):
    c = registry.client(paths)
    model = training.train(churn, ref)
    first = registry.log_and_register(c, paths, churn, model, training_key="k1", params={"p": 1},
                                      metrics={"m": 0.5}, tags={"steward.trained_for": "2026-03-01"})
    registry.set_alias(c, churn, registry.CHAMPION, first.version)
    assert registry.get_alias(c, churn, registry.CHAMPION).version == first.version
    assert registry.find_by_training_key(c, churn, "k1").version == first.version
    assert registry.find_by_training_key(c, churn, "other") is None
    loaded = registry.load(c, first)
    x = ref[list(churn.features)]
    assert (loaded.predict(x) == model.predict(x)).all()
    run = c.get_run(first.run_id)
    assert run.data.tags["steward.engagement"] == "churn_telco"
    assert run.data.tags[registry.TRAINING_KEY_TAG] == "k1"


@pytest.mark.parametrize("name", ["lightgbm_classifier", "xgboost_classifier"])
def test_boosters_register_in_mlflow_with_their_pinned_library_and_load_back(churn, paths, ref, name):
    """Issue 34: LightGBM and XGBoost versions go through MLflow as skops with the reviewed types, and the
    version's requirements name the library it needs, at the version this repository pins."""
    import mlflow.artifacts

    cfg = churn.model_copy(update={"retraining": churn.retraining.model_copy(update={"estimator": _spec(name)})})
    model = training.train(cfg, ref)
    c = registry.client(paths)
    version = registry.log_and_register(c, paths, cfg, model, training_key=f"k-{name}", params={}, metrics={},
                                        tags={"steward.trained_for": "2026-03-01"})
    x = ref[list(churn.features)]
    assert (registry.load(c, version).predict_proba(x) == model.predict_proba(x)).all()
    folder = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{version.name}/{version.version}")
    pins = open(f"{folder}/requirements.txt").read()
    library = {"lightgbm_classifier": "lightgbm==4.7.0", "xgboost_classifier": "xgboost-cpu==3.2.0"}[name]
    assert library in pins and "scikit-learn==" in pins


def test_a_model_file_changed_on_the_state_volume_is_not_loaded(churn, paths, ref):
    """Issue 32: the registry records the skops file's sha256 at registration; a file swapped afterwards (by
    anyone who can write the artifact store) is refused, naming both digests."""
    c = registry.client(paths)
    version = registry.log_and_register(c, paths, churn, training.train(churn, ref), training_key="k2", params={},
                                        metrics={}, tags={"steward.trained_for": "2026-03-01"})
    recorded = registry.get_version(c, churn, version.version).tags[registry.MODEL_SHA_TAG]
    stored = registry.model_file(version)  # the local store's own file
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == recorded
    other = training.train(churn, ref.sample(frac=0.5, random_state=1))
    training.save_model(other, str(stored))  # a valid skops model, of reviewed types, but not the one trained
    with pytest.raises(registry.ModelIntegrityError, match=f"v{version.version}: its model file has sha256"):
        registry.load(c, version)


def test_mlflow_server_down_fails_loudly_and_registers_nothing(churn, paths, monkeypatch):
    import datetime as dt

    from mlflow.exceptions import MlflowException

    from steward import pipeline

    ref = demo._churn_frame(np.random.default_rng(5), 600, 0, 0.0, False)
    target = paths.data_root / "churn_telco" / "reference.csv"
    target.parent.mkdir(parents=True)
    ref.to_csv(target, index=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with pytest.raises(MlflowException):
        pipeline.ensure_champion(churn, paths, dt.date(2026, 3, 1), config_hash="x", run_tags={})
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    # an outage never looks like "no champion yet": nothing was bootstrapped into the embedded store either
    assert registry.get_alias(registry.client(paths), churn, registry.CHAMPION) is None


def test_client_does_not_leak_its_store_into_the_environment(paths, tmp_path, monkeypatch):
    import os

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    registry.client(paths)
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "other"))
    from steward.settings import StewardPaths

    assert str(tmp_path / "other") in StewardPaths.from_env().tracking_uri


def test_only_a_missing_alias_or_model_counts_as_missing(churn, paths, monkeypatch):
    """Fail closed (issue 18): MLflow says INVALID_PARAMETER_VALUE both for a missing alias and for an invalid
    call; only the first may read as "no champion", or an invalid call would bootstrap a second champion."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST

    from steward import pipeline

    assert registry._missing(MlflowException("Registered model alias champion not found.", INVALID_PARAMETER_VALUE))
    assert registry._missing(MlflowException("Registered Model with name=x not found", RESOURCE_DOES_NOT_EXIST))
    assert not registry._missing(MlflowException("Invalid attribute name: tags.x", INVALID_PARAMETER_VALUE))
    assert not registry._missing(MlflowException("database is locked", INTERNAL_ERROR))
    c = registry.client(paths)
    assert registry.get_alias(c, churn, registry.CHAMPION) is None  # a real store: no model yet is "missing"

    def invalid(self, name, alias):
        raise MlflowException(f"Invalid alias name: {alias!r}", INVALID_PARAMETER_VALUE)

    monkeypatch.setattr("mlflow.MlflowClient.get_model_version_by_alias", invalid)
    with pytest.raises(MlflowException, match="Invalid alias name"):
        pipeline.ensure_champion(churn, paths, "2026-03-01", config_hash="x", run_tags={})
    assert registry._all_versions(c, churn) == []  # nothing bootstrapped behind the error


def test_labelled_growth_counts_the_labelled_dates_the_champion_did_not_learn(churn, paths, ref):
    """Trigger `growth` (ADR 0028): the champion v2 learnt 03-01..03-03 (600 rows kept beside it); the
    labelled dates after them count, the ones it learnt do not, nor labels not known yet on the night."""
    import datetime as dt
    import json

    from steward import store
    from steward.models.training_set import labelled_growth
    from steward.monitoring import reference

    kept = reference.kept_path(paths, churn.id, 2)
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.with_suffix(".json").write_text(json.dumps(
        {"version": 2, "rows": 600, "window": ["champion:v1", "2026-03-01", "2026-03-02", "2026-03-03"],
         "sha256": "0" * 64}))
    for pdate, through, rows in (("2026-03-02", "2026-03-03", 200), ("2026-03-04", "2026-03-05", 250),
                                 ("2026-03-05", "2026-03-06", 260), ("2026-03-06", "2026-03-09", 300)):
        store.replace_rows(paths, store.performance, {"engagement": churn.id, "prediction_date": pdate}, [{
            "engagement": churn.id, "prediction_date": pdate, "metric": "roc_auc", "realised_value": 0.8,
            "labelled_rows": rows, "model_version": 1, "estimated_value": None, "estimate_error": None,
            "labels_through": through, "report_html": None}])
    champion = {"version": 2, "tags": {"steward.trained_for": "2026-03-04"}}
    assert labelled_growth(churn, paths, dt.date(2026, 3, 7), champion) == \
        {"new_rows": 510, "nights": 2, "champion_rows": 600, "version": 2}
    assert labelled_growth(churn, paths, dt.date(2026, 3, 9), champion)["new_rows"] == 810
    # the bootstrap champion learnt the reference file: every labelled date is new
    demo.generate("churn_telco", paths.data_root, nights=0)
    first = labelled_growth(churn, paths, dt.date(2026, 3, 9), {"version": 1, "tags": {}})
    assert first["nights"] == 4 and first["new_rows"] == 1010 and first["champion_rows"] > 1000
