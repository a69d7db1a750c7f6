"""The nightly stages as plain functions: each takes small JSON from the previous stage, does its
work on files and stores, and returns small JSON for the next. The Airflow layer only wires them.

Nothing here imports Airflow; the CLI, the tests and the DAG call the same functions.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from steward import mlflow_tags, policy
from steward.config import AdoptedSpec, Engagement, ObjectStorageSource, SqlSource
from steward.digests import key as _key
from steward.models.training_set import TrainingSet, labelled_batch, labelled_growth, training_window
from steward.operations import faults
from steward.results import LastCandidate, PromotionResult, RetrainDecision
from steward.settings import StewardPaths
from steward.sources import batches
from steward.sources.object_source import Open
from steward.sources.sql_source import Connect

if TYPE_CHECKING:
    import pandas as pd

Result = dict[str, Any]
KIND_TAG = mlflow_tags.KIND  # bootstrap | candidate
TRIGGERS_TAG = mlflow_tags.TRIGGERS  # the triggers a candidate was trained for (comma-separated)
QUIET_TAG = mlflow_tags.QUIET  # "true" when trained on a night nothing alarmed on (ADR 0034)
REFERENCE_TAG = mlflow_tags.DRIFT_REFERENCE  # sha256 of the drift reference the night a candidate was trained
F = TypeVar("F", bound=Callable[..., Result])


def timed(stage: str) -> Callable[[F], F]:
    """Stamp each stage result with its name, start time and duration (for the audit record)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Result:
            started = dt.datetime.now(dt.UTC)
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            out["timing"] = {"stage": stage, "started_at": started.isoformat(), "duration_s": round(time.perf_counter() - t0, 3)}
            return out

        return inner  # type: ignore[return-value]

    return wrap


def _day(logical_date: str | dt.date) -> dt.date:
    return logical_date if isinstance(logical_date, dt.date) else dt.date.fromisoformat(str(logical_date)[:10])


def run_dir(eng: Engagement, paths: StewardPaths, logical_date: str | dt.date) -> Path:
    d = paths.run_dir(eng.id, _day(logical_date).isoformat())
    d.mkdir(parents=True, exist_ok=True)
    return d


# --- 1. land -------------------------------------------------------------------------------------


@timed("land_batch")
def land(eng: Engagement, paths: StewardPaths, logical_date: str | dt.date, connect: Connect | None = None,
         open_path: Open | None = None) -> Result:
    """Land and fingerprint the batch. Raises BatchMissingError when there is no file (or no rows) for
    the date, ResidencyError when the engagement's region is not the storage region. A SQL source is
    snapshotted in its database first (steward.sources.sql_source); `connect` opens its connection."""
    from steward.governance.retention import check_residency

    check_residency(eng)
    day = _day(logical_date)
    if isinstance(eng.data, SqlSource):
        from steward.sources import sql_source

        landed, staged, sample = sql_source.land(eng, paths, day, _connect(connect, eng.data.conn_id))
        batch = {**landed.to_dict(), "sql": staged.to_dict(), "sample": sample}
    elif isinstance(eng.data, ObjectStorageSource):
        from steward.sources import object_source

        if open_path is None:
            raise ValueError(f"{eng.id}: {eng.data.url}: this stage reads object storage and was given no way to open it")
        batch = {**object_source.land(eng, paths, day, open_path).to_dict(), "object": object_source.dataset(
            object_source.night_url(eng, day))}
    else:
        batch = batches.land_batch(eng, paths, day).to_dict()
    ref = batches.reference_path(eng, paths)
    result: Result = {
        "batch": batch,
        "reference": {"path": str(ref), "sha256": batches.sha256_file(ref)},
        "profile": None,
        "read_error": None,
    }
    try:
        result["profile"] = batches.profile(batches.read_for(eng, batch["path"]))
    except batches.BatchReadError as exc:
        result["read_error"] = str(exc)
    if batch.get("sample") and result["profile"]:  # the profile is of the sample; the night is larger
        result["profile"].update(rows=batch["sql"]["rows"], profiled_rows=batch["sample"]["rows"])
    return result


# --- 2. validate / quarantine --------------------------------------------------------------------


def batch_arrived(eng: Engagement, paths: StewardPaths, day: dt.date, connect: Connect | None = None,
                  open_path: Open | None = None) -> bool:
    """Whether the night's batch is there yet (the late-batch sensor's question), for every kind of source."""
    if isinstance(eng.data, SqlSource):
        from steward.sources import sql_source

        return sql_source.has_rows(eng, _connect(connect, eng.data.conn_id), day)
    if isinstance(eng.data, ObjectStorageSource):
        from steward.sources import object_source

        if open_path is None:
            raise ValueError(f"{eng.id}: {eng.data.url}: no way to open object storage was given")
        return object_source.arrived(eng, day, open_path)
    return batches.incoming_path(eng, paths, day).is_file()


def _connect(connect: Connect | None, conn_id: str) -> Any:
    if connect is None:
        raise ValueError(f"connection {conn_id!r}: this stage reads SQL and was given no way to connect")
    return connect(conn_id)


