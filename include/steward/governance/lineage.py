"""OpenLineage events for each night, built with the openlineage-python client from the audit record.

One job per pipeline stage (`<engagement>.<task>`) plus the DAG-level job (`<engagement>`), each with
START and COMPLETE (or FAIL) events, the stage's own timing, and standard facets where the standard has
one (schema, dataQualityAssertions, dataQualityMetrics, version, nominalTime, parent, ownership,
documentation, jobType, errorMessage). steward's own facts travel in three custom run facets whose JSON
Schemas ship in `steward/schemas/openlineage/`. Events are written through the client's FileTransport
to `<STEWARD_HOME>/lineage/<engagement>.jsonl`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    dataset_version_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    nominal_time_run,
    ownership_job,
    parent_run,
    schema_dataset,
)

from steward import __version__
from steward.config import Engagement
from steward.settings import StewardPaths

NAMESPACE = "steward"
PRODUCER = f"https://github.com/steward-ml/steward/tree/v{__version__}"
SCHEMA_BASE = "https://github.com/steward-ml/steward/blob/main/include/steward/schemas/openlineage/"
SCHEMA_DIR = Path(__file__).parents[1] / "schemas" / "openlineage"
_UUID_NS = uuid.UUID("6c0f9a57-5a0e-4e57-9d8b-3f5b1c0de5a1")


@attr.define
class StewardDriftRunFacet(RunFacet):
    """Evidently drift results: per-feature test, score, threshold, verdict; dataset and prediction drift."""

    driftShare: float  # noqa: N815
    shareThreshold: float  # noqa: N815
    datasetDrift: bool  # noqa: N815
    features: dict[str, Any]
    predictionDrift: dict[str, Any] | None = attr.field(default=None)  # noqa: N815
    state: str = attr.field(default="judged")
    persistent: bool | None = attr.field(default=None)
    reference: dict[str, Any] | None = attr.field(default=None)
    window: dict[str, Any] | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_BASE + "StewardDriftRunFacet.json#/$defs/StewardDriftRunFacet"


@attr.define
class StewardDecisionRunFacet(RunFacet):
    """The retrain (or promotion) decision, who took it, and its reasons in words."""

    action: str
    decidedBy: str  # noqa: N815
    reasons: list[str]
    triggers: list[str] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_BASE + "StewardDecisionRunFacet.json#/$defs/StewardDecisionRunFacet"


@attr.define
class StewardModelVersionRunFacet(RunFacet):
    """The MLflow model version a stage produced or used."""

    registeredModel: str  # noqa: N815
    version: int
    mlflowRunId: str | None  # noqa: N815
    aliases: list[str] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_BASE + "StewardModelVersionRunFacet.json#/$defs/StewardModelVersionRunFacet"


def run_uuid(*parts: str) -> str:
    """Deterministic UUID per (dag run, task): the same attempt always maps to the same OpenLineage run."""
    return str(uuid.uuid5(_UUID_NS, "/".join(parts)))


def _zulu(ts: str | dt.datetime) -> str:
    when = dt.datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _batch_dataset(eng: Engagement, paths: StewardPaths, record: dict[str, Any], with_quality: bool) -> InputDataset:
    batch = record["data"].get("batch") or {}
    profile = record["data"].get("profile") or {}
    staged = batch.get("sql")
    if staged:  # the night's snapshot in the client's database (what was checked, scored and trained on)
        namespace, name = staged["namespace"], f"{staged['database']}.{staged['schema']}.{_snapshot(staged['table'])}"
    elif batch.get("object"):  # the client's object (s3://bucket + key), landed byte for byte
        namespace, name = batch["object"]["namespace"], batch["object"]["name"]
    else:
        namespace = f"file://{paths.data_root}"
        name = f"{eng.data.directory}/{eng.batch_filename(dt.date.fromisoformat(record['logical_date']))}"
    facets: dict[str, Any] = {"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=batch.get("sha256", "unknown"))}
    if profile:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=c, type=t) for c, t in profile["columns"].items()]
        )
    input_facets: dict[str, Any] = {}
    if with_quality and profile:
        input_facets["dataQualityMetrics"] = data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
            rowCount=profile["rows"],
            bytes=batch.get("size_bytes"),
            columnMetrics={
                c: data_quality_metrics_input_dataset.ColumnMetrics(
                    nullCount=profile["null_counts"].get(c), distinctCount=(profile.get("distinct_counts") or {}).get(c)
                )
                for c in profile["columns"]
            },
        )
    quality = record.get("quality")
    if with_quality and quality:
        input_facets["dataQualityAssertions"] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=[
                data_quality_assertions_dataset.Assertion(
                    assertion=c["expectation"], success=c["success"], column=c["column"], severity="error",
                    name=f"{c['expectation']}({c['column'] or ''})",
                )
                for c in quality["checks"]
            ]
        )
    return InputDataset(namespace=namespace, name=name, facets=facets, inputFacets=input_facets)


def _snapshot(table: str) -> str:
    from steward.sources.sql_source import QUARANTINED_SUFFIX

    return table.removesuffix(QUARANTINED_SUFFIX)


def _sql_datasets(record: dict[str, Any], task: str) -> tuple[list[InputDataset], list[OutputDataset]]:
    """The client's tables a SQL night touched: the source it read (landing), the quarantine table it
    wrote, and the predictions sink (OpenLineage naming: postgres://host:port, database.schema.table)."""
    staged = ((record["data"].get("batch") or {}).get("sql")) if record.get("data") else None
    inputs: list[InputDataset] = []
    outputs: list[OutputDataset] = []
    if staged and task == "land_batch":
        if staged["source"] != "query":
            inputs.append(InputDataset(namespace=staged["namespace"], name=staged["source"]))
        outputs.append(OutputDataset(namespace=staged["namespace"],
                                     name=f"{staged['database']}.{staged['schema']}.{_snapshot(staged['table'])}"))
    quarantined = (record.get("quarantine") or {}).get("quarantine_table")
    if staged and quarantined and task == "quarantine_batch":
        outputs.append(OutputDataset(namespace=staged["namespace"], name=f"{staged['database']}.{quarantined}"))
    sink = (record.get("predictions") or {}).get("sink")
    if sink and task == "score_batch":
        outputs.append(OutputDataset(namespace=sink["namespace"], name=sink["name"]))
    return inputs, outputs


def _reference_facet(ref: dict[str, Any] | None) -> dict[str, Any] | None:
    if not ref:
        return None
    return {"kind": ref["kind"], "sha256": ref["sha256"], "rows": ref["rows"], "modelVersion": ref["model_version"]}


def _reference_dataset(eng: Engagement, paths: StewardPaths, record: dict[str, Any]) -> InputDataset | None:
    """What drift was judged against: the champion's kept training data, or the reference file."""
    ref = (record.get("drift") or {}).get("reference")
    if not ref:
        return None
    version = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=ref["sha256"])
    if ref["kind"] == "champion_training_data":
        return InputDataset(namespace="mlflow", name=f"{eng.registered_model_name}/{ref['model_version']}/reference",
                            facets={"version": version})
    return InputDataset(namespace=f"file://{paths.data_root}", name=eng.data.reference, facets={"version": version})


