"""The client's outcome report: how the model performed over a period, and what the service did about it.

Every number comes from the stored history (the steward_* tables and the ledger), never recomputed
from data: the report says what was known and done, night by night. Output: one self-contained HTML
file (plots embedded as PNG) and the same numbers as JSON beside it.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import re
from pathlib import Path
from typing import Any

from steward import store
from steward.config import Engagement, threshold_kind
from steward.governance import ledger
from steward.operations import incidents
from steward.settings import StewardPaths, inside
from steward.sources import batches, labels

TOP_DRIFT_FEATURES = 4


class ReportError(ValueError):
    pass


def parse_period(text: str) -> int:
    match = re.fullmatch(r"\s*(\d{1,4})\s*d\s*", text)
    if not match or not 1 <= int(match.group(1)) <= 3650:
        raise ReportError(f"--period must look like 30d (1d..3650d), got {text!r}")
    return int(match.group(1))


def latest_night(paths: StewardPaths, engagement_id: str) -> dt.date | None:
    nights = [r["logical_date"] for r in store.runs_of(paths, engagement_id)]
    return dt.date.fromisoformat(max(nights)) if nights else None


def gather(eng: Engagement, paths: StewardPaths, start: dt.date, end: dt.date) -> dict[str, Any]:
    """The report's numbers, from the history tables, for nights start..end (inclusive)."""
    lo, hi = start.isoformat(), end.isoformat()

    def within(day: str | None) -> bool:
        return day is not None and lo <= day <= hi

    nights: dict[str, dict[str, Any]] = {}
    for r in store.runs_of(paths, eng.id):  # ledger order: the last record of a night wins
        if within(r["logical_date"]):
            nights[r["logical_date"]] = {"outcome": r["outcome"], "champion_before": r["champion_before"],
                                         "champion_after": r["champion_after"]}
    served = [r for r in store.select_rows(paths, store.predictions, {"engagement": eng.id}, "prediction_date")
              if within(r["prediction_date"])]
    performance = [r for r in labels.history(paths, eng.id, through=end) if within(r["prediction_date"])]
    drift_rows = [r for r in store.select_rows(paths, store.drift_scores, {"engagement": eng.id}, "logical_date")
                  if within(r["logical_date"])]
    evaluations = [r for r in store.select_rows(paths, store.sla_evaluations, {"engagement": eng.id}, "logical_date")
                   if within(r["logical_date"])]
    quality_alarms = [r for r in store.select_rows(paths, store.quality_rates, {"engagement": eng.id, "alarm": True},
                                                   "logical_date") if within(r["logical_date"])]
    found = incidents.list_for(paths, eng.id, since=lo, until=hi)
    entries = ledger.read_entries(paths, eng.id)
    rollbacks = [e for e in entries if e["type"] == "rollback" and within(e["logical_date"])]
    answers = [{"night": e["logical_date"], **{k: e["detail"].get(k) for k in (
        "version", "outcome", "answered_by", "answered_at", "comment")}}
        for e in entries if e["type"] == "approval" and within(e["logical_date"])]
    from steward.governance import approvals

    pending = approvals.read(paths, eng.id)
    outcomes = [n["outcome"] for n in nights.values()]
    sla_summary: dict[str, dict[str, int]] = {}
    for e in evaluations:
        s = sla_summary.setdefault(e["sla"], {"met": 0, "missed": 0, "not_judged": 0})
        s["met" if e["met"] else ("not_judged" if e["met"] is None else "missed")] += 1
    resolved = [i for i in found if i["recovery_nights"] is not None]
    return {
        "engagement": eng.id, "client": eng.client, "use_case": eng.use_case, "start": lo, "end": hi,
        "metric": eng.performance.metric,
        "sla_threshold": eng.sla.performance.threshold if eng.sla.performance else eng.performance.threshold,
        "nights": nights,
        "counts": {
            "nights_recorded": len(nights),
            "batches_accepted": sum(o not in ("quarantine", "missing", "failed") for o in outcomes),
            "batches_quarantined": outcomes.count("quarantine"),
            "batches_missing": outcomes.count("missing"),
            "failed_runs": outcomes.count("failed"),
            "retrains": outcomes.count("retrain") + outcomes.count("promote"),
            "promotions": outcomes.count("promote"),
            "rollbacks": len(rollbacks),
            "predictions_served": sum(r["rows"] for r in served),
            "incidents_opened": sum(within(i["opened_on"]) for i in found),
            "incidents_resolved": len(resolved),
            "mean_recovery_nights": round(sum(i["recovery_nights"] for i in resolved) / len(resolved), 2)
            if resolved else None,
        },
        # issue 35: approvals answered in the period, and a request still waiting for a person
        "approvals": answers,
        "awaiting_approval": None if pending is None or "answer" in pending else {
            k: pending[k] for k in ("version", "requested_for", "approvers")},
        "served": [{k: r[k] for k in ("prediction_date", "model_version", "rows", "estimated_value")} for r in served],
        "performance": [{k: r[k] for k in ("prediction_date", "realised_value", "estimated_value", "estimate_error",
                                           "labelled_rows", "model_version", "labels_through")} for r in performance],
        "drift": [{k: r[k] for k in ("logical_date", "feature", "score", "drifted")} for r in drift_rows],
        "quality_drift": [{k: r[k] for k in ("logical_date", "column_name", "kind", "rate", "reference_rate", "bound",
                                             "events", "rows")} for r in quality_alarms],
        "sla": sla_summary,
        "sla_evaluations": [{k: r[k] for k in ("logical_date", "sla", "met", "value", "target", "detail")}
                            for r in evaluations],
        "incidents": [incidents.public(i) for i in found],
        "rollbacks": [{"night": e["logical_date"], **e["detail"]} for e in rollbacks],
        "business": business(eng, paths, start, end),
        "operating": operating(paths, eng.id, start, end),
    }