@timed("validate_batch")
def validate(eng: Engagement, paths: StewardPaths, logical_date: str | dt.date, landed: Result,
             connect: Connect | None = None) -> Result:
    """The engagement's rules on the batch: in the database for a SQL source (its snapshot), else on the
    landed file."""
    from steward.checks import quality

    day = _day(logical_date)
    staged = landed["batch"].get("sql")
    if staged:
        from steward.sources import sql_source

        engine = _connect(connect, staged["conn_id"])
        result = quality.validate_table(eng, engine, staged)
        infinite = sql_source.non_finite_counts(eng, engine, staged, eng.numeric_features)
        result = quality.with_check(result, "values_are_finite", not infinite,
                                    f"infinite values: {infinite}" if infinite else None)
    elif landed["read_error"]:
        result = quality.unreadable_result(landed["read_error"])
    else:
        df = batches.read_for(eng, landed["batch"]["path"])
        result = quality.validate_frame(eng, df)
        if eng.column_types:
            from steward.sources import schema

            result = quality.with_schema_checks(result, schema.mismatches(df, eng.column_types))
        infinite = quality.infinite_values(eng, df)
        result = quality.with_check(result, "values_are_finite", not infinite,
                                    f"infinite values: {infinite}" if infinite else None)
    resent = _resent_from(eng, paths, day, landed["batch"]["sha256"])
    result = quality.with_check(result, "batch_is_not_a_resend", resent is None,
                                None if resent is None else f"byte-identical to the batch of {resent}: sent for the wrong date?")
    out = run_dir(eng, paths, day)
    report = out / "quality_report.html"
    batches.atomic_write_bytes(report, quality.render_html(eng, day.isoformat(), result).encode())
    batches.atomic_write_json(out / "quality.json", result)
    return {**result, "report_html": str(report), "result_json": str(out / "quality.json")}


def _resent_from(eng: Engagement, paths: StewardPaths, day: dt.date, sha256: str) -> str | None:
    """The other night whose batch had exactly these bytes, if any (from the ledger's records)."""
    from steward.governance import ledger

    for entry in ledger.read_entries(paths, eng.id):
        record = entry.get("record") or {}
        batch = (record.get("data") or {}).get("batch") or {}
        if entry["type"] == "run" and entry["logical_date"] != day.isoformat() and batch.get("sha256") == sha256:
            return entry["logical_date"]
    return None


@timed("quarantine_batch")
def quarantine(eng: Engagement, paths: StewardPaths, logical_date: str | dt.date, landed: Result, quality: Result,
               connect: Connect | None = None) -> Result:
    """Set the batch aside with its reasons: the landed copy moves to the quarantine folder, a SQL
    night's snapshot is renamed into its quarantine table (the client's table is never touched)."""
    day = _day(logical_date)
    dest = batches.quarantine_dir(eng, paths, day)
    staged = landed["batch"].get("sql")
    if staged:
        from steward.sources import sql_source

        staged = sql_source.quarantine(eng, _connect(connect, staged["conn_id"]), staged)
    reasons = {
        "engagement": eng.id,
        "logical_date": day.isoformat(),
        "batch_sha256": landed["batch"]["sha256"],
        "source_path": landed["batch"]["source_path"],
        "quarantined_at": dt.datetime.now(dt.UTC).isoformat(),
        "failed_expectations": quality["failed"],
        "validation_report": quality["report_html"],
        **({"sql": staged} if staged else {}),
    }
    moved = batches.quarantine(Path(landed["batch"]["path"]), dest, reasons)
    return {
        **({"quarantine_table": f"{staged['schema']}.{staged['table']}", "key_range": staged["key_range"]}
           if staged else {}),
        "quarantine_path": str(moved),
        "reasons_path": str(dest / "reasons.json"),
        "failed_checks": len(quality["failed"]),
        "sha256": batches.sha256_file(moved),
    }


# --- 3. champion bootstrap and monitoring --------------------------------------------------------


def _read_reference(eng: Engagement, paths: StewardPaths) -> pd.DataFrame:
    return batches.read_for(eng, batches.reference_path(eng, paths))


@timed("ensure_champion")
def ensure_champion(
    eng: Engagement, paths: StewardPaths, logical_date: str | dt.date, *, config_hash: str, run_tags: dict[str, str]
) -> Result:
    """Return the champion; on the first run, bootstrap one from the reference data."""
    from steward.models import model_card, registry, training

    day = _day(logical_date)
    c = registry.client(paths)
    # Start from the champion of that night (not today's), so reruns and backfills reproduce the night.
    champion = registry.champion_for_night(c, eng, day.isoformat()) or registry.get_alias(c, eng, registry.CHAMPION)
    if champion is not None:
        return {"champion": champion.to_dict(), "bootstrapped": False,
                "model_file": str(registry.model_file(champion))}
    ref_path = batches.reference_path(eng, paths)
    ref_sha = batches.sha256_file(ref_path)
    key = _key("bootstrap", eng.id, ref_sha, eng.retraining.estimator.model_dump(), config_hash)
    found = registry.find_by_training_key(c, eng, key)
    documents: list[str] = []
    if found is None and isinstance(eng.retraining.estimator, AdoptedSpec):
        found, documents = _register_adopted(eng, paths, c, day, key, ref_sha, run_tags)
    elif found is None:
        ref = training.labelled(eng, _read_reference(eng, paths))
        train_df, holdout = training.split_holdout(eng, ref)
        found, model = _train_and_register(
            eng, paths, c, train_df, holdout, training_key=key,
            tags={**run_tags, mlflow_tags.TRAINED_FOR: day.isoformat(), mlflow_tags.DATA_FINGERPRINT: ref_sha,
                  mlflow_tags.REASON: "bootstrap from reference data", mlflow_tags.RUN_NAME: f"{eng.id} bootstrap",
                  KIND_TAG: "bootstrap"},
        )
        documents = model_card.document_version(
            eng, paths, c, found, model, holdout, day=day, reason="bootstrap from reference data", window=[],
            fingerprint=ref_sha, train_rows=len(train_df), comparison=None)["files"]
    registry.tag_version(c, eng, found.version, {registry.PROMOTED_FOR_TAG: day.isoformat(), registry.REPLACED_TAG: ""})
    registry.set_alias(c, eng, registry.CHAMPION, found.version)
    found = registry.get_version(c, eng, found.version)
    return {"champion": found.to_dict(), "bootstrapped": True, "model_file": str(registry.model_file(found)),
            "documents": documents}


