"""A client's portfolio: every engagement of one client in one HTML page an account lead can send as it is.

Outcomes and business value, SLA attainment, incidents and time to recovery, retrains, promotions and
rollbacks, and the open risks, per engagement and for the client, from the same stored history as each
engagement's outcome report (steward.operations.report.gather); nothing is recomputed. ADR 0022.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from steward.config import Engagement
from steward.operations import report, status
from steward.settings import StewardPaths, inside
from steward.sources import batches


class PortfolioError(ValueError):
    """No engagement belongs to the client, or none has run yet."""


def engagements_of(client: str, engagements: dict[str, Engagement]) -> list[Engagement]:
    """The engagements whose client is `client`: its display name or the client file they inherit."""
    wanted = client.strip().lower()
    return [e for e in engagements.values()
            if e.client.strip().lower() == wanted or (e.client_defaults or "").lower() == wanted]


def open_risks(eng: Engagement, paths: StewardPaths, data: dict[str, Any]) -> list[str]:
    """What an account lead must know now: open incidents, missed SLAs, a failing metric, a broken or unsigned
    ledger, a candidate in shadow."""
    risks = [f"open incident #{i['id']}: {i['condition']} since {i['opened_on']}" for i in data["incidents"]
             if i["state"] in ("open", "acknowledged")]
    for sla, counts in sorted(data["sla"].items()):
        if counts["missed"]:
            risks.append(f"SLA {sla} missed on {counts['missed']} of {counts['met'] + counts['missed']} judged nights")
    row = (status.read(paths, eng.id) or {}).get("row") or {}
    if row.get("metric_ok") is False:
        risks.append(f"{row['metric']} {row['metric_value']:.3f} is past its threshold {row['metric_threshold']}")
    if row and row.get("ledger_verified") is False:
        risks.append(f"audit ledger does not verify: {row.get('ledger_problem')}")
    if row.get("shadow"):
        risks.append(f"candidate in shadow: {row['shadow']}")
    if data["counts"]["failed_runs"]:
        risks.append(f"{data['counts']['failed_runs']} failed night(s)")
    return risks


def gather(client: str, engagements: list[Engagement], paths: StewardPaths, days: int,
           end: dt.date | None = None) -> dict[str, Any]:
    if not engagements:
        raise PortfolioError(f"no engagement has client {client!r} (its display name or client file)")
    ends = [end or report.latest_night(paths, e.id) for e in engagements]
    last = max((d for d in ends if d is not None), default=None)
    if last is None:
        raise PortfolioError(f"no engagement of {client!r} has run yet")
    start = last - dt.timedelta(days=days - 1)
    rows = []
    for eng in engagements:
        data = report.gather(eng, paths, start, last)
        rows.append({"engagement": eng.id, "use_case": eng.use_case, "owner": eng.owner, "data": data,
                     "risks": open_risks(eng, paths, data)})
    values = [r["data"]["business"]["total"] for r in rows if r["data"].get("business")]
    currencies = {v["currency"] for v in values}
    return {"client": engagements[0].client, "start": start.isoformat(), "end": last.isoformat(), "engagements": rows,
            "net_value": round(sum(v["net_value"] for v in values), 2) if len(currencies) == 1 else None,
            "currency": currencies.pop() if len(currencies) == 1 else None}


def _sla_attainment(data: dict[str, Any]) -> str:
    judged = {k: v["met"] + v["missed"] for k, v in data["sla"].items()}
    if not any(judged.values()):
        return "not judged yet"
    return ", ".join(f"{k} {v['met'] / judged[k]:.0%}" for k, v in sorted(data["sla"].items()) if judged[k])


def _plot(portfolio: dict[str, Any]) -> str | None:
    valued = [r for r in portfolio["engagements"] if r["data"].get("business")]
    if not valued:
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.5 * len(valued)))
    names = [r["engagement"] for r in valued]
    totals = [r["data"]["business"]["total"] for r in valued]
    ax.barh(names, [t["value_delivered"] for t in totals], color="#2ca02c", label="value delivered")
    ax.barh(names, [-t["cost_of_errors"] for t in totals], color="#d62728", label="cost of errors")
    ax.scatter([t["net_value"] for t in totals], names, color="#1f77b4", zorder=3, label="net")
    ax.axvline(0, color="#999", linewidth=0.8)
    ax.set_xlabel(" / ".join(sorted({t["currency"] for t in totals})))
    ax.legend(fontsize=8, loc="lower right")
    return report.png(fig)


def render_html(portfolio: dict[str, Any]) -> str:
    e = html.escape
    summary, sections = [], []
    for r in portfolio["engagements"]:
        d, c = r["data"], r["data"]["counts"]
        total = (d.get("business") or {}).get("total")
        net = "-" if not total else f"{total['net_value']:,.0f} {total['currency']}"
        added = (d.get("operating") or {}).get("summary") or {}
        versus = "-" if added.get("added_vs_never_retrained") is None else \
            f"{added['added_vs_never_retrained']:+.3f} {added['metric']}" + (
                "" if added.get("value_added_vs_never_retrained") is None else
                f", {added['value_added_vs_never_retrained']:+,.0f} {added['currency']}")
        summary.append([r["engagement"], r["use_case"], c["nights_recorded"], c["predictions_served"], net, versus,
                        _sla_attainment(d), f"{c['incidents_opened']} / {c['incidents_resolved']}",
                        c["mean_recovery_nights"], f"{c['retrains']} / {c['promotions']} / {c['rollbacks']}",
                        len(r["risks"])])
        risks = "".join(f"<li>{e(x)}</li>" for x in r["risks"]) or "<li>none</li>"
        perf = report.plot_performance(d)
        img = f'<img alt="realised performance" src="data:image/png;base64,{perf}">' if perf else ""
        sections.append(f"<h2>{e(r['engagement'])}: {e(r['use_case'])}</h2><p class='note'>owner {e(r['owner'])}; "
                        f"{c['batches_accepted']} batches accepted, {c['batches_quarantined']} quarantined, "
                        f"{c['batches_missing']} missing</p><h3>Open risks</h3><ul>{risks}</ul>{img}")
    plot = _plot(portfolio)
    value_img = f'<img alt="value per engagement" src="data:image/png;base64,{plot}">' if plot else ""
    net = ("" if portfolio["net_value"] is None else
           f"<p><b>Net value delivered: {portfolio['net_value']:,.0f} {e(portfolio['currency'])}</b> over the period "
           "(value of correct decisions minus the cost of errors, from realised outcomes).</p>")
    title = f"{portfolio['client']}: portfolio ({portfolio['start']} to {portfolio['end']})"
    header = ["engagement", "use case", "nights", "predictions", "net value", "added vs never retrained", "SLA attainment",
              "incidents opened / resolved", "mean time to recovery (nights)", "retrains / promotions / rollbacks",
              "open risks"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}}td,th{{border:1px solid #ccc;padding:.25em .5em;text-align:left}}
th{{background:#f3f3f3}}img{{max-width:100%}}.note{{color:#666;font-size:.85em}}
</style></head><body>
<h1>{e(title)}</h1>
<p class="note">Every engagement steward runs for {e(portfolio['client'])}, from the stored history (runs,
predictions, realised outcomes, SLA evaluations, incidents, the audit ledger). Pending labels are never priced.</p>
{net}{value_img}{report.html_table(header, summary)}
{''.join(sections)}
</body></html>
"""


def build(client: str, engagements: list[Engagement], paths: StewardPaths, *, days: int, end: dt.date | None = None,
          out: Path | None = None) -> dict[str, Any]:
    """Write the portfolio page and its JSON numbers."""
    portfolio = gather(client, engagements, paths, days, end)
    slug = "".join(ch if ch.isalnum() else "_" for ch in portfolio["client"].lower()).strip("_") or "client"
    target = out or inside(paths.artifacts, f"_clients/{slug}/portfolio_{portfolio['start']}_{portfolio['end']}.html")
    target.parent.mkdir(parents=True, exist_ok=True)
    batches.atomic_write_bytes(target, render_html(portfolio).encode())
    batches.atomic_write_json(target.with_suffix(".json"), json.loads(json.dumps(portfolio, default=str)))
    return {"html": str(target), "json": str(target.with_suffix(".json")), "data": portfolio}