def operating(paths: StewardPaths, engagement_id: str, start: dt.date, end: dt.date) -> dict[str, Any]:
    """What operating the model added (ADR 0025): per labelled prediction date of the period, the served models
    against never retraining and the periodic refit on the same rows, and their means."""
    from steward.models import baselines

    rows = [r for r in baselines.history(paths, engagement_id, through=end)
            if start.isoformat() <= r["prediction_date"] <= end.isoformat()]
    return {"dates": rows, "summary": baselines.summarize(rows)}


def _operating_html(data: dict[str, Any]) -> str:
    op = data.get("operating") or {}
    s = op.get("summary") or {}
    if not s.get("dates"):
        return "<h2>What operating the model added</h2><p>no labelled prediction date compared yet</p>"
    money = ""
    if s.get("value_added_vs_never_retrained") is not None:
        money = (f" Net value of what was served {s['served_net']:,.0f} {s['currency']}, of never retraining "
                 f"{s['never_retrained_net']:,.0f}: <b>{s['value_added_vs_never_retrained']:+,.0f} {s['currency']}</b>.")
    rows = [[r["prediction_date"], r["served_version"], r["served_value"], r["never_retrained_value"],
             r["periodic_refit_value"], r["labelled_rows"]] for r in op["dates"]]
    return (f"<h2>What operating the model added</h2><p>Every night two models that are never served score the same "
            f"rows: the model trained at go-live and never retrained, and a refit every 7 nights on every label known, "
            f"with no gate. On the {s['dates']} labelled prediction dates of the period ({s['labelled_rows']} rows), "
            f"mean {html.escape(s['metric'])}: served <b>{s['served']:.3f}</b>, never retrained "
            f"{s['never_retrained']:.3f}, periodic refit {s['periodic_refit']:.3f}; added against never retraining "
            f"<b>{s['added_vs_never_retrained']:+.3f}</b>; against the periodic refit {s['vs_periodic_refit']:+.3f}"
            + (f" (give or take {s['vs_periodic_refit_se']:.3f}: the standard error of the per-date difference)"
               if s.get("vs_periodic_refit_se") is not None else "")
            + f".{money}</p>"
            + html_table(["prediction date", "served model", "served", "never retrained", "periodic refit",
                          "labelled rows"], rows))


