"""The nightly DAG's Docs panel (doc_md), rendered from the engagement file: what a data engineer needs in the UI."""

from __future__ import annotations

from pathlib import Path

from steward.config import Engagement


def render_doc(eng: Engagement, config_path: Path) -> str:
    """The DAG's doc_md: what a data engineer needs in the UI, rendered from the config."""
    feats = ", ".join(f"`{c}` ({t})" for c, t in eng.features.items())
    per_feature = ", ".join(f"`{c}`: {f.stattest} < {f.threshold}" for c, f in eng.drift.per_feature.items()) or "none"
    return f"""# {eng.client}: {eng.use_case}

| | |
|---|---|
| engagement | `{eng.id}` (file `{config_path.name}`) |
| owner | {eng.owner} |
| owners (governance) | {", ".join(eng.governance.owners)} |
| problem | {eng.problem_type}, target `{eng.target}`, id `{eng.id_column}` |
| features | {feats} |
| batches | {_batches_doc(eng)} |
| drift | {eng.drift.stattest} threshold {eng.drift.threshold}; per feature: {per_feature}; dataset drift at {eng.drift.drift_share:.0%} of features |
| performance | {eng.performance.metric} threshold {eng.performance.threshold} (min {eng.performance.min_labelled_rows} labelled rows) |
| retraining | triggers {", ".join(eng.retraining.triggers)}; window {_window_doc(eng)}; `{eng.retraining.estimator.name}` |
| promotion | {eng.promotion.metric}, a gain above {eng.promotion.min_improvement} at one-sided level {eng.promotion.alpha} over all looks (paired test pooled over nights, ADR 0024); {_shadow_doc(eng)} |
| region / retention | {eng.governance.region} / {eng.governance.retention_days} days |
| labels | {_labels_doc(eng)} |
| SLAs | {_sla_doc(eng)} |
| responses | performance: {eng.responses.performance}; drift: {eng.responses.drift}; alerts via incident log{"".join(f", {c.type}:{c.conn_id}" for c in eng.alerts.channels)} |

Nightly: land -> validate (Great Expectations) -> quarantine *or* drift + performance (Evidently)
-> decide -> retrain (MLflow) -> gate -> promote (alias `champion`), or first a shadow period (alias `shadow`)
judged on the nights after the gate (`judge_shadow`) -> audit record.
A quarantined batch skips monitoring and training; `export_audit` always runs and records the night.

**Decision log**

{eng.governance.decision_log or "_none_"}
"""


def _batches_doc(eng: Engagement) -> str:
    d = eng.data
    if d.source == "object_storage":
        return f"object storage: `{d.url}` ({d.format})" + (f", connection `{d.conn_id}`" if d.conn_id else "")
    if d.source == "sql":
        where = f"`{d.table}` where `{d.date_column}` = the logical date" if d.table else "a query (`:logical_date` bound)"
        sink = f"; predictions to `{eng.predictions.sink.table}`" if eng.predictions.sink else ""
        return f"SQL: connection `{d.conn_id}`, {where}; checked in the database (snapshot in `{d.staging_schema}`){sink}"
    return f"`{d.directory}/{d.pattern}` ({d.format})"


def _window_doc(eng: Engagement) -> str:
    rules = eng.retraining
    if rules.window == "sliding" and rules.window_rows is None:
        return f"the newest {rules.window_days} labelled nights"
    cap = f", the newest {rules.window_rows} rows" if rules.window_rows else ""
    return f"{rules.window}: the champion's rows + every labelled night since{cap}"


def _shadow_doc(eng: Engagement) -> str:
    head = (f"at least {eng.promotion.shadow_nights} labelled nights after the gate" if eng.promotion.shadow_nights
            else "promoted at the gate when its holdout is conclusive")
    return f"{head}; in shadow until the evidence decides (at most {eng.promotion.shadow_max_days} days)"


def _labels_doc(eng: Engagement) -> str:
    if eng.labels is None:
        return "inside each batch (same night)"
    where = (f"SQL: connection `{eng.labels.conn_id}`, {eng.labels.relation}" if eng.labels.source == "sql"
             else f"`{eng.labels.directory}/{eng.labels.pattern}`")
    return (f"{where}, typically {eng.labels.expected_delay_days} nights late, "
            f"joined on `{eng.id_column}`")


def _sla_doc(eng: Engagement) -> str:
    sla, parts = eng.sla, []
    if sla.performance:
        parts.append(f"{eng.performance.metric} {sla.performance.threshold} over {sla.performance.window_days} labelled dates")
    if sla.freshness:
        parts.append(f"batch within {sla.freshness.minutes_after_schedule:g} min of schedule")
    if sla.completion:
        parts.append(f"run done within {sla.completion.minutes_after_schedule:g} min")
    if sla.quarantine:
        parts.append(f"quarantined <= {sla.quarantine.max_share:.0%} of {sla.quarantine.window_days} nights")
    return "; ".join(parts) or "none"