def _model_dataset(ref: dict[str, Any]) -> OutputDataset:
    return OutputDataset(namespace="mlflow", name=f"{ref['name']}/{ref['version']}")


def _stage_facets(record: dict[str, Any], task: str) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if task == "detect_drift" and record.get("drift"):
        d = record["drift"]
        facets["steward_drift"] = StewardDriftRunFacet(
            driftShare=d["drift_share"], shareThreshold=d["share_threshold"], datasetDrift=d["dataset_drift"],
            features=d["features"], predictionDrift=d.get("prediction_drift"), state=d.get("state", "judged"),
            persistent=d.get("persistent"), reference=_reference_facet(d.get("reference")),
            window={"nights": d["window"]["nights"], "rows": d["window"]["rows"]} if d.get("window") else None,
        )
    if task == "decide_retrain" and record.get("decision"):
        d = record["decision"]
        facets["steward_decision"] = StewardDecisionRunFacet(
            action=d["action"], decidedBy=d["decided_by"], reasons=d["reasons"], triggers=d.get("triggers", []))
    if task in ("gate_and_promote", "judge_shadow") and record.get("promotion"):
        p = record["promotion"]
        facets["steward_decision"] = StewardDecisionRunFacet(action=p["action"], decidedBy=p["decided_by"],
                                                             reasons=p["reasons"])
    if task == "retrain_candidate" and record.get("retraining"):
        ref = record["retraining"]["challenger"]
        facets["steward_modelVersion"] = StewardModelVersionRunFacet(
            registeredModel=ref["name"], version=ref["version"], mlflowRunId=ref["run_id"], aliases=["challenger"])
    if task == "ensure_champion" and record["models"].get("champion_before"):
        facets["steward_modelVersion"] = StewardModelVersionRunFacet(
            registeredModel=record["models"]["registered_model"], version=record["models"]["champion_before"],
            mlflowRunId=None, aliases=["champion"])
    return facets


