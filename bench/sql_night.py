"""One night of an engagement whose batch is a 10,000,000-row x 30-column PostgreSQL table, steward's SQL
path against the naive path (issue 15, ADR 0023).

usage: .venv/bin/python bench/sql_night.py [--rows 10000000] [--skip-naive] [--keep] [--no-docs] [--docs-only]

Setup (untimed): a scratch database on the machine's PostgreSQL (127.0.0.1:5432) gets crm.events, generated
in the database from a seeded generator (`setseed`): a customer id, the night's date, 20 float features, 5
integer features, 3 categorical features and the target (30 columns besides the date), `--rows` rows dated
2026-03-01 and 50,000 rows dated 2026-02-28 that become the reference file. A champion is bootstrapped from
the reference.

steward: the engagement reads the table through `data.source: sql` with `snapshot: view` and the default
`sample_rows` (100,000) and writes `predictions.sink: crm.scores`. One process (a worker task inherits the
libraries from its preloaded parent: imported before the clock starts) runs land + validate + drift +
score; wall time per stage, peak resident memory of the process (ru_maxrss: an upper bound for any one
task of the night) and its resident memory before the night.

naive: read the whole night with pandas (`read_sql`), write it as the night's Parquet file, run the file-based
engagement's land + validate + drift + score on it, and write the predictions back with pandas `to_sql`
(chunks of 50,000, multi-row inserts). Its peak memory and time are reported the same way.

Results go to bench/out/sql_night_<rows>.json; the "sql" section of docs/benchmarks.md is written from every
size saved there (the issue's size, 10,000,000, first; a smaller size shows the naive path where it fits).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
NIGHT = dt.date(2026, 3, 1)
REFERENCE_DAY = dt.date(2026, 2, 28)
REFERENCE_ROWS = 50_000
FLOATS, INTEGERS, CATEGORIES = 20, 5, 3
LEVELS = ["a", "b", "c", "d"]
TARGET_SECONDS, TARGET_MB = 60.0, 1024.0
NAIVE_LIMIT_GB = 18  # address space for the naive path (the machine has 24 GB)
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def _columns_sql() -> str:
    floats = [f"round((random() * 100)::numeric, 3)::float8 AS f{i}" for i in range(FLOATS)]
    ints = [f"floor(random() * 50)::int AS n{i}" for i in range(INTEGERS)]
    cats = [f"(ARRAY{LEVELS})[1 + floor(random() * {len(LEVELS)})::int] AS c{i}" for i in range(CATEGORIES)]
    return ", ".join(floats + ints + cats)


def create_table(database: str, rows: int) -> float:
    """crm.events: the reference day and the night, generated in the database from one seed."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG + database)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("SET max_parallel_workers_per_gather = 0")  # one stream of random(): reproducible
        conn.exec_driver_sql("SELECT setseed(0.15)")
        conn.exec_driver_sql("CREATE SCHEMA crm")
        conn.exec_driver_sql(f"""
            CREATE TABLE crm.events AS
            SELECT s.*, (f0 / 100 + f1 / 200 + n0 / 100.0 + (c0 = 'a')::int * 0.2 + random() * 0.6 > 1.0)::int
                   AS churned
            FROM (SELECT 'C' || lpad(g::text, 9, '0') AS customer_id, d AS event_date, {_columns_sql()}
                  FROM (VALUES (DATE '{REFERENCE_DAY}', {REFERENCE_ROWS}), (DATE '{NIGHT}', {rows})) AS days(d, n),
                       generate_series(1, n) AS g) AS s""")
        conn.exec_driver_sql("CREATE INDEX ON crm.events (event_date)")
        conn.exec_driver_sql("ANALYZE crm.events")
    engine.dispose()
    return time.perf_counter() - t0


