"""One DAG per engagement file in include/engagements/*.yaml (and its approval DAG where promotions need a
person), plus the retention and weekly report DAGs.

Kept thin on purpose: validation lives in steward.config, the DAG shapes in
steward.airflow.dag_builder and steward.airflow.maintenance_dags, and the work in steward.pipeline. Parsing imports no pandas,
Great Expectations, Evidently, MLflow or scikit-learn.
"""

from __future__ import annotations

from airflow.sdk import get_parsing_context

from steward.airflow.dag_builder import approval_dag_id, broken_placeholder, build_dag
from steward.airflow.maintenance_dags import (
    REPORT_DAG_ID,
    RETENTION_DAG_ID,
    build_report_dag,
    build_retention_dag,
)
from steward.config import EngagementConfigError, discover, load_engagement
from steward.settings import engagements_dir

# Set when a worker parses the file to run one task: build only that DAG (the retention DAG needs the list).
_parsing = get_parsing_context().dag_id
_errors: list[EngagementConfigError] = []
_valid = []

for _path in discover(engagements_dir()):
    if _parsing not in (None, _path.stem, approval_dag_id(_path.stem), RETENTION_DAG_ID, REPORT_DAG_ID):
        continue
    try:
        _engagement = load_engagement(_path)
    except EngagementConfigError as _exc:
        _errors.append(_exc)
        continue
    _valid.append(_engagement.id)
    if _parsing in (None, _engagement.id):
        globals()[_engagement.id] = build_dag(_engagement, _path)
    # with its nightly DAG too: `steward run` (dag.test) parses for the nightly DAG and writes what it finds
    if _engagement.promotion.approval.required and _parsing in (None, _engagement.id, approval_dag_id(_engagement.id)):
        from steward.airflow.approval_dag import build_approval_dag  # the HITL operator only where it is used

        globals()[approval_dag_id(_engagement.id)] = build_approval_dag(_engagement)  # issue 35

if _parsing in (None, RETENTION_DAG_ID):
    steward_retention = build_retention_dag(_valid)

if _parsing in (None, REPORT_DAG_ID):
    steward_outcome_reports = build_report_dag(_valid)

if _errors:
    # Recorded by the DAG processor as an import error naming each file and field; the good DAGs above
    # are still loaded (see BrokenEngagementDAG and docs/decisions/0001).
    steward_invalid_engagements = broken_placeholder(_errors)