def build_events(eng: Engagement, paths: StewardPaths, record: dict[str, Any]) -> list[RunEvent]:
    """START + COMPLETE/FAIL for every stage that ran, and for the DAG run as a whole."""
    run = record["run"]
    dag_run_id = run_uuid(run["dag_id"], run["run_id"])
    nominal = nominal_time_run.NominalTimeRunFacet(nominalStartTime=_zulu(f"{record['logical_date']}T00:00:00+00:00"))
    parent = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=dag_run_id), job=parent_run.Job(namespace=NAMESPACE, name=eng.id))
    owners = ownership_job.OwnershipJobFacet(owners=[ownership_job.Owner(name=o, type="MAINTAINER")
                                                     for o in eng.governance.owners])
    job_type = job_type_job.JobTypeJobFacet(processingType="BATCH", integration="AIRFLOW", jobType="TASK")
    events: list[RunEvent] = []
    timings = record.get("timings") or {}
    states = record.get("task_states") or {}
    for task, timing in timings.items():
        start = dt.datetime.fromisoformat(timing["started_at"])
        end = start + dt.timedelta(seconds=timing["duration_s"])
        job = Job(namespace=NAMESPACE, name=f"{eng.id}.{task}", facets={
            "ownership": owners, "jobType": job_type,
            "documentation": documentation_job.DocumentationJobFacet(
                description=f"steward stage {task} of engagement {eng.id} ({eng.client}: {eng.use_case})")})
        run_id = run_uuid(run["dag_id"], run["run_id"], task, str(run.get("try_number", 1)))
        inputs = [_batch_dataset(eng, paths, record, with_quality=task == "validate_batch")] if task in {
            "land_batch", "validate_batch", "quarantine_batch", "detect_drift", "retrain_candidate"} else []
        reference = _reference_dataset(eng, paths, record) if task == "detect_drift" else None
        if reference is not None:
            inputs.append(reference)
        outputs = [_model_dataset(record["retraining"]["challenger"])] if task == "retrain_candidate" and record.get(
            "retraining") else []
        sql_inputs, sql_outputs = _sql_datasets(record, task)
        # landing a SQL night reads the client's table and writes the snapshot the later stages read
        inputs = sql_inputs if task == "land_batch" and sql_outputs else [*sql_inputs, *inputs]
        outputs = [*outputs, *sql_outputs]
        failed = states.get(task) == "failed"
        end_facets: dict[str, Any] = {"nominalTime": nominal, "parent": parent, **_stage_facets(record, task)}
        if failed:
            end_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"stage {task} failed; see the Airflow task log", programmingLanguage="python")
        events.append(RunEvent(eventType=RunState.START, eventTime=_zulu(start), producer=PRODUCER,
                               run=Run(runId=run_id, facets={"nominalTime": nominal, "parent": parent}), job=job,
                               inputs=inputs))
        events.append(RunEvent(eventType=RunState.FAIL if failed else RunState.COMPLETE, eventTime=_zulu(end),
                               producer=PRODUCER, run=Run(runId=run_id, facets=end_facets), job=job,
                               inputs=inputs, outputs=outputs))
    dag_job = Job(namespace=NAMESPACE, name=eng.id, facets={
        "ownership": owners,
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="AIRFLOW", jobType="DAG"),
        "documentation": documentation_job.DocumentationJobFacet(description=f"{eng.client}: {eng.use_case}")})
    first = min((t["started_at"] for t in timings.values()), default=record["recorded_at"])
    outcome_failed = record["outcome"] == "failed"
    dag_facets: dict[str, Any] = {"nominalTime": nominal}
    if outcome_failed:
        dag_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message="a pipeline stage failed: " + ", ".join(t for t, s in states.items() if s == "failed"),
            programmingLanguage="python")
    events.insert(0, RunEvent(eventType=RunState.START, eventTime=_zulu(first), producer=PRODUCER,
                              run=Run(runId=dag_run_id, facets={"nominalTime": nominal}), job=dag_job))
    events.append(RunEvent(eventType=RunState.FAIL if outcome_failed else RunState.COMPLETE,
                           eventTime=_zulu(record["recorded_at"]), producer=PRODUCER,
                           run=Run(runId=dag_run_id, facets=dag_facets), job=dag_job))
    return events


def lineage_path(paths: StewardPaths, engagement_id: str) -> Path:
    return paths.home / "lineage" / f"{engagement_id}.jsonl"


def emit(eng: Engagement, paths: StewardPaths, record: dict[str, Any]) -> int:
    """Write the night's events through the OpenLineage client's file transport (one JSON per line)."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport

    target = lineage_path(paths, eng.id)
    target.parent.mkdir(parents=True, exist_ok=True)
    events = build_events(eng, paths, record)
    if _already_emitted(paths, eng.id, events[-1]):  # a retried export: the events are out already
        return 0
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(target), append=True)))
    for event in events:
        client.emit(event)
    return len(events)


def _already_emitted(paths: StewardPaths, engagement_id: str, final: Any) -> bool:
    """The DAG run's final event (same run id and event type) is in the file already.

    Only the lines that name the run id are parsed: the file grows by some thirty events a night, and parsing all
    of them every night made the export's cost grow with the engagement's age."""
    import json

    run_id, kind = final.run.runId, str(final.eventType.value if hasattr(final.eventType, "value") else final.eventType)
    target = lineage_path(paths, engagement_id)
    if not target.exists():
        return False
    return any(e["run"]["runId"] == run_id and e["eventType"] == kind
               for e in (json.loads(line) for line in target.read_text().splitlines() if run_id in line))


def read_events(paths: StewardPaths, engagement_id: str) -> list[dict[str, Any]]:
    import json

    target = lineage_path(paths, engagement_id)
    if not target.exists():
        return []
    return [json.loads(line) for line in target.read_text().splitlines() if line.strip()]