def engagement_yaml(source: dict, rows: int, sink: str | None) -> str:
    import yaml

    features = {**{f"f{i}": "numeric" for i in range(FLOATS)}, **{f"n{i}": "numeric" for i in range(INTEGERS)},
                **{f"c{i}": "categorical" for i in range(CATEGORIES)}}
    columns = {"customer_id": {"not_null": True, "unique": True}, "churned": {"allowed_values": [0, 1]},
               **{f"f{i}": {"not_null": True, "min": 0, "max": 100} for i in range(FLOATS)},
               **{f"n{i}": {"min": 0, "max": 50} for i in range(INTEGERS)},
               **{f"c{i}": {"not_null": True, "allowed_values": LEVELS} for i in range(CATEGORIES)}}
    raw = {
        "id": "warehouse_churn", "client": "Bench Telecom", "use_case": "churn at warehouse scale",
        "owner": "bench@steward.example", "start_date": str(REFERENCE_DAY), "data": source,
        "id_column": "customer_id", "target": "churned", "problem_type": "binary_classification",
        "features": features,
        "quality": {"row_count": {"min": rows // 4, "max": rows * 4}, "columns": columns},
        "performance": {"metric": "roc_auc", "threshold": 0.6},
        "retraining": {"triggers": ["drift"], "estimator": {"name": "logistic_regression", "params": {"max_iter": 500}}},
        "promotion": {"metric": "roc_auc", "min_improvement": 0.01},
        "governance": {"owners": ["bench@steward.example"], "region": "eu-west-1"},
    }
    if sink:
        raw["predictions"] = {"sink": {"conn_id": "bench_pg", "table": sink}}
    class Plain(yaml.SafeDumper):  # engagement files refuse YAML aliases
        def ignore_aliases(self, data: object) -> bool:
            return True

    return yaml.dump(raw, Dumper=Plain, sort_keys=False)


def prepare_home(base: Path, database: str, rows: int) -> None:
    """Engagement files for both paths, the reference file, and the bootstrapped champion (untimed)."""
    import pandas as pd
    import sqlalchemy as sa

    data = base / "home" / "data" / "warehouse_churn"
    data.mkdir(parents=True)
    engine = sa.create_engine(PG + database)
    reference = pd.read_sql(sa.text("SELECT * FROM crm.events WHERE event_date = :d ORDER BY customer_id"), engine,
                            params={"d": REFERENCE_DAY}).drop(columns=["event_date"])
    reference.to_parquet(data / "reference.parquet", index=False)
    engine.dispose()
    sql = {"source": "sql", "conn_id": "bench_pg", "table": "crm.events", "date_column": "event_date",
           "snapshot": "view", "reference": "warehouse_churn/reference.parquet"}
    files = {"directory": "warehouse_churn/incoming", "pattern": "{date}.parquet", "format": "parquet",
             "reference": "warehouse_churn/reference.parquet"}
    for name, source, sink in (("steward", sql, "crm.scores"), ("naive", files, None)):
        folder = base / name
        folder.mkdir()
        (folder / "warehouse_churn.yaml").write_text(engagement_yaml(source, rows, sink))


def _env(base: Path, side: str, database: str) -> dict[str, str]:
    return {**os.environ, "STEWARD_HOME": str(base / "home"), "STEWARD_ENGAGEMENTS_DIR": str(base / side),
            "AIRFLOW_CONN_BENCH_PG": f"postgresql://postgres@127.0.0.1:5432/{database}",
            "PYTHONPATH": f"{ROOT / 'include'}:{ROOT}"}


def child(role: str, base: Path, database: str) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", role, "--base", str(base), "--database", database],
                         env=_env(base, "naive" if role == "naive" else "steward", database), capture_output=True,
                         text=True, check=False)
    if out.returncode == -9 and role == "naive":  # the kernel's OOM killer: a result, not a crash of the bench
        return {"role": role, "failed": "killed by the kernel's out-of-memory killer",
                "seconds_until_killed": round(time.perf_counter() - t0)}
    if out.returncode != 0:
        raise SystemExit(f"{role} failed:\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_child(role: str, base: Path, database: str) -> dict:
    from steward.airflow.executor import preload

    preload()  # what a worker's task process inherits (ADR 0019)
    from steward import pipeline
    from steward.airflow.connections import engine_for
    from steward.config import load_engagement
    from steward.settings import StewardPaths

    paths = StewardPaths.from_env()
    eng = load_engagement(Path(os.environ["STEWARD_ENGAGEMENTS_DIR"]) / "warehouse_churn.yaml")
    if role == "bootstrap":
        champion = pipeline.ensure_champion(eng, paths, NIGHT, config_hash="bench", run_tags={})
        return {"champion": champion["champion"]["version"]}
    champion = pipeline.ensure_champion(eng, paths, NIGHT, config_hash="bench", run_tags={})
    shutil.rmtree(paths.landed / eng.id, ignore_errors=True)  # the other path's landed copy of the same night
    before = _current_rss_mb()
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    if role == "naive":
        import pandas as pd
        import sqlalchemy as sa

        # fail with a MemoryError at a stated limit rather than be killed by the kernel (and take others with it)
        resource.setrlimit(resource.RLIMIT_AS, (NAIVE_LIMIT_GB << 30, NAIVE_LIMIT_GB << 30))
        engine = sa.create_engine(PG + database)
        t = time.perf_counter()
        frame = pd.read_sql(sa.text("SELECT * FROM crm.events WHERE event_date = :d"), engine,
                            params={"d": NIGHT}).drop(columns=["event_date"])
        incoming = paths.data_root / "warehouse_churn" / "incoming" / f"{NIGHT}.parquet"
        incoming.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(incoming, index=False)
        rows = len(frame)
        del frame
        stages["read whole table (pandas)"] = time.perf_counter() - t
        connect = None
    else:
        connect = engine_for
        rows = None
    peaks: dict[str, float] = {}

    def stage(name: str, fn: Any) -> dict:
        """One stage in a forked child, as a worker runs each task in a process forked from its preloaded
        parent: its result, time and peak resident memory come back through a pipe."""
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                result = fn()
                payload = json.dumps({"result": result, "peak": _rss_mb()}, default=str)
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
            with os.fdopen(write, "w") as fh:
                fh.write(payload)
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as fh:
            data = json.loads(fh.read())
        os.waitpid(pid, 0)
        if "error" in data:
            raise SystemExit(f"{name}: {data['error']}")
        stages[name], peaks[name] = data["result"]["timing"]["duration_s"], data["peak"]
        return data["result"]

    landed = stage("land", lambda: pipeline.land(eng, paths, NIGHT, connect=connect))
    quality = stage("validate", lambda: pipeline.validate(eng, paths, NIGHT, landed, connect=connect))
    assert quality["success"], quality["failed"]
    monitored = stage("drift + performance", lambda: pipeline.monitor(eng, paths, NIGHT, landed, champion))
    scored = stage("score", lambda: pipeline.score(eng, paths, NIGHT, landed, champion, connect=connect))
    if role == "naive":
        import pandas as pd
        import sqlalchemy as sa

        t = time.perf_counter()
        served = pd.read_parquet(scored["path"]).assign(logical_date=NIGHT)
        served.to_sql("naive_scores", sa.create_engine(PG + database), schema="crm", if_exists="replace",
                      index=False, chunksize=10_000, method="multi")
        stages["write predictions back (pandas to_sql)"] = time.perf_counter() - t
    total = time.perf_counter() - t0
    return {"role": role, "rows": rows or landed["batch"]["sql"]["rows"], "seconds": round(total, 1),
            "stages": {k: round(v, 1) for k, v in stages.items()},
            "peak_rss_mb": round(max([_rss_mb(), *peaks.values()]) if role == "naive" else max(peaks.values())),
            "stage_peak_rss_mb": {k: round(v) for k, v in peaks.items()},
            "rss_before_night_mb": round(before), "scored_rows": scored["rows"],
            "landed_rows": landed["profile"].get("profiled_rows") or landed["profile"]["rows"],
            "sample": landed["batch"].get("sample"), "sink_rows": (scored.get("sink") or {}).get("rows"),
            "quality_checks": quality["evaluated"], "drift_share": monitored["drift"]["drift_share"]}


def _saved() -> list[dict]:
    found = [json.loads(p.read_text()) for p in OUT.glob("sql_night_*.json")]
    return sorted(found, key=lambda r: -r["rows"])


def write_docs(results: list[dict]) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from docs_section import write_section

    met = lambda ok: "MET" if ok else "NOT MET"  # noqa: E731

    def stages(side: dict) -> str:
        return "; ".join(f"{k} {v:.1f} s" for k, v in side["stages"].items())

    def naive(n: dict | None) -> str:
        if n is None:
            return "not run (--skip-naive)"
        if n.get("failed"):
            return f"**did not finish**: {n['failed']} after {n['seconds_until_killed']} s (24 GB machine)"
        return f"**{n['seconds']:.0f} s**, peak **{n['peak_rss_mb']:,} MB** ({stages(n)})"

    head = results[0]
    rows = []
    for r in results:
        s = r["steward"]
        rows.append(f"""### {r['rows']:,} rows ({r['date']})

- steward: **{s['seconds']:.0f} s** ({met(s['seconds'] < TARGET_SECONDS)}), peak **{s['peak_rss_mb']:,} MB**
  ({met(s['peak_rss_mb'] < TARGET_MB)}; {s['rss_before_night_mb']:,} MB of it the preloaded libraries). {stages(s)}.
  Peak per stage: {", ".join(f"{k} {v:,} MB" for k, v in s['stage_peak_rss_mb'].items())}. Drift and
  performance on a seeded sample of {s['landed_rows']:,} rows drawn in the database; {s['scored_rows']:,} rows
  scored and {s['sink_rows']:,} written to the sink.
- naive: {naive(r.get('naive'))}.
""")
    body = f"""## A warehouse-scale night on PostgreSQL (issue 15)

`bench/sql_night.py`, 2-core machine, PostgreSQL 15 on the same machine (sharing the two cores). The night:
the rows below x 30 columns in `crm.events` (20 float, 5 integer and 3 categorical features, an id and the target;
generated in the database from a fixed seed in {head['setup_seconds']:.0f} s, untimed), a {head['quality_checks']}-check
suite (every feature's range or allowed values, the id not null and unique, the target's classes), drift of 28
features against the champion's reference, a logistic-regression champion, predictions written back.

Targets at 10,000,000 rows: the night under {TARGET_SECONDS:.0f} s and peak worker memory under {TARGET_MB:,.0f} MB.

steward: `data.source: sql`, `snapshot: view`, `sample_rows` 100,000, `predictions.sink: crm.scores`; land +
validate (every row, in the database) + drift and performance + score (every row, Arrow batches from the
database, written to the Parquet file and the sink). naive: `pandas.read_sql` of the whole night, written as
the night's Parquet file, then the file-based engagement's land + validate + drift + score, then
`DataFrame.to_sql` of the predictions (multi-row inserts of 10,000).

Each stage runs in a process forked from one that preloaded the task libraries, as in a worker (ADR 0019);
memory is that process's peak resident set (`ru_maxrss`, shared library pages included).

{chr(10).join(rows)}"""
    write_section("sql", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database and folder")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--docs-only", action="store_true", help="rewrite the docs section from bench/out/sql_night_*.json")
    parser.add_argument("--child")
    parser.add_argument("--base")
    parser.add_argument("--database")
    args = parser.parse_args()
    if args.child:
        t0 = time.perf_counter()
        try:
            result = run_child(args.child, Path(args.base), args.database)
        except MemoryError:
            result = {"role": args.child, "failed": f"MemoryError at the {NAIVE_LIMIT_GB} GB address-space limit",
                      "seconds_until_killed": round(time.perf_counter() - t0), "peak_rss_mb": round(_rss_mb())}
        print(json.dumps(result))
        return
    if args.docs_only:
        write_docs(_saved())
        return

    import psycopg2

    database = f"steward_bench_sql_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{database}"')
    base = Path(tempfile.mkdtemp(prefix="steward-sql-night-"))
    try:
        print(f"generating {args.rows:,} rows in {database} ...", flush=True)
        setup = create_table(database, args.rows)
        print(f"  {setup:.0f} s; bootstrapping the champion ...", flush=True)
        prepare_home(base, database, args.rows)
        child("bootstrap", base, database)
        result = {"date": dt.date.today().isoformat(), "rows": args.rows, "setup_seconds": round(setup, 1)}
        print("steward night ...", flush=True)
        result["steward"] = child("steward", base, database)
        print(json.dumps(result["steward"], indent=1), flush=True)
        result["quality_checks"] = result["steward"]["quality_checks"]
        if not args.skip_naive:
            print("naive night ...", flush=True)
            result["naive"] = child("naive", base, database)
            print(json.dumps(result["naive"], indent=1), flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"sql_night_{args.rows}.json").write_text(json.dumps(result, indent=2))
        if not args.no_docs:
            write_docs(_saved())
    finally:
        if not args.keep:
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {database} and {base}")
        admin.close()


if __name__ == "__main__":
    main()
