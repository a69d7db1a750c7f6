"""One DAG per engagement file in include/engagements/*.yaml (steward's DAG factory).

Kept thin on purpose: validation lives in steward.config, the DAG shape in
steward.airflow.dag_builder, and the work in steward.pipeline. Parsing imports no pandas,
Great Expectations, Evidently, MLflow or scikit-learn.
"""

from __future__ import annotations

from airflow.sdk import get_parsing_context

from steward.airflow.dag_builder import broken_placeholder, build_dag
from steward.config import EngagementConfigError, discover, load_engagement
from steward.settings import engagements_dir

_parsing = get_parsing_context().dag_id  # set when a worker parses for one task: build only that DAG
_errors: list[EngagementConfigError] = []

for _path in discover(engagements_dir()):
    if _parsing is not None and _parsing != _path.stem:
        continue
    try:
        _engagement = load_engagement(_path)
    except EngagementConfigError as _exc:
        _errors.append(_exc)
        continue
    globals()[_engagement.id] = build_dag(_engagement, _path)

if _errors:
    # Recorded by the DAG processor as an import error naming each file and field; the good DAGs above
    # are still loaded (see BrokenEngagementDAG).
    steward_invalid_engagements = broken_placeholder(_errors)
