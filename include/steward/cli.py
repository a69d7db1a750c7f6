"""The `steward` command line. Exit codes: 0 ok, 1 a run or check failed, 2 usage or input error."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from steward.config import SAFE_ID, EngagementConfigError, discover, load_all, load_engagement
from steward.onboard import DEFAULT_CLIENT, DEFAULT_OWNER
from steward.settings import StewardPaths, configure_embedded_airflow, engagements_dir

app = typer.Typer(help="steward: nightly ML operations for many engagements, on Airflow 3.", no_args_is_help=True,
                  add_completion=False)
# Wide enough for the summary table when output goes to a file or CI log (no terminal to measure).
console = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


def _fail_usage(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail_usage(f"--date must be YYYY-MM-DD, got {value!r}")
        raise  # unreachable


def _known_engagement(engagement: str) -> Path:
    path = engagements_dir() / f"{engagement}.yaml"
    if not path.is_file():
        _fail_usage(f"unknown engagement {engagement!r}; known: {', '.join(p.stem for p in discover(engagements_dir()))}")
    try:
        load_engagement(path)
    except EngagementConfigError as exc:
        _fail_usage(str(exc))
    return path


@app.command("list")
def list_engagements() -> None:
    """Engagement ids, one per line (invalid files are reported on stderr)."""
    good, errors = load_all(engagements_dir())
    for eng_id in good:
        print(eng_id)
    for e in errors:
        err.print(f"[yellow]invalid:[/yellow] {e}")


@app.command("validate-config")
def validate_config(
    path: Annotated[Path | None, typer.Argument(help="a YAML file or a folder; default: include/engagements")] = None,
    explain: Annotated[bool, typer.Option(
        "--explain", help="print every merged value and the file it came from (client defaults in cyan)")] = False,
) -> None:
    """Lint engagement files (and the client files they inherit). Exit 0 when all are valid, 1 otherwise."""
    from rich.table import Table

    from steward import clients

    target = path or engagements_dir()
    files = [target] if target.is_file() else discover(target)
    if not files:
        _fail_usage(f"no engagement files in {target}")
    bad = 0
    for f in files:
        try:
            load_engagement(f)
        except EngagementConfigError as exc:
            bad += 1
            console.print(f"[red]invalid[/red] {exc}")
            continue
        inherited = [s.name for s in clients.config_sources(f)[:-1]]
        console.print(f"[green]ok[/green]      {f}" + (f" (inherits {', '.join(inherited)})" if inherited else ""))
        if explain:
            table = Table("field", "value", "from", box=None, pad_edge=False)
            for field, value, source in clients.explain(f):
                table.add_row(field, _short(value), source, style=None if source == f.name else "cyan")
            console.print(table)
    raise typer.Exit(1 if bad else 0)


def _short(value: object, width: int = 70) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 3] + "..."


@app.command("run")
def run(
    engagement: Annotated[str, typer.Argument(help="engagement id")],
    date: Annotated[str, typer.Option("--date", help="logical date YYYY-MM-DD")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show Airflow task logs")] = False,
) -> None:
    """One nightly run of the engagement's real DAG, in-process (dag.test)."""
    eng = load_engagement(_known_engagement(engagement))
    day = _parse_date(date)
    if day < eng.start_date:
        _fail_usage(f"{day} is before {engagement}'s start_date {eng.start_date}: Airflow runs no task for it")
    configure_embedded_airflow()
    from steward.airflow.runner import run_night

    result = run_night(engagement, day, quiet=not verbose)
    record = result["audit"]
    if record is None or record["run"]["run_id"] != result["run_id"]:
        err.print(f"[red]{engagement} {day}: run {result['state']} but no audit record was written; see {result['log']}")
        raise typer.Exit(1)
    console.print(f"{engagement} {day}: run {result['state']}, outcome {record['outcome']}")
    raise typer.Exit(0 if result["state"].endswith("success") else 1)


