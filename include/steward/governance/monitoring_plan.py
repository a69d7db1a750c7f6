"""The post-market monitoring plan of an engagement, generated from its configuration (issue 35).

EU AI Act Art. 72 asks providers of high-risk systems for a documented post-market monitoring plan; ISO/IEC
42001 (A.6.2.6) and NIST AI RMF (MANAGE 4.1) ask for documented monitoring, incident response and change
management. steward already runs all of it from the engagement file; this module writes it down as a plan a
reader can check against the records: what is monitored, with which thresholds, cadence, windows and
persistence, who owns it, what the system does on each signal, and how long the evidence is kept.

One plan per configuration: the plan names the configuration hash it was generated from, and a new hash (a
change of policy, or of a client file it inherits) is a new plan version, cited by a `plan` ledger entry on
the first night that runs it (steward.governance.export.record_in_ledger) and bundled for the auditor.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from steward.config import Engagement, threshold_kind
from steward.settings import StewardPaths, inside

REFERENCES = ("EU AI Act Art. 72 (post-market monitoring plan), Art. 19 and 26(6) (logs kept at least six "
              "months), Art. 73 (serious incidents: 15 days, 10 where a person died, 2 for a widespread "
              "infringement or a critical-infrastructure disruption); ISO/IEC 42001 A.6.2.6; NIST AI RMF MANAGE 4.1")


def plan_dir(paths: StewardPaths, engagement_id: str) -> Path:
    return inside(paths.artifacts, f"{engagement_id}/monitoring_plan")


def _persist(p: Any) -> str:
    return f"on {p.nights} of the last {p.of_last} nights"


def render(eng: Engagement, config_hash: str, version: int) -> str:
    """The plan as Markdown (steward.models.model_card.render_html turns it into HTML)."""
    q, d, perf, r, promo, gov = (eng.quality, eng.drift, eng.performance, eng.retraining, eng.promotion,
                                 eng.governance)
    labels = (f"labels arrive about {eng.labels.expected_delay_days} night(s) after the predictions "
              f"(joined for {eng.labels.lookback_days} days)" if eng.labels else "the batches carry the target")
    rows = [
        ("Data quality (Great Expectations, every night)",
         f"{len(q.columns)} column rules (types, nulls, ranges, categories) and the row count "
         f"{q.row_count.min}-{q.row_count.max}; a batch breaking a quarantine rule is quarantined with its reasons "
         "and the raw file kept byte for byte",
         f"quality: {eng.responses.quality} (incident opened, alert sent); the night goes on without the batch"),
        ("Data-quality drift (ADR 0027)",
         f"each feature's share of nulls, out-of-range values, unseen categories and one repeated value against "
         f"the reference's own rate (significance {q.rates.significance}, tolerance {q.rates.tolerance}, pooled to "
         f"{q.rates.min_rows} rows), an alarm {_persist(q.rates.persistence)}" if q.rates.enabled else "off",
         f"quality_drift: {eng.responses.quality_drift} (`hold`: no candidate trains on a fault while it lasts)"),
        ("Data drift (Evidently, every night)",
         f"{d.stattest} per feature above {d.threshold} and significant at {d.significance} "
         f"({d.correction}); drift when {d.drift_share:.0%} of the features drift, judged on at least "
         f"{d.min_rows} rows (small nights pooled over up to {d.max_window_nights} nights), against the "
         f"{'champion training data' if d.reference == 'champion' else 'reference file'}; persistent "
         f"{_persist(d.persistence)}",
         f"drift: {eng.responses.drift}" + (" (retrains)" if "drift" in r.triggers else "")),
        ("Realised performance",
         f"{perf.metric} {threshold_kind(perf.metric)} {perf.threshold} on nights with at least "
         f"{perf.min_labelled_rows} labelled rows; {labels}",
         f"performance: {eng.responses.performance}" + (" (retrains)" if "performance" in r.triggers else "")),
    ]
    if eng.sla.performance is not None:
        s = eng.sla.performance
        rows.append(("Performance SLA", f"{s.threshold} over {s.window_days} day(s), at least {s.min_labelled_rows} "
                     "labelled rows", f"performance: {eng.responses.performance}"))
    for name, sla in (("freshness", eng.sla.freshness), ("completion", eng.sla.completion)):
        if sla is not None:
            rows.append((f"{name.capitalize()} SLA (Airflow Deadline Alert)",
                         f"{sla.minutes_after_schedule} minutes after the scheduled time", f"{name}: notify"))
    if gov.fairness is not None:
        rows.append(("Fairness", f"{gov.fairness.metric} gap across {', '.join(gov.sensitive_attributes)} at most "
                     f"{gov.fairness.max_gap}", "a challenger above the gap is never promoted"))
    if eng.baselines.enabled:
        rows.append(("What operating adds (ADR 0025)", "the served models against a model never retrained and a "
                     f"refit every {eng.baselines.refit_every_days} nights, on the same labelled rows",
                     "shown in the outcome report and the Engagements page"))
    approval = promo.approval
    change = [
        f"- Retraining triggers: {', '.join(r.triggers)}; window {r.window}; at most "
        f"{r.max_candidates_per_30_days} candidates in 30 days, {r.min_days_between} days apart for one trigger.",
        f"- Promotion gate: {promo.metric}, a gain above {promo.min_improvement} with a one-sided paired test "
        f"(alpha {promo.alpha}); at least {promo.shadow_nights} shadow night(s), retired after "
        f"{promo.shadow_max_days} days without a conclusion.",
        (f"- Approval: every promotion waits for {', '.join(approval.approvers)} in Airflow's Required Actions "
         f"(DAG `{eng.id}__approval`); no answer within {approval.timeout_hours:g} h is a rejection."
         if approval.required else "- Approval: none required; the gate promotes."),
        "- Rollback: `steward model rollback` (and `responses.performance: rollback`) restores an earlier "
        "version; every rollback is a signed ledger entry.",
    ]
    channels = ", ".join(f"{c.type}:{c.conn_id}" for c in eng.alerts.channels) or "the incident log only"
    lines = [
        f"# Post-market monitoring plan: {eng.id} (version {version})",
        "",
        f"- System: **{eng.client}**, {eng.use_case} (engagement `{eng.id}`, model `{eng.registered_model_name}`)",
        f"- Risk class: **{gov.risk_class or 'not classified'}**",
        f"- Owners: {', '.join(gov.owners)}; engagement owner {eng.owner}; data region {gov.region}",
        f"- Generated from configuration `{config_hash}` on {dt.date.today().isoformat()}; a change of "
        "configuration is a new plan version in the ledger",
        f"- Cadence: the nightly DAG `{eng.id}` on `{eng.schedule}` (UTC)",
        f"- Asked for by: {REFERENCES}",
        "",
        "## What is monitored, and what happens on each signal",
        "",
        "| signal | threshold, window, persistence | response |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        f"Every signal opens or continues an incident and is sent to: {channels} (at most "
        f"{eng.alerts.max_attempts} attempts per notification).",
        "",
        "## Change management",
        "",
        *change,
        "",
        "## Incidents",
        "",
        "- An incident is opened by the first signal and resolved when the condition clears; `steward incident "
        "report ID --deadline-days 2|10|15` drafts the report (timeline, versions served, metrics before and "
        "after, actions, affected prediction dates and rows) with the regulatory clock chosen. A person decides "
        "whether it is serious; the report and that decision are ledger entries.",
        "",
        "## Records and retention",
        "",
        f"- Raw batches, reports and records are kept {gov.retention_days} days"
        + (" (risk class high: at least 183 days, Art. 19 and 26(6))" if gov.risk_class == "high" else "")
        + "; each purge is recorded (files and sha256) before it happens.",
        "- The ledger is never purged: every night, configuration, plan, approval, rollback and incident report "
        "is a hash-chained entry, and its head is signed with a key outside the state volume (ADR 0017).",
        "",
    ]
    return "\n".join(lines)


def write(eng: Engagement, paths: StewardPaths, config_hash: str, version: int) -> list[Path]:
    """The plan of this configuration as Markdown and HTML, named by its hash (written once)."""
    from steward.models.model_card import render_html
    from steward.sources.batches import atomic_write_bytes

    folder = plan_dir(paths, eng.id)
    folder.mkdir(parents=True, exist_ok=True)
    md, html = folder / f"plan_{config_hash[:12]}.md", folder / f"plan_{config_hash[:12]}.html"
    if not md.exists():
        text = render(eng, config_hash, version)
        atomic_write_bytes(md, text.encode())
        atomic_write_bytes(html, render_html(text, f"Monitoring plan {eng.id} v{version}").encode())
    return [md, html]