def _register_adopted(eng: Engagement, paths: StewardPaths, c: Any, day: dt.date, key: str, ref_sha: str,
                      run_tags: dict[str, str]) -> tuple[Any, list[str]]:
    """Champion v1 is the adopted model as handed over (its pinned file, not refitted), scored on the labelled
    reference for its baseline metrics; alias `adopted` keeps it findable for a rollback (ADR 0032)."""
    from steward.models import adoption, model_card, registry, training

    spec = eng.retraining.estimator
    assert isinstance(spec, AdoptedSpec)
    model = adoption.template(eng, paths)
    ref = training.labelled(eng, _read_reference(eng, paths))
    reason = f"adopted from {spec.source} (sha256 {spec.sha256[:12]}…, by {spec.adopted_by} on {spec.adopted_on})"
    found = registry.log_and_register(
        c, paths, eng, model, training_key=key,
        params={"estimator": "adopted", "adopted_kind": spec.kind, "adopted_type": type(model).__name__,
                "reference_rows": len(ref)},
        metrics={f"reference_{k}": v for k, v in training.holdout_metrics(eng, model, ref).items()},
        tags={**run_tags, mlflow_tags.TRAINED_FOR: day.isoformat(), mlflow_tags.DATA_FINGERPRINT: ref_sha,
              mlflow_tags.REASON: reason, mlflow_tags.RUN_NAME: f"{eng.id} adopted", KIND_TAG: "bootstrap",
              mlflow_tags.ADOPTED_FROM: spec.source[:4000], mlflow_tags.ADOPTED_SHA: spec.sha256})
    registry.set_alias(c, eng, registry.ADOPTED, found.version)
    documents = model_card.document_version(
        eng, paths, c, found, model, ref, day=day, reason=reason, window=[], fingerprint=ref_sha,
        train_rows=0, comparison=None)["files"]
    return found, documents


@timed("detect_drift")
def monitor(eng: Engagement, paths: StewardPaths, logical_date: str | dt.date, landed: Result, champion: Result) -> Result:
    """Score the batch with the champion, then drift against the champion's reference (on a window of
    recent nights when the batch is small, on a seeded sample when it is large), performance and
    per-group fairness on the labelled rows (ADR 0012)."""
    from steward.checks import quality_rates
    from steward.models import fairness, registry, training
    from steward.monitoring import drift, reference
    from steward.monitoring import windows as monitoring
    from steward.sources import sampling

    day = _day(logical_date)
    out = run_dir(eng, paths, day)
    c = registry.client(paths)
    model = registry.load(c, registry.ModelRef(**champion["champion"]))
    tonight = batches.read_for(eng, landed["batch"]["path"])
    window_frame, window = monitoring.drift_window(eng, paths, day, tonight)
    current_rows = training.predict(eng, model, window_frame)  # scored once: tonight's rows come first
    batch = current_rows.iloc[:len(tonight)]
    ref = reference.for_champion(eng, paths, champion["champion"])
    if not window["enough"]:
        drift_result = monitoring.not_enough_data(eng, window)
    else:
        reference_rows, reference_sample = reference.profile(eng, paths, ref, model, champion["champion"]["version"])
        seed = sampling.seed_for(eng.id, day.isoformat(), landed["batch"]["sha256"])
        current = sampling.uniform(current_rows, eng.drift.sample_rows, seed)
        drift_result = drift.detect_drift(eng, reference_rows, current, out)
        drift_result["sample"] = {"reference": reference_sample,
                                  "batch": sampling.described(len(current_rows), len(current), seed)}
    quality_drift = quality_rates.judge(eng, paths, day, tonight, _read_reference(eng, paths))
    drift_result = monitoring.counted_once(drift_result, quality_drift)
    drift_result["reference"] = ref.to_dict()
    drift_result["window"] = window
    monitoring.record_night(eng, paths, day, drift_result, window, drift_result["reference"])
    held = monitoring.persistence(eng, paths, day, ref.sha256)
    drift_result["persistence"] = held
    drift_result["persistent"] = bool(drift_result["dataset_drift"] and held["persistent"])
    labelled = training.labelled(eng, batch)
    performance = drift.measure_performance(eng, labelled, out) if len(labelled) else \
        {"metrics": {}, "not_computable": {}, "rows": 0}
    performance["champion_version"] = champion["champion"]["version"]
    _store_night_history(eng, paths, _day(logical_date), drift_result, performance)
    if eng.labels is None and not landed["batch"].get("sample"):
        # labels came inside the batch: tonight's outcomes are known and priced tonight (a night larger than its
        # landed sample was priced whole while it was scored from the database)
        from steward.operations import value

        value.record(eng, paths, day.isoformat(), day, labelled, scored_rows=len(batch),
                     model_version=champion["champion"]["version"])
    return {"drift": drift_result, "performance": performance, "fairness": fairness.group_metrics(eng, labelled),
            "quality_drift": quality_drift}