@app.command("backfill")
def backfill(
    engagement: Annotated[str, typer.Argument(help="engagement id")],
    first: Annotated[str, typer.Option("--from", help="first night YYYY-MM-DD")],
    last: Annotated[str, typer.Option("--to", help="last night YYYY-MM-DD")],
    results: Annotated[Path | None, typer.Option("--results", help="also write the per-night results as JSON")] = None,
) -> None:
    """Run the real DAG for every night from --from to --to, in order, in one process (dag.test).

    A failed night is recorded and the next night still runs; the summary table follows. Exit 1 when any
    night failed.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from steward.operations import summary

    eng = load_engagement(_known_engagement(engagement))
    day0, day1 = _parse_date(first), _parse_date(last)
    if day1 < day0:
        _fail_usage(f"--to {day1} is before --from {day0}")
    if day0 < eng.start_date:
        _fail_usage(f"{day0} is before {engagement}'s start_date {eng.start_date}: Airflow runs no task for it")
    configure_embedded_airflow()
    from steward.airflow.runner import run_nights

    total = (day1 - day0).days + 1
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as progress:
        task = progress.add_task(f"{engagement} backfill", total=total)

        def report(day: dt.date, night: dict, seconds: float) -> None:
            ok = night["state"].endswith("success")
            progress.console.print(f"  {day}  {night['outcome'] or '-':<10} [{'green' if ok else 'red'}]{night['state']}[/]"
                                   f" ({seconds:.1f}s)" + ("" if ok else f"  log: {night['log'] or night['error']}"))
            progress.advance(task)

        nights = run_nights(engagement, day0, day1, on_night=report)
    if results is not None:
        import json

        results.write_text(json.dumps([{k: v for k, v in n.items() if k != "audit"} for n in nights], indent=2))
    console.print(summary.table(StewardPaths.from_env(), engagement))
    failed = [n["date"] for n in nights if not n["state"].endswith("success")]
    seconds = sum(n["seconds"] for n in nights)
    console.print(f"{engagement}: {len(nights)} nights in {seconds:.0f}s ({seconds / len(nights):.1f}s a night); "
                  + (f"[red]{len(failed)} failed: {', '.join(failed)}[/red]" if failed else "none failed"))
    raise typer.Exit(1 if failed else 0)


@app.command("demo")
def demo_cmd(
    nights: Annotated[int, typer.Option(help="number of simulated nights (>= 14 for every scenario)")] = 16,
    start: Annotated[str, typer.Option(help="first logical date")] = "2026-03-01",
    engagement: Annotated[list[str] | None, typer.Option("--engagement", "-e", help="limit to these")] = None,
) -> None:
    """Generate the demo data, run every night of the demo engagements, print the summary."""
    from steward import demo
    from steward.operations import summary

    configure_embedded_airflow()
    from steward.airflow.runner import run_night

    paths = StewardPaths.from_env()
    first = _parse_date(start)
    ids = engagement or list(demo.DEMOS)
    unknown = [e for e in ids if e not in demo.DEMOS]
    if unknown:
        _fail_usage(f"no demo generator for {', '.join(unknown)}; demos: {', '.join(demo.DEMOS)}")
    console.print(f"[bold]steward demo[/bold]: {len(ids)} engagements x {nights} nights; state in {paths.home}")
    failures = 0
    for eng_id in ids:
        plan = demo.generate(eng_id, paths.data_root, first, nights)
        for day in demo.night_dates(first, nights):
            t0 = time.perf_counter()
            result = run_night(eng_id, day)
            outcome = (result["audit"] or {}).get("outcome", "-")
            ok = result["state"].endswith("success")
            failures += 0 if ok else 1
            console.print(f"  {eng_id} {day}  {plan[day.isoformat()]:<14} -> {outcome:<10} "
                          f"[{'green' if ok else 'red'}]{result['state']}[/] ({time.perf_counter() - t0:.1f}s)"
                          + ("" if ok else f"  log: {result['log']}"))
    for eng_id in ids:
        console.print(summary.table(paths, eng_id, scenarios=demo.generate(eng_id, paths.data_root, first, nights)))
    _print_value(paths, ids, demo.night_dates(first, nights))
    console.print(f"Airflow home: {paths.airflow_home}   MLflow: {paths.tracking_uri}   artifacts: {paths.artifacts}")
    raise typer.Exit(1 if failures else 0)


def _print_value(paths: StewardPaths, ids: list[str], nights: list[dt.date]) -> None:
    """Value delivered per engagement over the nights just run (engagements with a `business:` block)."""
    from rich.table import Table

    from steward.operations import value

    table = Table("engagement", "value delivered", "cost of errors", "net", "hours saved", "adoption", "decisions",
                  "pending labels", title="Business value over the demo's nights (steward.operations.value)")
    for eng_id in ids:
        eng = load_engagement(_known_engagement(eng_id))
        if eng.business is None:
            continue
        v = value.period(eng, paths, nights[0], nights[-1])
        cur = v["currency"]
        table.add_row(eng_id, f"{v['value_delivered']:,.0f} {cur}", f"{v['cost_of_errors']:,.0f} {cur}",
                      f"{v['net_value']:,.0f} {cur}", f"{v['hours_saved']:,.1f}",
                      "-" if v["adoption"] is None else f"{v['adoption']:.0%}", f"{v['scored_rows']:,}",
                      f"{v['pending_rows']:,}")
    if table.row_count:
        console.print(table)


@app.command("summary")
def summary_cmd(engagement: Annotated[str, typer.Argument(help="engagement id")]) -> None:
    """Per-night table from the audit records: rows, quality, drift, performance, decision, champion."""
    from steward.operations import summary

    _known_engagement(engagement)
    console.print(summary.table(StewardPaths.from_env(), engagement))


@app.command("onboard")
def onboard_cmd(
    target: Annotated[str, typer.Option("--target", help="the column to predict")],
    engagement: Annotated[str, typer.Option("--id", help="engagement id (lowercase, digits, underscores)")],
    data: Annotated[Path | None, typer.Option("--data", help="reference data (.csv or .parquet)")] = None,
    sql: Annotated[str | None, typer.Option(
        "--sql", help="an Airflow connection id (Postgres): the nightly rows come from --table in that database")] = None,
    table: Annotated[str | None, typer.Option("--table", help="with --sql: [schema.]table")] = None,
    date_column: Annotated[str | None, typer.Option(
        "--date-column", help="with --sql: the column dating each row (default: the table's only date column)")] = None,
    client: Annotated[str, typer.Option(
        help="a client file's name (include/clients/NAME.yaml: the engagement inherits from it), else the "
        "client's display name")] = DEFAULT_CLIENT,
    use_case: Annotated[str, typer.Option("--use-case", help="use case")] = "TBD use case",
    owner: Annotated[str, typer.Option(help="owner (e-mail)")] = DEFAULT_OWNER,
    sensitive: Annotated[list[str] | None, typer.Option("--sensitive", help="sensitive attribute (repeat)")] = None,
    id_column: Annotated[str | None, typer.Option("--id-column", help="row id column (inferred when omitted)")] = None,
    start: Annotated[str | None, typer.Option("--start-date", help="first night that can run (default today)")] = None,
    labels: Annotated[str | None, typer.Option(
        "--labels", help="folder where label files arrive (absolute, or under the data root): the batches "
        "carry no target")] = None,
    label_delay: Annotated[int | None, typer.Option(
        "--label-delay", help="nights between a batch and its labels (default: measured on the sample files)")] = None,
    rows_per_night: Annotated[int | None, typer.Option("--rows-per-night", help="expected nightly volume")] = None,
    batches: Annotated[Path | None, typer.Option(
        "--batches", help="folder of sample nightly batches: types, volume and file pattern are read from them")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing engagement file")] = False,
    like: Annotated[str | None, typer.Option(
        "--like", help="an existing engagement id: the new one takes its client file, client, owner, label delay, "
        "schedule, SLAs, responses, alerts, execution and governance owners, region and retention; only the "
        "data and target are new")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="adopt an existing pipeline as champion v1: a skops file, or an MLflow model URI "
        "models:/NAME/VERSION saved with skops; candidates are clones of it (ADR 0032)")] = None,
    trust: Annotated[list[str] | None, typer.Option(
        "--trust", help="with --model: a type you reviewed that the model file holds (repeat); appended to "
        "include/reviewed-skops-types.txt and recorded in the ledger")] = None,
) -> None:
    """Profile reference data (a file, or a database table's latest nights) and write a complete, commented
    include/engagements/<id>.yaml."""
    import getpass
    import tempfile

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from steward import onboard
    from steward.clients import client_file
    from steward.governance.retention import storage_region

    if (data is None) == (sql is None) or (sql is not None) != (table is not None):
        _fail_usage("give either --data FILE, or --sql CONN_ID with --table NAME")
    like_path = None
    if like is not None:
        like_path = engagements_dir() / f"{like}.yaml"
        if not SAFE_ID.match(like) or not like_path.is_file():
            _fail_usage(f"--like {like!r}: no engagement file {like_path}")
    client_path = client_file(engagements_dir() / f"{engagement}.yaml", client) if SAFE_ID.match(client) else None
    req = onboard.Request(data=data or Path("reference.parquet"), target=target, engagement_id=engagement, client=client, use_case=use_case,
                          client_defaults=client if client_path is not None and client_path.is_file() else None,
                          owner=owner, sensitive=list(sensitive or []), id_column=id_column, region=storage_region(),
                          start_date=_parse_date(start) if start else dt.date.today(), force=force,
                          labels=labels, label_delay=label_delay, rows_per_night=rows_per_night, batches=batches,
                          like=like_path, model=model, trust=tuple(trust or ()), adopted_by=getpass.getuser())
    if trust and model is None:
        _fail_usage("--trust only applies with --model")
    with tempfile.TemporaryDirectory() as workdir, Progress(
            TextColumn("reading {task.description}"), BarColumn(), DownloadColumn(), console=err,
            transient=True) as progress:
        task = progress.add_task(table or req.data.name, total=None)
        try:
            if sql is not None and table is not None:
                req = onboard.from_table(req, _sql_engine(sql), sql, table, date_column, Path(workdir))
            result = onboard.onboard(req, engagements_dir(), StewardPaths.from_env().data_root,
                                     progress=lambda done, total: progress.update(task, completed=done, total=total))
        except onboard.OnboardError as exc:
            progress.stop()
            _fail_usage(str(exc))
    console.print(f"[green]wrote[/green] {result['path']}: {result['problem_type']}, {result['features']} features, "
                  f"id column {result['id_column']}, {result['rows']} reference rows (copied to {result['reference']})")
    for column, why in result["carried"].items():
        console.print(f"  {column}: {why}")
    if result["adopted"]:
        a = result["adopted"]
        console.print(f"adopted {model} as champion v1 ({a['kind']}, sha256 {a['sha256'][:12]}…, copied to {a['file']}); "
                      f"on the reference: {', '.join(f'{k} {v}' for k, v in a['baseline'].items())}"
                      + (f"; trusted after review: {', '.join(a['trusted'])}" if a["trusted"] else ""))
    console.print(f"Nightly batches go to {result['batches']}/ (expected rows: {result['row_count']})"
                  + (f"; labels to {result['labels']}/, {result['label_delay']} night(s) later" if result["labels"] else "")
                  + f"\nfirst night: steward run {engagement} --date YYYY-MM-DD")


def _sql_engine(conn_id: str) -> Any:
    """The engine of an Airflow connection (as the nightly tasks resolve it), or a usage error."""
    from steward.airflow.connections import ConnectionNotDefinedError, engine_for

    try:
        return engine_for(conn_id)
    except ConnectionNotDefinedError as exc:
        _fail_usage(str(exc))


@app.command("status")
def status_cmd(
    engagement: Annotated[str, typer.Argument(help="engagement id")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """The engagement's latest facts (the same row as the Engagements page). Exit 1 when it needs attention."""
    import json

    from steward.operations import status

    _known_engagement(engagement)
    summary = status.read(StewardPaths.from_env(), engagement)
    if summary is None:
        console.print(f"{engagement}: never run")
        raise typer.Exit(1)
    row = summary["row"]
    if as_json:
        print(json.dumps(row, indent=2, sort_keys=True))
    else:
        for key in ("client", "use_case", "owner", "last_night", "last_run_state", "outcome", "quality",
                    "failed_checks", "drift_share", "metric", "metric_value", "metric_threshold", "metric_ok",
                    "champion_version", "champion_promoted_at", "shadow", "ledger_verified", "ledger_seq",
                    "ledger_signed", "ledger_unsigned_reason", "open_incidents"):
            console.print(f"{key:>22}: {row.get(key)}")
    healthy = (row["last_run_state"] == "success" and row["ledger_verified"] and row["metric_ok"] is not False
               and not row.get("open_incidents"))
    raise typer.Exit(0 if healthy else 1)


model_app = typer.Typer(help="Model registry operations.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("rollback")
def model_rollback(
    engagement: Annotated[str, typer.Argument(help="engagement id")],
    reason: Annotated[str, typer.Option("--reason", help="why (written to the ledger)")],
    to: Annotated[str | None, typer.Option(
        "--to", help="version to restore, or `adopted` (the model adopted at onboarding); default: the previous "
        "champion")] = None,
) -> None:
    """Move the champion alias back to an earlier version; the reason goes into the ledger."""
    import getpass

    from steward.models import rollback

    eng = load_engagement(_known_engagement(engagement))
    if to is not None and to != rollback.ADOPTED and not to.isdigit():
        _fail_usage(f"--to {to!r}: a version number or `adopted`")
    try:
        result = rollback.rollback(eng, StewardPaths.from_env(), reason=reason,
                                   to_version=None if to is None else to if to == rollback.ADOPTED else int(to),
                                   actor=f"cli:{getpass.getuser()}")
    except rollback.RollbackError as exc:
        _fail_usage(str(exc))
    _sign_head(StewardPaths.from_env(), engagement)  # a rollback entry is covered like a night's (issue 32)
    console.print(f"{engagement}: champion v{result['from']} -> v{result['to']} (ledger entry {result['ledger_seq']})")


@app.command("report")
def report_cmd(
    engagement: Annotated[str | None, typer.Argument(help="engagement id (or --client)")] = None,
    client: Annotated[str | None, typer.Option(
        "--client", help="every engagement of this client (display name or client file) in one portfolio page")] = None,
    period: Annotated[str, typer.Option(help="nights covered, ending on --end, e.g. 30d")] = "30d",
    end: Annotated[str | None, typer.Option(help="last night YYYY-MM-DD (default: the latest recorded night)")] = None,
    out: Annotated[Path | None, typer.Option(help="HTML file to write (a .json with the numbers goes beside it)")] = None,
) -> None:
    """The client's outcome report (HTML with plots) from the stored history: realised performance against
    the SLA, business value, drift, batches and quarantines, retrains, promotions and rollbacks, incidents and
    time to recovery. With --client: one portfolio page for every engagement of that client."""
    from steward.operations import portfolio, report

    if (engagement is None) == (client is None):
        _fail_usage("give an engagement id or --client NAME (not both)")
    paths = StewardPaths.from_env()
    try:
        days = report.parse_period(period)
        last = _parse_date(end) if end else None
        if client is not None:
            engagements, _ = load_all(engagements_dir())
            result = portfolio.build(client, portfolio.engagements_of(client, engagements), paths, days=days,
                                     end=last, out=out)
            data = result["data"]
            console.print(f"{data['client']} {data['start']}..{data['end']}: {len(data['engagements'])} engagements, "
                          + (f"net value {data['net_value']:,.0f} {data['currency']}, " if data["net_value"] is not None else "")
                          + f"{sum(len(r['risks']) for r in data['engagements'])} open risks")
            console.print(f"portfolio: {result['html']}\nnumbers: {result['json']}")
            return
        eng = load_engagement(_known_engagement(engagement))
        result = report.build(eng, paths, days=days, end=last, out=out)
    except (report.ReportError, portfolio.PortfolioError) as exc:
        _fail_usage(str(exc))
        return
    c = result["data"]["counts"]
    console.print(f"{engagement} {result['data']['start']}..{result['data']['end']}: {c['nights_recorded']} nights, "
                  f"{c['predictions_served']} predictions, {c['incidents_opened']} incidents "
                  f"(mean recovery {c['mean_recovery_nights']} nights), {c['rollbacks']} rollbacks")
    business = result["data"].get("business")
    if business:
        t = business["total"]
        console.print(f"value delivered {t['value_delivered']:,.0f} {t['currency']}, cost of errors "
                      f"{t['cost_of_errors']:,.0f}, net {t['net_value']:,.0f}; {t['hours_saved']:,.1f} hours saved; "
                      f"{t['pending_rows']:,} decisions waiting for labels")
    console.print(f"report: {result['html']}\nnumbers: {result['json']}")


incident_app = typer.Typer(help="Incidents: list, acknowledge, resolve by hand, draft a report, classify.",
                           no_args_is_help=True)
app.add_typer(incident_app, name="incident")


@incident_app.command("list")
def incident_list(
    engagement: Annotated[str, typer.Argument(help="engagement id")],
    open_only: Annotated[bool, typer.Option("--open", help="only open or acknowledged incidents")] = False,
) -> None:
    """Incidents of an engagement with state and time to recovery."""
    from rich.table import Table

    from steward.operations import incidents

    _known_engagement(engagement)
    t = Table(title=f"{engagement}: incidents", header_style="bold")
    for col in ("#", "condition", "state", "opened", "resolved", "recovery (nights)", "response", "summary"):
        t.add_column(col)
    for i in incidents.list_for(StewardPaths.from_env(), engagement):
        if open_only and i["state"] == incidents.RESOLVED:
            continue
        t.add_row(str(i["id"]), i["condition"], i["state"], i["opened_on"], i["resolved_on"] or "-",
                  "-" if i["recovery_nights"] is None else str(i["recovery_nights"]), i["response"], i["summary"][:90])
    console.print(t)


@incident_app.command("ack")
def incident_ack(
    incident_id: Annotated[int, typer.Argument(help="incident number")],
    by: Annotated[str, typer.Option("--by", help="who takes it")],
) -> None:
    """Acknowledge an open incident (someone is on it); it resolves when its condition clears."""
    from steward.operations import incidents

    try:
        inc = incidents.acknowledge(StewardPaths.from_env(), incident_id, by)
    except incidents.IncidentError as exc:
        _fail_usage(str(exc))
        return
    console.print(f"incident #{inc['id']} ({inc['engagement']} {inc['condition']}) acknowledged by {by}")


@incident_app.command("resolve")
def incident_resolve(
    incident_id: Annotated[int, typer.Argument(help="incident number")],
    note: Annotated[str, typer.Option("--note", help="what was done")],
    date: Annotated[str | None, typer.Option("--date", help="night it was resolved (default today)")] = None,
) -> None:
    """Resolve an incident by hand (e.g. a freshness incident after the client re-sent the file)."""
    from steward.operations import incidents

    day = (_parse_date(date) if date else dt.date.today()).isoformat()
    try:
        inc = incidents.close(StewardPaths.from_env(), incident_id, day, note)
    except incidents.IncidentError as exc:
        _fail_usage(str(exc))
        return
    console.print(f"incident #{inc['id']} resolved on {day} after {inc['recovery_nights']} night(s)")


@incident_app.command("report")
def incident_report_cmd(
    incident_id: Annotated[int, typer.Argument(help="incident number (steward incident list)")],
    deadline_days: Annotated[int, typer.Option(
        "--deadline-days", help="the regulatory clock: 2, 10 or 15 days (EU AI Act Art. 73), counted from the "
        "first signal")],
    by: Annotated[str | None, typer.Option("--by", help="who drafts it (default: the OS user)")] = None,
) -> None:
    """Draft an incident report from the stored facts (timeline, versions served, metrics before and after,
    actions, affected dates and rows), cited in the ledger; a person then classifies it."""
    import getpass

    from steward.operations import incident_report, incidents

    paths = StewardPaths.from_env()
    try:
        engagement = incidents.get(paths, incident_id)["engagement"]
    except incidents.IncidentError as exc:
        _fail_usage(str(exc))
        return
    eng = load_engagement(_known_engagement(engagement))
    try:
        result = incident_report.draft(eng, paths, incident_id, deadline_days=deadline_days,
                                       drafted_by=by or getpass.getuser())
    except incident_report.IncidentReportError as exc:
        _fail_usage(str(exc))
        return
    _sign_head(paths, engagement)
    console.print(f"incident #{incident_id} ({engagement}): report drafted, due {result['due']} if serious "
                  f"(ledger entry {result['ledger_seq']})\n  " + "\n  ".join(result["files"][:2]))


@incident_app.command("classify")
def incident_classify(
    incident_id: Annotated[int, typer.Argument(help="incident number")],
    serious: Annotated[bool, typer.Option("--serious/--not-serious", help="a person's decision (Art. 3(49))")],
    by: Annotated[str, typer.Option("--by", help="who decides")],
    reason: Annotated[str, typer.Option("--reason", help="why (written to the ledger)")],
) -> None:
    """Record whether an incident is serious, after its report was drafted."""
    from steward.operations import incident_report, incidents

    paths = StewardPaths.from_env()
    try:
        engagement = incidents.get(paths, incident_id)["engagement"]
        result = incident_report.classify(load_engagement(_known_engagement(engagement)), paths, incident_id,
                                          serious=serious, decided_by=by, reason=reason)
    except (incidents.IncidentError, incident_report.IncidentReportError) as exc:
        _fail_usage(str(exc))
        return
    _sign_head(paths, engagement)
    console.print(f"incident #{incident_id}: {'serious, report due ' + result['due'] if serious else 'not serious'} "
                  f"(ledger entry {result['ledger_seq']})")


audit_app = typer.Typer(help="Governance: verify the tamper-evident ledger, export auditor bundles.",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    engagement: Annotated[str | None, typer.Argument(help="engagement id; default: every engagement")] = None,
    skip_artifacts: Annotated[bool, typer.Option("--chain-only", help="check the hash chain, not the files")] = False,
    allowed_signers: Annotated[Path | None, typer.Option(
        "--allowed-signers", help="your own copy of the signing public key (OpenSSH allowed_signers or .pub "
        "lines): checkpoints must verify with it and cover every run entry")] = None,
) -> None:
    """Recompute the hash chain, the signed checkpoints and every cited artifact. Exit 1 naming the first
    broken entry."""
    from steward import store
    from steward.governance import ledger

    paths = StewardPaths.from_env()
    if engagement is not None:
        _known_engagement(engagement)
        ids = [engagement]
    else:
        # every ledger on disk, and every engagement the anchor ever saw: a ledger deleted with its engagement's
        # YAML is reported as missing, not silently skipped (issue 32)
        ids = sorted({p.name.removesuffix(".jsonl") for p in (paths.home / "ledger").glob("*.jsonl")
                      if not p.name.endswith(".checkpoints.jsonl")} | set(store.anchored_engagements(paths)))
        if not ids:
            _fail_usage(f"no ledgers under {paths.home / 'ledger'}")
    trusted = None
    if allowed_signers is not None:
        if not allowed_signers.is_file():
            _fail_usage(f"--allowed-signers: no file {allowed_signers}")
        trusted = _public_keys(allowed_signers)
        if not trusted:
            _fail_usage(f"--allowed-signers: {allowed_signers} holds no ssh-ed25519 public key")
    broken = 0
    for eng_id in ids:
        result = ledger.verify(paths, eng_id, check_artifacts=not skip_artifacts, trusted_keys=trusted,
                               anchors=store.heads_of(paths, eng_id))
        if result.ok:
            signed = (f"signed through entry {result.signed_through} by {', '.join(result.signers)}"
                      f"{'' if trusted else ' (the key recorded beside the ledger: pass --allowed-signers to check against your copy)'}"
                      if result.signed_through else "no signed checkpoint")
            unsigned = f"; {len(result.unsigned_runs)} run entries unsigned" if result.unsigned_runs else ""
            console.print(f"[green]verified[/green] {eng_id}: {result.entries} entries, head {result.head}; {signed}{unsigned}")
        else:
            broken += 1
            for problem in result.problems:
                console.print(f"[red]BROKEN[/red]   {eng_id}: {problem}")
    raise typer.Exit(1 if broken else 0)


@audit_app.command("rotate-key")
def audit_rotate_key(
    engagement: Annotated[str, typer.Argument(help="engagement id")],
    next_key: Annotated[Path, typer.Option("--next-public-key", help="the new key's .pub file (ssh-ed25519)")],
    reason: Annotated[str, typer.Option("--reason", help="why (written to the ledger)")],
) -> None:
    """Name the next ledger signing key in the ledger, signed by the current key (read from the connection
    steward_ledger_signing). Then put the new private key in that connection (ADR 0017)."""
    import getpass

    from steward.governance import export

    _known_engagement(engagement)
    keys = _public_keys(next_key) if next_key.is_file() else []
    if len(keys) != 1:
        _fail_usage(f"--next-public-key: {next_key} must hold exactly one ssh-ed25519 public key")
    current = _signing_key("the current key must sign its successor")
    from steward.airflow.signing_key import SIGNING_CONN_ID

    paths = StewardPaths.from_env()
    try:
        done = export.rotate_key(paths, engagement, current, keys[0], reason=reason, actor=getpass.getuser())
    except ValueError as exc:
        _fail_usage(f"--next-public-key: {exc}")
    detail = done["entry"]["detail"]
    console.print(f"{engagement}: ledger entry {done['entry']['seq']} names {detail['to_key']} as the next signing "
                  f"key, signed by {detail['from_key']}. Now put the new private key in the connection "
                  f"{SIGNING_CONN_ID}; give auditors the new fingerprint too.")


@audit_app.command("accept")
def audit_accept(
    engagement: Annotated[str, typer.Argument(help="engagement id")],
    reason: Annotated[str, typer.Option("--reason", help="what was found and why it is accepted (in the ledger)")],
) -> None:
    """Accept what the signer refused (entries steward did not append, or entries lost): a ledger entry naming
    it, signed with the key (connection steward_ledger_signing), after which nights sign again (issue 32)."""
    import getpass

    from steward.governance import export, ledger

    _known_engagement(engagement)
    key = _signing_key("an acceptance is signed with the key")
    paths = StewardPaths.from_env()
    try:
        entry = ledger.accept(paths, engagement, reason=reason, actor=getpass.getuser())
    except ValueError as exc:
        _fail_usage(str(exc))
    point = export.checkpoint_head(paths, engagement, key)
    console.print(f"{engagement}: ledger entry {entry['seq']} accepts {len(entry['detail']['found'])} finding(s), "
                  f"signed at seq {point['seq']} by {point['key']}:")
    for found in entry["detail"]["found"]:
        console.print(f"  {found}")


def _signing_key(why_needed: str) -> Any:
    """The ledger's signing key from its connection, or exit 2 saying why it is needed and why it is missing."""
    from steward.settings import configure_embedded_airflow

    configure_embedded_airflow()
    from steward.airflow.signing_key import SIGNING_CONN_ID, ledger_signing_key

    key, why = ledger_signing_key()
    if key is None:
        _fail_usage(f"{why}: {why_needed} (connection {SIGNING_CONN_ID})")
    return key


def _sign_head(paths: StewardPaths, engagement: str) -> None:
    """Sign the ledger head at export when a key is configured (without one, the nights' checkpoints say why)."""
    from steward.governance import export
    from steward.settings import configure_embedded_airflow

    configure_embedded_airflow()
    from steward.airflow.signing_key import ledger_signing_key

    key, _ = ledger_signing_key()
    if key is not None:
        export.checkpoint_head(paths, engagement, key)


def _public_keys(path: Path) -> list[str]:
    """ssh-ed25519 keys from an allowed_signers file or .pub lines (options and principals ignored)."""
    keys = []
    for line in path.read_text().splitlines():
        words = line.split()
        if "ssh-ed25519" in words and words.index("ssh-ed25519") + 1 < len(words):
            i = words.index("ssh-ed25519")
            keys.append(f"ssh-ed25519 {words[i + 1]}")
    return keys


@audit_app.command("export")
def audit_export(
    engagement: Annotated[str, typer.Argument(help="engagement id")],
    since: Annotated[str, typer.Option("--since", help="first night YYYY-MM-DD")],
    until: Annotated[str, typer.Option("--until", help="last night YYYY-MM-DD")],
    out: Annotated[Path, typer.Option("--out", help="bundle folder to create (a .zip is written beside it)")],
) -> None:
    """Write a self-contained auditor bundle (index.html, ledger, lineage, reports, model cards, VERIFY.md)."""
    from steward.governance import bundle

    _known_engagement(engagement)
    first, last = _parse_date(since), _parse_date(until)
    paths = StewardPaths.from_env()
    try:
        summary = bundle.export(paths, engagement, first, last, out, sign_head=lambda: _sign_head(paths, engagement))
    except bundle.BundleInputError as exc:
        _fail_usage(str(exc))
    console.print(f"bundle {summary['out']} (+ {summary['zip']}): {summary['runs']} runs, {summary['events']} lineage "
                  f"events, {summary['files']} files; ledger {'verified' if summary['ledger_ok'] else 'BROKEN'}")
    raise typer.Exit(0 if summary["ledger_ok"] else 1)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