def _periods(start: dt.date, end: dt.date, kind: str) -> list[tuple[str, dt.date, dt.date]]:
    """ISO weeks or calendar months overlapping start..end, clipped to it: (label, first day, last day)."""
    out, day = [], start
    while day <= end:
        if kind == "week":
            first = day - dt.timedelta(days=day.weekday())
            last, label = first + dt.timedelta(days=6), f"{day.isocalendar().year}-W{day.isocalendar().week:02d}"
        else:
            first = day.replace(day=1)
            last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
            label = first.strftime("%Y-%m")
        out.append((label, max(first, start), min(last, end)))
        day = last + dt.timedelta(days=1)
    return out


def business(eng: Engagement, paths: StewardPaths, start: dt.date, end: dt.date) -> dict[str, Any] | None:
    """Value delivered, cost of errors, time saved and adoption, per week and month, and the served models
    against their predecessors on the same labelled rows (steward.operations.value); None without a `business:` block."""
    from steward.operations import value

    if eng.business is None:
        return None
    priced = [r for r in value.history(paths, eng.id, through=end) if start.isoformat() <= r["prediction_date"] <= end.isoformat()]
    return {
        "currency": eng.business.currency,
        "total": value.period(eng, paths, start, end),
        "weeks": [{"period": label, **value.period(eng, paths, a, b)} for label, a, b in _periods(start, end, "week")],
        "months": [{"period": label, **value.period(eng, paths, a, b)} for label, a, b in _periods(start, end, "month")],
        "per_date": [{k: r[k] for k in ("prediction_date", "model_version", "value_delivered", "cost_of_errors",
                                        "minutes_saved", "labelled_rows", "scored_rows")} for r in priced],
        "adoption": [{k: r[k] for k in ("prediction_date", "model_version", "scored_rows", "acted_rows", "recorded_on")}
                     for r in value.adoption_history(paths, eng.id, through=end)
                     if start.isoformat() <= r["prediction_date"] <= end.isoformat()],
        "against_previous": value.against_previous(eng, paths, end, priced),
    }


# --- plots ---------------------------------------------------------------------------------------


def png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _dates(values: list[str]) -> list[dt.date]:
    return [dt.date.fromisoformat(v) for v in values]