def _store_night_history(eng: Engagement, paths: StewardPaths, day: dt.date, drift_result: Result,
                         performance: Result) -> None:
    """Per-feature drift scores, and (when labels come inside the batch) the night's realised performance."""
    from steward import store

    iso = day.isoformat()
    store.replace_rows(paths, store.drift_scores, {"engagement": eng.id, "logical_date": iso}, [
        {"engagement": eng.id, "logical_date": iso, "feature": f, "score": e["score"], "drifted": e["drifted"]}
        for f, e in drift_result["features"].items()])
    value = performance["metrics"].get(eng.performance.metric)
    if eng.labels is None and performance["rows"]:
        served = store.select_rows(paths, store.predictions, {"engagement": eng.id, "prediction_date": iso})
        estimated = served[0]["estimated_value"] if served else None
        store.replace_rows(paths, store.performance, {"engagement": eng.id, "prediction_date": iso}, [{
            "engagement": eng.id, "prediction_date": iso, "metric": eng.performance.metric, "realised_value": value,
            "labelled_rows": performance["rows"], "model_version": performance["champion_version"],
            "estimated_value": estimated,
            "estimate_error": None if estimated is None or value is None else round(estimated - value, 6),
            "labels_through": iso, "report_html": performance.get("report_html"),
            "not_computable": (performance.get("not_computable") or {}).get(eng.performance.metric)}])


# --- 3b. labels, outcomes and scoring ------------------------------------------------------------


@timed("join_labels")
def join_labels(eng: Engagement, paths: StewardPaths, logical_date: str | dt.date, connect: Connect | None = None) -> Result:
    """Join the labels that arrived tonight to the predictions they belong to; realised performance; the
    client's feedback on what it acted on (adoption)."""
    from steward.operations import value
    from steward.sources import labels

    day = _day(logical_date)
    engine = _connect(connect, eng.labels.conn_id) if eng.labels is not None and eng.labels.source == "sql" else None
    result = labels.join(eng, paths, day, run_dir(eng, paths, day), engine)
    result["adoption"] = value.record_adoption(eng, paths, day)
    return result


@timed("check_outcomes")
def check_outcomes(eng: Engagement, paths: StewardPaths, logical_date: str | dt.date) -> Result:
    """Performance SLA on realised outcomes, and the configured response (incident, rollback, retrain)."""
    from steward.monitoring import outcomes

    return outcomes.check(eng, paths, _day(logical_date))


@timed("score_batch")
def score(eng: Engagement, paths: StewardPaths, logical_date: str | dt.date, landed: Result, champion: Result,
          connect: Connect | None = None) -> Result:
    """Predictions the client consumes, stored with the model version (and the CBPE estimate), and
    written to the engagement's predictions sink when it has one."""
    from steward.models import predictions, registry

    c = registry.client(paths)
    ref = registry.ModelRef(**champion["champion"])
    day = _day(logical_date)
    model = registry.load(c, ref)
    sink = eng.predictions.sink
    if landed["batch"].get("sample"):  # a night larger than its landed sample: scored whole, from the database
        return _score_from_database(eng, paths, day, landed, model, ref.version, connect)
    result = predictions.score_batch(eng, paths, day, batches.read_for(eng, landed["batch"]["path"]),
                                     model, ref.version, calibration_rows(eng, paths, day))
    if sink is not None:
        import pandas as pd

        from steward.sources import sql_source

        engine = _connect(connect, sink.conn_id)
        rows = sql_source.write_predictions(eng, engine, sink.conn_id, sink.table, day, pd.read_parquet(result["path"]))
        result["sink"] = {"conn_id": sink.conn_id, "table": sink.table, "rows": rows, **sql_source.dataset(engine, sink.table)}
    return result


@timed("score_baselines")
def score_baselines(eng: Engagement, paths: StewardPaths, logical_date: str | dt.date, landed: Result) -> Result:
    """The counterfactual baselines (never retrained, periodic refit) score tonight's batch, never served;
    when the labels come inside the batch, tonight's comparison is realised at once (ADR 0025)."""
    from steward.models import baselines

    day = _day(logical_date)
    if not eng.baselines.enabled:
        return {"enabled": False}
    try:
        result = baselines.score(eng, paths, day, batches.read_for(eng, landed["batch"]["path"]))
        result["realised"] = baselines.realise(eng, paths, day.isoformat(), day) if eng.labels is None else None
    except Exception as exc:  # noqa: BLE001 - a yardstick that fails must not fail the night it measures
        import logging

        logging.getLogger(__name__).warning("baselines not scored tonight: %s: %s", type(exc).__name__, exc)
        return {"enabled": True, "error": f"{type(exc).__name__}: {exc}"}
    return {"enabled": True, **result}


def _score_from_database(eng: Engagement, paths: StewardPaths, day: dt.date, landed: Result, model: Any,
                         version: int, connect: Connect | None) -> Result:
    """Every row of the night scored in chunks from its snapshot; the CBPE estimate from the landed sample
    (a seeded sample of the same night: the estimate of a share needs no more)."""
    from contextlib import nullcontext

    from steward.models import predictions
    from steward.sources import sql_source

    staged = landed["batch"]["sql"]
    engine = _connect(connect, staged["conn_id"])
    path = predictions.predictions_path(eng, paths, day)
    sink = eng.predictions.sink
    sink_engine = _connect(connect, sink.conn_id) if sink is not None else None
    writer = sql_source.Sink(eng, sink_engine, sink.conn_id, sink.table, day) if sink is not None else nullcontext()
    with writer as open_sink:
        scored = sql_source.score_night(eng, engine, staged, model, version, path, open_sink)
    rows = scored["rows"]
    if eng.labels is None and eng.business is not None:  # every row's outcome is known tonight: priced whole
        from steward.operations import value

        value.record_counts(eng, paths, day.isoformat(), day, scored["counts"], labelled_rows=scored["labelled_rows"],
                            scored_rows=rows, model_version=version)
    calibration = calibration_rows(eng, paths, day)
    estimated = None if calibration is None else predictions.estimate_night(
        eng, model, calibration, predictions.served_frame(eng, batches.read_for(eng, landed["batch"]["path"]), model,
                                                          version))
    result = predictions.record(eng, paths, day, path, version, rows, estimated)
    result["sample"] = {"estimate_from_rows": landed["batch"]["sample"]["rows"]}
    if sink is not None:
        result["sink"] = {"conn_id": sink.conn_id, "table": sink.table, "rows": rows,
                          **sql_source.dataset(sink_engine, sink.table)}
    return result


