"""The Engagements page: a FastAPI app served by the Airflow 3 API server (see plugins/steward_plugin.py).

Every route requires an authenticated Airflow user (bearer token or the UI's session cookie), and shows an
engagement only to a user whom Airflow's auth manager lets read its DAG (the DAG id is the engagement id): the
list leaves the others out, a page or report of one answers 404 as if it did not exist. The OpenAPI schema and
its docs pages are off (docs/security.md). Pages read
the per-engagement status summaries (`steward.operations.status`) and never recompute reports, so a page of 100
engagements is 100 small JSON reads.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from steward.config import discover
from steward.operations import status
from steward.settings import PathEscapeError, StewardPaths, engagements_dir, inside

REPORT_FILES = {"quality_report.html", "drift_report.html", "performance_report.html"}
# A stored report holds client data (an Evidently report embeds category values in a <script> block): it is
# served so that its script runs in an opaque origin, without the UI's cookies, storage or API (docs/security.md)
REPORT_HEADERS = {
    "Content-Security-Policy": "sandbox allow-scripts allow-popups; default-src 'none'; script-src 'unsafe-inline' "
                               "'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
                               "connect-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_STYLE = ("body{font-family:sans-serif;margin:1em;font-size:14px}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f2f2f2}"
          ".ok{color:#17702b}.bad{color:#b00020;font-weight:bold}.muted{color:#777}.warn{color:#9a5b00}")


def _auth_dependency():
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return Depends(requires_authenticated())


def _user_dependency():
    from airflow.api_fastapi.core_api.security import get_user

    return Depends(get_user)


def readable(user: Any, ids: list[str]) -> list[str]:
    """The engagements whose DAG `user` may read, by the deployment's auth manager (per-DAG permissions under
    the FAB auth manager; the simple auth manager lets every logged-in user read every DAG)."""
    from airflow.api_fastapi.app import get_auth_manager

    allowed = get_auth_manager().filter_authorized_dag_ids(dag_ids=set(ids), user=user, method="GET")
    return [i for i in ids if i in allowed]


def _mlflow_ui() -> str:
    return os.environ.get("STEWARD_MLFLOW_UI_URL", "http://localhost:5000").rstrip("/")


def _ids() -> list[str]:
    return [p.stem for p in discover(engagements_dir())]


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def _value_cell(r: dict) -> str:
    """Net value delivered over the last 30 prediction dates (ADR 0022); '-' without a business block."""
    v = r.get("value_30d")
    if not v:
        return "<td class='muted'>-</td>"
    cls = "ok" if v["net_value"] >= 0 else "bad"
    pending = f"<br><span class='muted'>{v['pending_rows']:,} pending</span>" if v["pending_rows"] else ""
    return (f"<td class='{cls}' title='value {v['value_delivered']:,.0f}, cost of errors {v['cost_of_errors']:,.0f}, "
            f"{v['hours_saved']:,.1f} h saved'>{v['net_value']:,.0f} {html.escape(v['currency'])}{pending}</td>")


def _added_cell(r: dict) -> str:
    """What operating the model added against never retraining (ADR 0025), over the labelled dates so far."""
    a = r.get("operating_added")
    if not a or a.get("added_vs_never_retrained") is None:
        return "<td class='muted'>-</td>"
    e = html.escape
    cls = "ok" if a["added_vs_never_retrained"] >= 0 else "bad"
    money = (f"<br>{a['value_added_vs_never_retrained']:+,.0f} {e(a['currency'] or '')}"
             if a.get("value_added_vs_never_retrained") is not None else "")
    title = (f"served {a['served']:.3f}, never retrained {a['never_retrained']:.3f}, refit every 7 nights "
             f"{a['periodic_refit']:.3f} ({a['metric']}, mean of {a['dates']} labelled dates)")
    return (f"<td class='{cls}' title='{e(title)}'>{a['added_vs_never_retrained']:+.3f} {e(a['metric'])}{money}"
            f"<br><span class='muted'>{a['dates']} dates</span></td>")


def render_table(rows: list[dict]) -> str:
    e = html.escape
    body = []
    for r in rows:
        eid = e(r["engagement"])
        if "client" not in r:
            body.append(f"<tr data-engagement='{eid}'><td><a href='engagements/{eid}'>{eid}</a></td>"
                        f"<td colspan='13' class='muted'>never run</td></tr>")
            continue
        metric_cls = "ok" if r["metric_ok"] else ("bad" if r["metric_ok"] is False else "muted")
        reports = " ".join(f"<a href='reports/{eid}/{e(r['last_night'])}/{e(name)}'>{e(kind)}</a>"
                           for kind, name in r["reports"].items())
        model = r.get("registered_model") or f"steward.{r['engagement']}"
        ledger_cell = ("<span class='ok'>verified</span>" if r["ledger_verified"]
                       else f"<span class='bad' title='{e(r['ledger_problem'] or '')}'>BROKEN</span>")
        if r.get("ledger_signed") is False:  # ADR 0017: a head nobody outside the state volume vouches for
            ledger_cell += f" <span class='warn' title='{e(r.get('ledger_unsigned_reason') or '')}'>unsigned</span>"
        body.append(
            f"<tr data-engagement='{eid}'><td><a href='engagements/{eid}'>{eid}</a></td>"
            f"<td>{e(r['client'])}</td><td>{e(r['use_case'])}</td><td>{e(r['owner'])}</td>"
            f"<td>{e(r['last_run_state'])}<br><span class='muted'>{e(r['last_night'])}</span></td>"
            f"<td class='{'ok' if r['quality'] == 'pass' else 'bad'}'>{e(_fmt(r['quality']))}"
            + (f"<br><span class='muted'>{r['quality_warnings']} warning(s)</span>" if r.get("quality_warnings") else "")
            + _quality_drift(r) + "</td>"
            + _drift_cell(r)
            + f"<td class='{metric_cls}'>{e(r['metric'])} {_fmt(r['metric_value'])} / {_fmt(r['metric_threshold'])}"
            + (f"<br><span class='muted'>{e(r['metric_note'])}</span>" if r.get("metric_note") else "") + "</td>"
            f"<td><a href='{e(_mlflow_ui())}/#/models/{e(model)}/versions/{_fmt(r['champion_version'])}'>"
            f"v{_fmt(r['champion_version'])}</a><br><span class='muted'>since {e(_fmt(r['champion_promoted_at']))}</span>"
            + (f"<br><span class='muted'>{e(r['shadow'])}</span>" if r.get("shadow") else "")
            + (f"<br><b>{e(r['awaiting_approval'])}</b>" if r.get("awaiting_approval") else "") + "</td>"
            + _value_cell(r) + _added_cell(r)
            + f"<td>{ledger_cell}</td><td>{r['open_incidents']}</td>"
            f"<td><a href='/dags/{eid}' target='_top'>DAG</a> {reports}</td></tr>"
        )
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Engagements</title><style>{_STYLE}</style>"
            "</head><body><h2>Engagements</h2><table id='engagements'><thead><tr><th>engagement</th><th>client</th>"
            "<th>use case</th><th>owner</th><th>last run</th><th>quality</th><th>drift share</th>"
            "<th>metric / SLA</th><th>champion</th><th>value (30 d)</th><th>vs never retrained</th><th>ledger</th><th>open incidents</th><th>links</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></body></html>")


def _svg_line(points: list[tuple[str, float | None]], title: str, threshold: float | None = None) -> str:
    """A dependency-free SVG line chart (the page must stay cheap to render)."""
    values = [v for _, v in points if v is not None]
    if not values:
        return f"<p class='muted'>{html.escape(title)}: no data yet</p>"
    lo, hi = min(values + ([threshold] if threshold is not None else [])), max(values + ([threshold] if threshold is not None else []))
    span = (hi - lo) or 1.0
    w, h, pad = 640, 180, 30
    step = (w - 2 * pad) / max(len(points) - 1, 1)

    def y(v: float) -> float:
        return h - pad - (v - lo) / span * (h - 2 * pad)

    line = " ".join(f"{pad + i * step:.1f},{y(v):.1f}" for i, (_, v) in enumerate(points) if v is not None)
    dots = "".join(f"<circle cx='{pad + i * step:.1f}' cy='{y(v):.1f}' r='3'><title>{html.escape(d)}: {v:.3f}</title></circle>"
                   for i, (d, v) in enumerate(points) if v is not None)
    floor = (f"<line x1='{pad}' x2='{w - pad}' y1='{y(threshold):.1f}' y2='{y(threshold):.1f}' stroke='#b00020' "
             f"stroke-dasharray='4'/><text x='{w - pad}' y='{y(threshold) - 4:.1f}' text-anchor='end' font-size='11' "
             f"fill='#b00020'>SLA {threshold}</text>") if threshold is not None else ""
    return (f"<figure><figcaption>{html.escape(title)}</figcaption><svg width='{w}' height='{h}' role='img'>"
            f"<polyline fill='none' stroke='#3b7dd8' stroke-width='2' points='{line}'/>{dots}{floor}"
            f"<text x='{pad}' y='{h - 8}' font-size='11'>{html.escape(points[0][0])}</text>"
            f"<text x='{w - pad}' y='{h - 8}' font-size='11' text-anchor='end'>{html.escape(points[-1][0])}</text>"
            f"<text x='2' y='{pad}' font-size='11'>{hi:.2f}</text><text x='2' y='{h - pad}' font-size='11'>{lo:.2f}</text>"
            "</svg></figure>")


def render_detail(summary: dict) -> str:
    row, history = summary["row"], summary["history"]
    e = html.escape
    perf = _svg_line([(h["date"], h["metric"]) for h in history], f"{row['metric']} per night (champion on labelled rows)",
                     row["metric_threshold"])
    drift = _svg_line([(h["date"], h["drift_share"]) for h in history], "share of drifted features per night")
    added = row.get("operating_added") or {}
    operating = "" if not added else (
        f"<h3>What operating the model added</h3><p>{e(added['metric'])} per labelled prediction date, mean of "
        f"{added['dates']} dates on the same rows (ADR 0025): served <b>{_fmt(added['served'])}</b>, never retrained "
        f"{_fmt(added['never_retrained'])}, refit every 7 nights without a gate {_fmt(added['periodic_refit'])}"
        + (f"; net value served {added['served_net']:,.0f}, never retrained {added['never_retrained_net']:,.0f} "
           f"{e(added['currency'] or '')}" if added.get("served_net") is not None
           and added.get("never_retrained_net") is not None else "") + ".</p>")
    nights = "".join(f"<tr><td>{e(h['date'])}</td><td>{e(h['outcome'])}</td><td>{_fmt(h['metric'])}</td>"
                     f"<td>{_fmt(h['drift_share'], 2)}</td><td>v{_fmt(h['champion'])}</td></tr>" for h in reversed(history))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(row['engagement'])}</title><style>{_STYLE}</style>"
            f"</head><body><p><a href='../engagements'>&larr; all engagements</a></p><h2>{e(row['engagement'])}: "
            f"{e(row['client'])}, {e(row['use_case'])}</h2>{perf}{drift}{operating}<h3>Nights</h3><table><tr><th>night</th>"
            f"<th>outcome</th><th>{e(row['metric'])}</th><th>drift share</th><th>champion</th></tr>{nights}</table>"
            "</body></html>")


def create_app() -> FastAPI:
    # no /docs, /redoc or /openapi.json: they would describe the routes to anyone, logged in or not
    app = FastAPI(title="steward", description="Engagements of this deployment", dependencies=[_auth_dependency()],
                  docs_url=None, redoc_url=None, openapi_url=None)
    user_dep = _user_dependency()

    @app.get("/engagements", response_class=HTMLResponse)
    def engagements_page(user=user_dep) -> str:
        return render_table(status.all_rows(StewardPaths.from_env(), readable(user, _ids())))

    @app.get("/api/engagements")
    def engagements_json(user=user_dep) -> JSONResponse:
        return JSONResponse(status.all_rows(StewardPaths.from_env(), readable(user, _ids())))

    @app.get("/engagements/{engagement_id}", response_class=HTMLResponse)
    def engagement_detail(engagement_id: str, user=user_dep) -> str:
        if engagement_id not in readable(user, [i for i in _ids() if i == engagement_id]):
            raise HTTPException(404, f"unknown engagement {engagement_id}")
        summary = status.read(StewardPaths.from_env(), engagement_id)
        if summary is None:
            raise HTTPException(404, f"{engagement_id} has not run yet")
        return render_detail(summary)

    @app.get("/reports/{engagement_id}/{night}/{name}")
    def report(engagement_id: str, night: str, name: str, user=user_dep) -> FileResponse:
        if name not in REPORT_FILES or engagement_id not in readable(user, [i for i in _ids() if i == engagement_id]):
            raise HTTPException(404, "no such report")
        try:
            path: Path = inside(StewardPaths.from_env().artifacts, f"{engagement_id}/{night}/{name}")
        except PathEscapeError:
            raise HTTPException(404, "no such report") from None
        if not path.is_file():
            raise HTTPException(404, "no such report")
        return FileResponse(path, media_type="text/html", headers=REPORT_HEADERS)

    return app


def _quality_drift(r: dict[str, Any]) -> str:
    """Data-quality drift (ADR 0027): the alarming columns, what moved in the tooltip."""
    e = html.escape
    if r.get("quality_drift") == "alarm":
        columns = ", ".join(r.get("quality_drift_columns") or [])
        return (f"<br><span class='bad' title='{e(r.get('quality_drift_summary') or '')}'>quality drift: "
                f"{e(columns)}</span>")
    if r.get("quality_drift") == "flagged":
        return f"<br><span class='warn' title='{e(r.get('quality_drift_summary') or '')}'>rates flagged</span>"
    return ""


def _drift_cell(r: dict[str, Any]) -> str:
    """Drift share with its state: DRIFT when persistent, 'not enough data yet' (a state, not an alarm)."""
    e = html.escape
    if r.get("drift_state") == "not_enough_data":
        return "<td class='muted'>not enough data yet</td>"
    flag = " DRIFT" if r.get("dataset_drift") and r.get("drift_persistent", True) else \
        (" drift (1 night)" if r.get("dataset_drift") else "")
    ref = f"<br><span class='muted'>vs {e(r['drift_reference'])}</span>" if r.get("drift_reference") else ""
    return f"<td>{_fmt(r['drift_share'], 2)}{flag}{ref}</td>"