def plot_performance(data: dict[str, Any]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    perf = [p for p in data["performance"] if p["realised_value"] is not None]
    estimates = [s for s in data["served"] if s["estimated_value"] is not None]
    if not perf and not estimates:
        return None
    fig, ax = plt.subplots(figsize=(9, 3.6))
    if perf:
        ax.plot(_dates([p["prediction_date"] for p in perf]), [p["realised_value"] for p in perf], "o-",
                color="#1f77b4", label=f"realised {data['metric']} (labels)")
        for p in perf:
            ax.annotate(f"v{p['model_version']}", (dt.date.fromisoformat(p["prediction_date"]), p["realised_value"]),
                        textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7, color="#555")
    if estimates:
        ax.plot(_dates([s["prediction_date"] for s in estimates]), [s["estimated_value"] for s in estimates], "s--",
                color="#ff7f0e", alpha=0.8, markersize=4, label="estimated (CBPE, before labels)")
    kind = threshold_kind(data["metric"])
    ax.axhline(data["sla_threshold"], color="#d62728", linestyle=":", label=f"SLA {kind} {data['sla_threshold']}")
    for r in data["rollbacks"]:
        ax.axvline(dt.date.fromisoformat(r["night"]), color="#9467bd", alpha=0.5)
        ax.text(dt.date.fromisoformat(r["night"]), ax.get_ylim()[1], f" rollback v{r['from_version']}->v{r['to_version']}",
                fontsize=7, color="#9467bd", va="top")
    ax.set_title(f"{data['engagement']}: performance by prediction date")
    ax.set_ylabel(data["metric"])
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.autofmt_xdate()
    return png(fig)


def plot_drift(data: dict[str, Any]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not data["drift"]:
        return None
    peak: dict[str, float] = {}
    for r in data["drift"]:
        peak[r["feature"]] = max(peak.get(r["feature"], 0.0), r["score"] or 0.0)
    top = sorted(peak, key=lambda f: -peak[f])[:TOP_DRIFT_FEATURES]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for feature in top:
        rows = [r for r in data["drift"] if r["feature"] == feature]
        ax.plot(_dates([r["logical_date"] for r in rows]), [r["score"] for r in rows], "o-", markersize=3, label=feature)
        drifted = [r for r in rows if r["drifted"]]
        ax.scatter(_dates([r["logical_date"] for r in drifted]), [r["score"] for r in drifted], s=40,
                   facecolors="none", edgecolors="#d62728")
    ax.set_title(f"drift score per night, top {len(top)} features (red ring: drifted)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.autofmt_xdate()
    return png(fig)


def plot_batches(data: dict[str, Any]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not data["nights"]:
        return None
    colors = {"quarantine": "#d62728", "missing": "#7f7f7f", "failed": "#000000", "promote": "#2ca02c"}
    served = {s["prediction_date"]: s["rows"] for s in data["served"]}
    days = sorted(data["nights"])
    fig, ax = plt.subplots(figsize=(9, 2.8))
    ax.bar(_dates(days), [served.get(d, 0) for d in days],
           color=[colors.get(data["nights"][d]["outcome"], "#1f77b4") for d in days])
    for d in days:
        if data["nights"][d]["outcome"] in ("quarantine", "missing", "failed"):
            ax.text(dt.date.fromisoformat(d), 0, data["nights"][d]["outcome"], rotation=90, fontsize=7, va="bottom",
                    ha="center")
    ax.set_title("predictions served per night (red: quarantined batch, green: promotion night)")
    ax.set_ylabel("rows")
    fig.autofmt_xdate()
    return png(fig)


# --- HTML ----------------------------------------------------------------------------------------


def html_table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if c is None else str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td colspan=99>none</td></tr>'}</tbody></table>"


def plot_value(data: dict[str, Any]) -> str | None:
    b = data.get("business")
    if not b or not b["per_date"]:
        return None
    import matplotlib.pyplot as plt

    rows = b["per_date"]
    days = _dates([r["prediction_date"] for r in rows])
    net = [r["value_delivered"] - r["cost_of_errors"] for r in rows]
    cumulative = [sum(net[: i + 1]) for i in range(len(net))]
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.bar(days, [r["value_delivered"] for r in rows], color="#2ca02c", label="value delivered")
    ax.bar(days, [-r["cost_of_errors"] for r in rows], color="#d62728", label="cost of errors")
    ax.plot(days, cumulative, color="#1f77b4", marker=".", label="cumulative net value")
    ax.axhline(0, color="#999", linewidth=0.8)
    ax.set_ylabel(b["currency"])
    ax.legend(fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    return png(fig)


def plot_adoption(data: dict[str, Any]) -> str | None:
    b = data.get("business")
    if not b or not b["adoption"]:
        return None
    import matplotlib.pyplot as plt

    rows = b["adoption"]
    fig, ax = plt.subplots(figsize=(9, 2.4))
    ax.plot(_dates([r["prediction_date"] for r in rows]), [r["acted_rows"] / max(r["scored_rows"], 1) for r in rows],
            color="#9467bd", marker="o", label="share of scored rows acted on")
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.legend(fontsize=8, loc="lower left")
    fig.autofmt_xdate()
    return png(fig)


def _business_html(data: dict[str, Any], figure: Any) -> str:
    b = data.get("business")
    if not b:
        return ""
    cur = b["currency"]

    def rows(periods: list[dict[str, Any]]) -> list[list[Any]]:
        return [[p["period"], f"{p['value_delivered']:,.2f}", f"{p['cost_of_errors']:,.2f}", f"{p['net_value']:,.2f}",
                 p["hours_saved"], "" if p["adoption"] is None else f"{p['adoption']:.1%}", p["scored_rows"],
                 p["pending_rows"]] for p in periods]

    header = ["period", f"value delivered ({cur})", f"cost of errors ({cur})", f"net ({cur})", "hours saved",
              "adoption", "decisions", "pending labels"]
    vs = b["against_previous"]
    versus = ("<p>No earlier model version to compare with on these rows.</p>" if vs is None else
              f"<p>On the same {vs['rows']:,} labelled rows ({', '.join(vs['compared'])}), the served models' net value "
              f"was {vs['net_value']:,.2f} {cur} against {vs['previous_net_value']:,.2f} {cur} for their predecessors: "
              f"<b>{vs['gain']:+,.2f} {cur}</b>.</p>")
    return f"""<h2>Business value</h2>
<p class="note">Priced from realised outcomes with the engagement's <code>business:</code> values; rows whose labels
have not arrived are counted as pending, never priced. Hours saved: every scored row is an automated decision.
Adoption: the share of scored rows the client acted on (its feedback files), where feedback exists.</p>
{figure("value", "value delivered and cost of errors per prediction date")}
{figure("adoption", "share of scored rows the client acted on, per prediction date") if b["adoption"] else ""}
{html_table(header, rows(b["weeks"]))}{html_table(header, rows(b["months"]))}{versus}"""


def _approvals_html(data: dict[str, Any]) -> str:
    """Promotions a person answered, and one still waiting (issue 35); nothing for engagements without approval."""
    waiting, answers = data.get("awaiting_approval"), data.get("approvals") or []
    if not waiting and not answers:
        return ""
    head = ("<p><b>" + html.escape(f"v{waiting['version']} awaits approval by {', '.join(waiting['approvers'])} "
                                   f"since the night of {waiting['requested_for']}") + "</b></p>") if waiting else ""
    return ("<h2>Approvals</h2>" + head
            + html_table(["night", "model", "answer", "by", "at", "comment"],
                         [[a["night"], a["version"], a["outcome"], a["answered_by"] or "nobody (timeout)",
                           a["answered_at"], a["comment"]] for a in answers]))


def render_html(data: dict[str, Any]) -> str:
    c = data["counts"]
    img = {name: fn(data) for name, fn in (("performance", plot_performance), ("drift", plot_drift),
                                           ("batches", plot_batches), ("value", plot_value),
                                           ("adoption", plot_adoption))}

    def figure(name: str, alt: str) -> str:
        return f'<img alt="{alt}" src="data:image/png;base64,{img[name]}">' if img[name] else "<p>no data</p>"

    incident_rows = [[i["id"], i["condition"], i["state"], i["opened_on"], i["resolved_on"], i["recovery_nights"],
                      i["recovery_hours"], i["response"],
                      "; ".join(a.get("what", "") + (f" ({a['detail'][:80]})" if a.get("detail") else "")
                                for a in i["actions"] or []),
                      i["summary"][:160]] for i in data["incidents"]]
    retrains = [[d, n["outcome"], n["champion_before"], n["champion_after"]] for d, n in sorted(data["nights"].items())
                if n["outcome"] in ("retrain", "promote")]
    sla_rows = [[k, v["met"], v["missed"], v["not_judged"]] for k, v in sorted(data["sla"].items())]
    perf_rows = [[p["prediction_date"], p["model_version"], p["realised_value"], p["estimated_value"], p["estimate_error"],
                  p["labelled_rows"], p["labels_through"]] for p in data["performance"]]
    summary = [["nights recorded", c["nights_recorded"]], ["batches accepted", c["batches_accepted"]],
               ["batches quarantined", c["batches_quarantined"]], ["batches missing", c["batches_missing"]],
               ["predictions served", c["predictions_served"]], ["retrains", c["retrains"]],
               ["promotions", c["promotions"]], ["rollbacks", c["rollbacks"]],
               ["incidents opened", c["incidents_opened"]], ["incidents resolved", c["incidents_resolved"]],
               ["mean time to recovery (nights)", c["mean_recovery_nights"]]]
    title = f"{data['client']}: {data['use_case']} ({data['start']} to {data['end']})"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}}td,th{{border:1px solid #ccc;padding:.25em .5em;text-align:left}}
th{{background:#f3f3f3}}img{{max-width:100%}}.note{{color:#666;font-size:.85em}}
</style></head><body>
<h1>Outcome report: {html.escape(title)}</h1>
<p class="note">Engagement <code>{html.escape(data['engagement'])}</code>. Every number below is read from steward's
stored history (run, prediction, performance, drift, SLA and incident tables, and the audit ledger); nothing is
recomputed for the report. Realised performance uses the labels that had arrived by {html.escape(data['end'])};
estimated values (CBPE) were computed before labels arrived and never triggered an action.</p>
<h2>Summary</h2>{html_table(["", "value"], summary)}
{_business_html(data, figure)}
{_operating_html(data)}
<h2>Realised performance against the SLA</h2>{figure("performance", "realised performance over time")}
{html_table(["prediction date", "model", "realised " + data["metric"], "estimated", "estimate error", "labelled rows",
         "labels through"], perf_rows)}
<h2>SLA evaluations</h2>{html_table(["SLA", "met", "missed", "not judged"], sla_rows)}
<h2>Incidents and time to recovery</h2>
{html_table(["#", "condition", "state", "opened", "resolved", "time to recovery (nights)", "(hours)", "response",
         "actions", "summary"], incident_rows)}
<h2>Retrains, promotions and rollbacks</h2>
{html_table(["night", "outcome", "champion before", "champion after"], retrains)}
{html_table(["rollback night", "from", "to", "by", "reason"],
        [[r["night"], r["from_version"], r["to_version"], r["actor"], r["reason"]] for r in data["rollbacks"]])}
{_approvals_html(data)}
<h2>Batches and predictions served</h2>{figure("batches", "batches and predictions per night")}
<h2>Drift over time</h2>{figure("drift", "drift per top feature")}
<h2>Data-quality drift</h2>
<p class="note">Nights on which a column's share of empty cells, of values outside the reference's range, of unseen
categories or of one repeated value stayed above the reference's bound (ADR 0027). Those nights leave training
windows unless accepted.</p>
{html_table(["night", "column", "rate", "tonight", "reference", "bound", "rows"],
        [[q["logical_date"], q["column_name"], q["kind"], f"{q['rate']:.1%}", f"{(q['reference_rate'] or 0):.1%}",
          f"{q['bound']:.1%}", f"{q['events']} of {q['rows']}"] for q in data.get("quality_drift") or []])}
</body></html>
"""


def build(eng: Engagement, paths: StewardPaths, *, days: int, end: dt.date | None = None,
          out: Path | None = None) -> dict[str, Any]:
    """Write the HTML report and its JSON numbers. Returns paths and the numbers."""
    end = end or latest_night(paths, eng.id)
    if end is None:
        raise ReportError(f"{eng.id} has no recorded nights yet: run it first")
    start = end - dt.timedelta(days=days - 1)
    data = gather(eng, paths, start, end)
    target = out or inside(paths.artifacts, f"{eng.id}/reports/outcome_{start}_{end}.html")
    target.parent.mkdir(parents=True, exist_ok=True)
    batches.atomic_write_bytes(target, render_html(data).encode())
    batches.atomic_write_json(target.with_suffix(".json"), json.loads(json.dumps(data, default=str)))
    return {"html": str(target), "json": str(target.with_suffix(".json")), "data": data}