def calibration_rows(eng: Engagement, paths: StewardPaths, day: dt.date) -> pd.DataFrame | None:
    """Labelled rows for calibrating the CBPE estimate: the newest batch whose labels have arrived (its hash
    holdout was never trained on), else the reference data. None when labels come inside the batch: the
    realised value is known the same night, there is nothing to estimate."""
    if eng.labels is None:
        return None
    newest = training_window(eng, paths, day, 1)
    if newest:
        (batch_day, path), = newest
        return labelled_batch(eng, paths, batch_day, path, day)
    return _read_reference(eng, paths)


@timed("raise_alerts")
def raise_alerts(eng: Engagement, paths: StewardPaths, logical_date: str | dt.date, results: dict[str, Result | None]
                 ) -> Result:
    """End-of-night conditions and SLAs; incidents opened or resolved; alerts queued (sent by the caller)."""
    from steward.operations import alerts

    monitoring = results.get("detect_drift") or {}
    return alerts.end_of_night(eng, paths, _day(logical_date), landed=results.get("land_batch") is not None,
                               quality=results.get("validate_batch"), drift=monitoring.get("drift"),
                               scored=results.get("score_batch"), quality_drift_judged=monitoring.get("quality_drift"))


# --- 4. decide -----------------------------------------------------------------------------------


@timed("decide_retrain")
def decide(eng: Engagement, paths: StewardPaths, logical_date: str | dt.date, monitoring: Result, champion: Result,
           outcome: Result | None = None) -> RetrainDecision:
    from steward.models import registry

    day = _day(logical_date)
    versions = registry.trained_before(registry.client(paths), eng, day.isoformat())
    history = training_history(versions, day)
    trained_for = champion["champion"]["tags"].get(mlflow_tags.TRAINED_FOR)
    trained = [_day(trained_for)] if trained_for else []
    if history.last_candidate is not None:
        trained.append(history.last_candidate.day)
    newest = max(trained, default=None)
    age = (day - newest).days if newest else None  # a scheduled refresh counts from the last model trained
    response = (outcome or {}).get("response") or {}
    requested = None
    if response.get("retrain_requested"):
        requested = f"realised performance SLA breached (incident #{response['incident']}): " + \
            outcome["performance_sla"]["detail"]  # type: ignore[index]
    refit = None
    if "refit" in eng.retraining.triggers and eng.baselines.enabled:
        from steward.models import baselines

        refit, _ = baselines.refit_evidence(
            eng, paths, day, champion["champion"]["version"], trained_for,
            trained_for={int(v.version): v.tags.get(mlflow_tags.TRAINED_FOR, "") for v in versions})
    growth = None
    if "growth" in eng.retraining.triggers and eng.labels is not None:
        # counted from the newest model trained: a candidate refused on these rows learnt them already
        last = history.last_candidate
        newest = {"version": last.version, "tags": {}} if last is not None and \
            last.version > int(champion["champion"]["version"]) else champion["champion"]
        growth = labelled_growth(eng, paths, day, newest)
    decision = policy.decide_retrain(
        eng, drift=monitoring["drift"], performance=monitoring["performance"], champion_age_days=age,
        performance_request=requested, refit_evidence=refit,
        champion_days=(day - _day(trained_for)).days if trained_for else None, growth=growth,
    )
    reference_sha = ((monitoring["drift"] or {}).get("reference") or {}).get("sha256")
    decision = policy.without_acted_drift(decision, history.last_candidate, reference_sha)
    decision = policy.held_for_quality(eng, decision, monitoring.get("quality_drift"))
    quiet = policy.is_quiet(decision, monitoring.get("quality_drift"))
    pending = registry.shadow_among(versions, day.isoformat())  # it entered before tonight: trained before it too
    shadow = None if pending is None else policy.InShadow(pending.version, pending.tags[registry.SHADOW_SINCE_TAG])
    superseding = policy.supersedes(decision, shadow)
    decision = policy.facing_shadow(decision, shadow)
    if decision.action == "retrain":
        training_set = TrainingSet(eng, paths, day, decision.triggers, champion["champion"])
        problems = training_set.problems or policy.why_no_candidate(eng, day, decision.triggers,
                                                                    training_set.fingerprint, history, quiet)
        decision = policy.with_training_problems(decision, problems, shadow)
    last = history.last_candidate
    return RetrainDecision(
        **decision.to_dict(), champion_age_days=age, decided_by="steward.policy.decide_retrain",
        supersedes=shadow.version if shadow is not None and superseding and decision.action == "retrain" else None,
        drift_reference_sha256=reference_sha,
        last_candidate=None if last is None else LastCandidate(version=last.version, day=last.day.isoformat(),
                                                               triggers=list(last.triggers)),
        candidates_last_30_days=history.candidates_last_30_days, quiet=quiet,
        quiet_candidates_last_30_days=history.quiet_candidates_last_30_days)


def training_history(versions: list[Any], day: dt.date) -> policy.TrainingHistory:
    """The candidates (not bootstraps) among the versions trained before `day`."""
    candidates = [v for v in versions if v.tags.get(KIND_TAG, "candidate") == "candidate"
                  and not v.tags.get(mlflow_tags.REASON, "").startswith("bootstrap")]
    if not candidates:
        return policy.TrainingHistory()
    newest = candidates[-1]
    recent = [v for v in candidates if (day - _day(v.tags[mlflow_tags.TRAINED_FOR])).days < 30]
    return policy.TrainingHistory(
        last_candidate=policy.Candidate(
            version=newest.version, day=_day(newest.tags[mlflow_tags.TRAINED_FOR]),
            triggers=tuple(t for t in newest.tags.get(TRIGGERS_TAG, "").split(",") if t),
            fingerprint=newest.tags.get(mlflow_tags.DATA_FINGERPRINT, ""),
            drift_reference=newest.tags.get(REFERENCE_TAG, ""),
            retired_in_shadow=_retired_before(newest.tags, day)),
        candidates_last_30_days=len(recent),
        quiet_candidates_last_30_days=sum(v.tags.get(QUIET_TAG) == "true" for v in recent))


def _retired_before(tags: dict[str, str], day: dt.date) -> str:
    """The night a candidate was retired in shadow, if that was before `day` (a rerun sees what that night saw)."""
    from steward.models import registry

    decided = tags.get(registry.SHADOW_DECIDED_TAG, "")
    return decided if tags.get(registry.SHADOW_VERDICT_TAG) == "retired" and decided < day.isoformat() else ""


def _train_and_register(
    eng: Engagement,
    paths: StewardPaths,
    c: Any,
    train_df: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    training_key: str,
    tags: dict[str, str],
    extra_params: dict[str, Any] | None = None,
    artifacts: dict[str, Any] | None = None,
    sample_weight: Any = None,
    final: tuple[pd.DataFrame, Any] | None = None,
) -> tuple[Any, Any]:
    """Fit the configured pipeline, score it on the holdout and register it as a new MLflow version.

    With `final` (rows, weights), the version registered is the same recipe refitted on those rows (the
    window with its holdout, ADR 0026); the fit scored on the holdout is kept beside it (steward.models.gate_fit).
    Returns the version and the model the holdout judged."""
    from steward.models import gate_fit, registry, training

    model = training.train(eng, train_df, sample_weight)
    metrics = training.holdout_metrics(eng, model, holdout)
    served, params = model, {}
    if final is not None:
        served = training.train(eng, final[0], final[1])
        tags = {**tags, gate_fit.SHA_TAG: gate_fit.keep(paths, eng.id, training_key, model)}
        params = {"final_fit": "window", "final_rows": len(final[0])}
    ref = registry.log_and_register(
        c, paths, eng, served,
        training_key=training_key,
        params={"estimator": eng.retraining.estimator.name, **eng.retraining.estimator.params.model_dump(),
                "train_rows": len(train_df), "holdout_rows": len(holdout), **params, **(extra_params or {})},
        metrics={f"holdout_{k}": v for k, v in metrics.items()},
        tags=tags,
        artifacts=artifacts,
    )
    return ref, model


# --- 5. retrain ----------------------------------------------------------------------------------


@timed("retrain_candidate")
def retrain(
    eng: Engagement,
    paths: StewardPaths,
    logical_date: str | dt.date,
    champion: Result,
    decision: Result,
    *,
    config_hash: str,
    run_tags: dict[str, str],
) -> Result:
    """Train a challenger on the window (ADR 0024); the newest nights are kept out for the gate. The window's
    rows are kept with the version: they become the drift reference if it is promoted, and the rows the next
    candidate starts from."""
    from steward.models import evidence, gate_fit, model_card, registry, shadow, training
    from steward.monitoring import reference

    day = _day(logical_date)
    training_set = TrainingSet(eng, paths, day, decision.get("triggers", []), champion["champion"])
    if training_set.problems:  # decide_retrain checked the same set: reaching this means the data changed
        raise batches.BatchMissingError("; ".join(training_set.problems))
    fingerprints, train_df, holdout = training_set.fingerprints, training_set.train, training_set.holdout
    holdout_batches = [d.isoformat() for d in training_set.holdout_days]
    out_of_time = len(holdout_batches) < len(training_set.window)  # a share of every batch names them all
    key = _key("retrain", eng.id, day.isoformat(), fingerprints, config_hash)
    # the version serves the recipe refitted on the whole window, holdout included (ADR 0026)
    refit_window = eng.retraining.final_fit == "window" and len(holdout) > 0
    c = registry.client(paths)
    challenger = registry.find_by_training_key(c, eng, key)
    reused = challenger is not None
    if challenger is None:
        described = training_set.describe()
        challenger, model = _train_and_register(
            eng, paths, c, train_df, holdout, training_key=key,
            extra_params={"window": ",".join(fingerprints)[:6000], "window_mode": training_set.mode,
                          "recency_half_life_days": eng.retraining.recency_half_life_days},
            sample_weight=training_set.weights,
            final=(training_set.final_rows, training_set.final_weights) if refit_window else None,
            tags={**run_tags, mlflow_tags.TRAINED_FOR: day.isoformat(),
                  shadow.HOLDOUT_NIGHTS_TAG: ",".join(holdout_batches) if out_of_time else "",
                  shadow.HOLDOUT_SAMPLE_TAG: "" if out_of_time else ",".join(holdout_batches),
                  mlflow_tags.DATA_FINGERPRINT: _key(fingerprints), KIND_TAG: "candidate",
                  TRIGGERS_TAG: ",".join(decision.get("triggers") or []),
                  QUIET_TAG: "true" if decision.get("quiet") else "false",
                  REFERENCE_TAG: decision.get("drift_reference_sha256") or "",
                  mlflow_tags.REASON: "; ".join(decision["reasons"])[:4000],
                  mlflow_tags.RUN_NAME: f"{eng.id} {day.isoformat()} retrain"},
            artifacts={"training_window.json": {"batches": fingerprints, "train_rows": len(train_df),
                                                "holdout_rows": len(holdout), "holdout_batches": holdout_batches,
                                                **described}},
        )
        faults.maybe_die(eng.id, "retrain.after_register")  # worst moment: the version exists, the task has not finished
    else:  # a rerun judges the fit its gate judged, never the refit that learnt the holdout
        model = gate_fit.load(paths, eng.id, challenger.version, challenger.tags) or registry.load(c, challenger)
    if decision.get("supersedes"):  # the challenger it replaces leaves the shadow tonight (ADR 0025)
        superseded = int(decision["supersedes"])
        if registry.SHADOW_DECIDED_TAG not in registry.get_version(c, eng, superseded).tags:
            registry.tag_version(c, eng, superseded, {registry.SHADOW_DECIDED_TAG: day.isoformat(),
                                                      registry.SHADOW_VERDICT_TAG: "superseded"})
        in_alias = registry.get_alias(c, eng, registry.SHADOW)
        if in_alias is not None and in_alias.version == superseded:
            registry.delete_alias(c, eng, registry.SHADOW)
    kept = reference.keep_training_data(eng, paths, challenger.version, training_set.rows,
                                        [k for k in fingerprints if k.startswith("champion:")] + training_set.learnt_nights())
    if not reused and challenger.run_id:
        registry.log_files(c, challenger.run_id, [kept], artifact_path=reference.MLFLOW_FOLDER)
    champion_ref = registry.ModelRef(**champion["champion"])
    champion_model = registry.load(c, champion_ref)
    metric = eng.promotion.metric
    scores = {"challenger": training.score(eng, model, holdout, metric),
              "champion": training.score(eng, champion_model, holdout, metric)}
    by_batch = {d.isoformat(): {"challenger": training.score(eng, model, training_set.frames[d], metric),
                                "champion": training.score(eng, champion_model, training_set.frames[d], metric)}
                for d in training_set.holdout_days} if out_of_time else {}
    # the gate's evidence: both models on the holdout, clustered by night (one cluster: a share of every batch)
    held = {d: training_set.frames[d] for d in training_set.holdout_days} if out_of_time else {"sample": holdout}
    gate_evidence, not_comparable = evidence.on_nights(eng, model, champion_model, held)
    documents = model_card.document_version(
        eng, paths, c, challenger, model, holdout, day=day, reason="; ".join(decision["reasons"]),
        window=list(fingerprints), fingerprint=_key(fingerprints), train_rows=len(train_df),
        comparison={"metric": metric, "champion_version": champion_ref.version, **scores},
        holdout_batches=holdout_batches if out_of_time else None, log_to_mlflow=not reused,
    )
    latest_challenger = registry.get_alias(c, eng, registry.CHALLENGER)
    if latest_challenger is None or latest_challenger.version < challenger.version:
        registry.set_alias(c, eng, registry.CHALLENGER, challenger.version)
    return {
        "challenger": challenger.to_dict(),
        "model_file": str(registry.model_file(challenger)),
        "reused_existing_version": reused,
        "training": {"window": fingerprints, "train_rows": len(train_df), "data_fingerprint": _key(fingerprints),
                     **training_set.describe()},
        "holdout_rows": len(holdout),
        "holdout": {"method": "newest_nights" if out_of_time else "sample", "batches": holdout_batches,
                    "scores_by_batch": by_batch},
        "metric": metric,
        "scores": scores,
        "evidence": gate_evidence,
        "not_comparable": not_comparable,
        "triggers": list(decision.get("triggers") or []),
        "fairness": documents["fairness"],
        "documents": documents["files"],
    }


# --- 6. gate and promote -------------------------------------------------------------------------


@timed("gate_and_promote")
def promote(
    eng: Engagement, paths: StewardPaths, logical_date: str | dt.date, retrained: Result, champion: Result
) -> Result:
    """Gate against the champion the night started from; move the alias only on a pass (idempotent)."""
    from steward.models import fairness, registry

    day = _day(logical_date)
    c = registry.client(paths)
    night_champion = champion["champion"]["version"]
    challenger = retrained["challenger"]["version"]
    verdict = policy.gate(
        eng,
        champion_version=night_champion,
        challenger_version=challenger,
        evidence=retrained.get("evidence"),
        fairness_gap=fairness.worst_gap(eng, retrained.get("fairness")),
        holdout_rows=retrained["holdout_rows"],
        why_not_comparable=retrained.get("not_comparable"),
        refit_proven="refit" in (retrained.get("triggers") or []),
        grown=policy.grown_only(retrained.get("triggers") or []),
    )
    if verdict.action == "wait":
        verdict = _enter_shadow(c, eng, challenger, night_champion, day, verdict)
    verdict = _make_champion(c, eng, paths, challenger, day, verdict, evidence=retrained.get("evidence"),
                             champion=night_champion)
    return {**_promotion_result(c, eng, verdict, night_champion, challenger, "steward.policy.gate"),
            "evidence": retrained.get("evidence")}


def _enter_shadow(c: Any, eng: Engagement, challenger: int, champion: int, day: dt.date,
                  verdict: policy.Decision) -> policy.Decision:
    """The gate's evidence is not conclusive yet: the challenger serves in shadow (alias `shadow`), and the
    labelled nights after the gate are pooled with its holdout until they are (ADR 0015, 0024)."""
    from steward.models import registry

    tags = registry.get_version(c, eng, challenger).tags
    if registry.SHADOW_DECIDED_TAG not in tags:  # a rerun of the gate night never reopens a decided period
        registry.tag_version(c, eng, challenger, {registry.SHADOW_SINCE_TAG: day.isoformat()})
        registry.set_alias(c, eng, registry.SHADOW, challenger)
    return policy.into_shadow(eng, verdict, challenger, champion)


def _make_champion(c: Any, eng: Engagement, paths: StewardPaths, version: int, day: dt.date, verdict: policy.Decision,
                   *, evidence: dict[str, Any] | None, champion: int) -> policy.Decision:
    """Move alias `champion` to `version` on a promote verdict (once: a rerun of the night changes nothing);
    never backwards. Where a person must approve first (`promotion.approval`), ask instead (issue 35)."""
    from steward.governance import approvals
    from steward.models import registry

    current = registry.get_alias(c, eng, registry.CHAMPION)
    already = registry.get_version(c, eng, version).tags.get(registry.PROMOTED_FOR_TAG) == day.isoformat()
    if verdict.action != "promote" or already:
        return verdict
    if current is not None and current.version > version:
        return policy.champion_moved_on(verdict, current.version)
    if eng.promotion.approval.required:
        approvals.request(c, eng, paths, version, day, reasons=verdict.reasons, evidence=evidence, champion=champion)
        return policy.awaiting_approval(eng, verdict, version)
    registry.tag_version(c, eng, version, {registry.PROMOTED_FOR_TAG: day.isoformat(),
                                           registry.REPLACED_TAG: str(current.version) if current else ""})
    if current is not None:
        registry.set_alias(c, eng, registry.PREVIOUS_CHAMPION, current.version)
    registry.set_alias(c, eng, registry.CHAMPION, version)
    return verdict


def _promotion_result(c: Any, eng: Engagement, verdict: policy.Decision, night_champion: int, challenger: int,
                      decided_by: str) -> PromotionResult:
    from steward.models import registry

    promoted = verdict.action == "promote"
    current_alias = registry.get_alias(c, eng, registry.CHAMPION)
    return PromotionResult(**verdict.to_dict(), promoted=promoted, champion_before=night_champion,
                           champion_after=challenger if promoted else night_champion,
                           champion_alias_now=current_alias.version if current_alias else None, decided_by=decided_by)


@timed("judge_shadow")
def judge_shadow(eng: Engagement, paths: StewardPaths, logical_date: str | dt.date, champion: Result) -> Result:
    """Score the challenger in shadow and the champion on the labelled nights it never saw, pooled with its
    gate's holdout; promote it when the evidence clears the margin, retire it when the evidence rules the gain
    out or the period runs out, else wait (ADR 0015, 0024)."""
    from steward.models import gate_fit, registry, shadow

    day = _day(logical_date)
    c = registry.client(paths)
    night_champion = champion["champion"]["version"]
    pending = registry.in_shadow(c, eng, day.isoformat())
    if pending is None:  # decide_retrain saw one: reaching this means the registry changed since
        raise RuntimeError(f"no challenger of {eng.registered_model_name} is in shadow on {day}")
    since = _day(pending.tags[registry.SHADOW_SINCE_TAG])
    nights: dict[str, Any] = {}
    pooled = None
    if pending.version <= night_champion:  # nothing to score: it could never become champion
        verdict = policy.not_newer(pending.version, night_champion)
    else:
        found = shadow.evidence(eng, paths, day, since, pending.tags, registry.load(c, pending),
                                registry.load(c, registry.ModelRef(**champion["champion"])),
                                gate_model=gate_fit.load(paths, eng.id, pending.version, pending.tags))
        nights, pooled = found["nights"], found["pooled"]
        verdict = policy.shadow_verdict(eng, challenger_version=pending.version, champion_version=night_champion,
                                        since=since, day=day, evidence=pooled, unseen_nights=found["unseen_nights"],
                                        why_not_comparable=found["why_not_comparable"])
    verdict = _make_champion(c, eng, paths, pending.version, day, verdict, evidence=pooled, champion=night_champion)
    if verdict.action in ("promote", "refuse", "approval"):
        registry.tag_version(c, eng, pending.version, {
            registry.SHADOW_DECIDED_TAG: day.isoformat(),
            registry.SHADOW_VERDICT_TAG: {"promote": "promoted", "refuse": "retired"}.get(verdict.action,
                                                                                        "awaiting approval")})
        in_alias = registry.get_alias(c, eng, registry.SHADOW)
        if in_alias is not None and in_alias.version == pending.version:
            registry.delete_alias(c, eng, registry.SHADOW)
    return {**_promotion_result(c, eng, verdict, night_champion, pending.version, "steward.policy.shadow_verdict"),
            "shadow": {"version": pending.version, "since": since.isoformat(), "metric": eng.promotion.metric,
                       "nights_needed": eng.promotion.shadow_nights, "nights": nights, "pooled": pooled},
            "evidence": pooled}
