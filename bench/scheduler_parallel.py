"""Nights through the real scheduler (airflow standalone, SQLite), before and after issue 16, in one run.

usage: .venv/bin/python bench/scheduler_parallel.py [--engagements 8] [--singles 3] [--modes before,after]

For each mode a fresh `airflow standalone` runs copies of churn_telco's first night (2026-03-01: bootstrap a
champion, validate, score, monitor, alerts, audit): one warm-up night (the first after start), `--singles`
nights one after another (task time and wall time of one night), then `--engagements` nights triggered
together (wall time, and the CPU the whole machine spent, read from /proc/stat). Engagement-nights per
core-hour = nights / (CPU seconds spent / 3600). Memory: every second, the resident and proportional set size
(PSS shares pages among forked processes fairly) of each process of the standalone, by role.

Modes:
  before  Airflow's LocalExecutor and scheduler defaults (what the embedded default ran before issue 16)
  after   steward's embedded default: steward.settings.EMBEDDED_SCHEDULER (preloading workers, tuned loop)

Rewrites the "scheduler" section of docs/benchmarks.md; raw numbers go to bench/out/scheduler_parallel.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import yaml
from docs_section import save_plot, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "include"))
NIGHT = "2026-03-01"
OUT = ROOT / "bench" / "out"

from steward.settings import EMBEDDED_SCHEDULER  # noqa: E402
from tests.support import servers  # noqa: E402
from tests.support.production import PRODUCTION_TUNING  # noqa: E402

MODES = {
    # Airflow's defaults for every setting the embedded default changes
    "before": {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "AIRFLOW__CORE__PARALLELISM": "32",
               "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1"},
    "after": dict(EMBEDDED_SCHEDULER),
}
# the production shape (tests/support/production.py): Celery's own defaults, then steward's tuning
CELERY_MODES = {
    "before": {},
    "after": dict(PRODUCTION_TUNING),
}


def _ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent working since boot: not idle, not waiting for I/O, and not
    stolen by the hypervisor for other guests (a VM's `steal` grows when its host is busy, not this one)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0) - getattr(t, "guest", 0.0) \
        - getattr(t, "guest_nice", 0.0)


def _role(proc: psutil.Process) -> str:
    """What a process of the standalone is, from the titles Airflow sets (setproctitle)."""
    title = " ".join(proc.cmdline())
    if "airflow supervisor:" in title or "LocalExecutor" in title or "ForkPoolWorker" in title:
        return "executor worker"  # idle, or supervising a task (LocalExecutor worker, Celery pool process)
    if "MainProcess" in title:
        return "celery main"
    if "airflow worker --" in title:
        return "task"
    if "airflow scheduler" in title:  # a worker forked from the scheduler keeps its title until it has preloaded
        parent = proc.parent()
        return "executor worker" if parent is not None and "airflow scheduler" in " ".join(parent.cmdline()) \
            else "scheduler"
    if "api-server" in title or "api_server" in title:
        return "api-server"
    for key in ("dag-processor", "triggerer", "standalone", "mlflow"):
        if key in title:
            return key
    return "other"


class MemorySampler(threading.Thread):
    """Peak RSS and PSS per role over the processes of some process groups, sampled every second."""

    def __init__(self, pgids: set[int]) -> None:
        super().__init__(daemon=True)
        self.pgids, self.stop_flag = pgids, threading.Event()
        self.peak_rss: dict[str, float] = {}
        self.peak_pss: dict[str, float] = {}
        self.peak_total_pss = 0.0
        self.cpu: dict[int, tuple[str, float]] = {}  # pid -> (role, CPU seconds incl. reaped children)

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds so far of the processes seen alive at the last sample (a worker's count includes the
        task processes it has reaped), by role."""
        out: dict[str, float] = {}
        for role, seconds in list(self.cpu.values()):
            out[role] = out.get(role, 0.0) + seconds
        return out

    def run(self) -> None:
        while not self.stop_flag.wait(1.0):  # ~10 ms of CPU a sample (smaps_rollup)
            total, cpu = 0.0, {}
            for proc in psutil.process_iter():
                try:
                    # a task process runs in a process group of its own, under its worker
                    if os.getpgid(proc.pid) not in self.pgids and os.getpgid(proc.ppid()) not in self.pgids:
                        continue
                    mem, role, times = proc.memory_full_info(), _role(proc), proc.cpu_times()
                except (psutil.Error, ProcessLookupError):
                    continue
                total += mem.pss
                cpu[proc.pid] = (role, times.user + times.system + times.children_user + times.children_system)
                self.peak_rss[role] = max(self.peak_rss.get(role, 0.0), mem.rss / 2**20)
                self.peak_pss[role] = max(self.peak_pss.get(role, 0.0), mem.pss / 2**20)
            self.peak_total_pss = max(self.peak_total_pss, total / 2**20)
            self.cpu = cpu  # the living processes only: a reaped task's CPU is in its worker's children times


def _engagements(folder: Path, ids: list[str]) -> None:
    """Copies of churn_telco that fire only on Feb 29: the only runs are the ones triggered here."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load((ROOT / "include/engagements/churn_telco.yaml").read_text())
    for eid in ids:
        (folder / f"{eid}.yaml").write_text(yaml.safe_dump({**raw, "id": eid, "schedule": "0 2 29 2 *"},
                                                           sort_keys=False))


def _demo_data(home: Path) -> None:
    os.environ["STEWARD_HOME"] = str(home)
    from steward import demo
    from steward.settings import StewardPaths

    demo.generate("churn_telco", StewardPaths.from_env().data_root, nights=1)


def in_process_nights(scratch: Path, singles: int) -> dict:
    """The same first nights in one process (`dag.test()`, as the demo runs them), after one warm-up night
    that pays the imports and dag.test()'s own start-up; run in a child process with a clean environment."""
    home, engagements = scratch / "home", scratch / "engagements"
    ids = ["warm_0", *(f"single_{i}" for i in range(singles))]
    _engagements(engagements, ids)
    _demo_data(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(STEWARD_HOME=str(home), STEWARD_ENGAGEMENTS_DIR=str(engagements))
    code = f"""
import json, time, datetime as dt
from steward.settings import configure_embedded_airflow
configure_embedded_airflow()
from steward.airflow.runner import run_night
day, out = dt.date.fromisoformat("{NIGHT}"), []
for eid in {ids!r}:
    t0 = time.perf_counter()
    result = run_night(eid, day)
    assert result["state"].endswith("success"), result["state"]
    out.append({{"wall_s": time.perf_counter() - t0,
                "stage_timers_s": sum(v["duration_s"] for v in result["audit"]["timings"].values())}})
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": f"{ROOT / 'include'}:{ROOT}"},
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"in-process nights failed:\n{done.stderr[-3000:]}")
    nights = json.loads(done.stdout.strip().splitlines()[-1])[1:]  # the warm-up night is not counted
    return {"wall_s": [n["wall_s"] for n in nights], "stage_timers_s": [n["stage_timers_s"] for n in nights]}


@contextlib.contextmanager
def launch(executor: str, mode: str, scratch: Path, home: Path, engagements: Path) -> Iterator[tuple[str, list]]:
    """Start Airflow (and for Celery the whole production shape); yields the REST API base and the processes.
    Every user is an admin, so the REST calls need no login."""
    # DAGs start paused: only the engagements measured are unpaused (the retention and report DAGs would
    # otherwise run their latest interval at start, on the cores being measured)
    admins = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True", "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True"}
    if executor == "celery":
        from tests.support import production

        with production.stack(scratch, home, engagements, redis_db=8,
                              extra_env={**admins, **CELERY_MODES[mode]}) as running:
            yield f"{running['url']}/api/v2", list(running["procs"].values())
        return
    airflow_home = scratch / "airflow"
    airflow_home.mkdir()
    port = servers.free_port()
    env = servers.standalone_env(home, engagements, airflow_home, port, **admins, **MODES[mode])
    log = scratch / "standalone.log"
    proc = servers.start([str(Path(sys.executable).with_name("airflow")), "standalone"], env, log)
    try:
        servers.wait_http(f"http://127.0.0.1:{port}/api/v2/version", 240, proc, log)
        yield f"http://127.0.0.1:{port}/api/v2", [proc]
    finally:
        servers.stop(proc)


def run_mode(executor: str, mode: str, n: int, singles: int, scratch: Path) -> dict:
    home, engagements = scratch / "home", scratch / "engagements"
    home.mkdir(parents=True)
    warm, single_ids, parallel_ids = "warm_0", [f"single_{i}" for i in range(singles)], [f"par_{i}" for i in range(n)]
    ids = [warm, *single_ids, *parallel_ids]
    _engagements(engagements, ids)
    _demo_data(home)
    label = f"{executor} {mode}"
    with launch(executor, mode, scratch, home, engagements) as (api, procs):
        result = _measure(label, api, procs, home, warm, single_ids, parallel_ids)
    result.update(executor=executor, mode=mode, engagements=n,
                  env=(CELERY_MODES if executor == "celery" else MODES)[mode])
    result["nights_per_core_hour"] = n * 3600 / result["parallel_cpu_s"]
    return result


def _measure(label: str, api: str, procs: list, home: Path, warm: str, single_ids: list[str],
             parallel_ids: list[str]) -> dict:
    n, ids = len(parallel_ids), [warm, *single_ids, *parallel_ids]

    def wait(eids: list[str], timeout: float = 900) -> dict[str, dict]:
        """Poll every 2 s with one batch call: polling each run every second cost the API server as much
        CPU as a third of the nights it measured."""
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, f"runs did not finish: {eids}"
            assert all(p.poll() is None for p in procs), "a server process exited"
            runs = servers.rest(f"{api}/dags/~/dagRuns/list", {"dag_ids": eids, "page_limit": 100})["dag_runs"]
            done = {r["dag_id"]: r for r in runs if r["dag_run_id"] == f"bench_{NIGHT}" and r["state"] in ("success", "failed")}
            if len(done) == len(eids):
                break
            time.sleep(2)
        assert all(r["state"] == "success" for r in done.values()), done
        return done

    def trigger(eid: str) -> None:
        servers.trigger_run(api, eid, f"bench_{NIGHT}", f"{NIGHT}T00:00:00Z")

    def tasks(eid: str) -> list[dict]:
        rows = servers.rest(f"{api}/dags/{eid}/dagRuns/bench_{NIGHT}/taskInstances?limit=100")["task_instances"]
        return [t for t in rows if t.get("start_date") and t.get("end_date")]

    def task_seconds(eid: str) -> float:
        return sum((_ts(t["end_date"]) - _ts(t["start_date"])).total_seconds() for t in tasks(eid))

    def wall(runs: list[dict]) -> float:
        return (max(_ts(r["end_date"]) for r in runs) - min(_ts(r["start_date"]) for r in runs)).total_seconds()

    sampler = MemorySampler({os.getpgid(p.pid) for p in procs})
    sampler.start()
    try:
        deadline = time.monotonic() + 300
        while not set(ids) <= {d["dag_id"] for d in servers.rest(f"{api}/dags?limit=100")["dags"]}:
            assert time.monotonic() < deadline, "DAGs not parsed"
            time.sleep(2)
        for eid in ids:
            servers.rest_patch(f"{api}/dags/{eid}", {"is_paused": False})
        print(f"[{label}] DAGs parsed; warm-up night", flush=True)
        trigger(warm)
        first = wait([warm])[warm]
        single_runs = {}
        for eid in single_ids:
            trigger(eid)
            single_runs.update(wait([eid]))
            print(f"[{label}] {eid}: {wall([single_runs[eid]]):.1f} s", flush=True)
        time.sleep(3)  # let the last run's bookkeeping settle before the CPU clock starts
        cpu_before, t0, roles_before = _busy_cpu_seconds(), time.monotonic(), sampler.cpu_by_role()
        steal_before = getattr(psutil.cpu_times(), "steal", 0.0)
        for eid in parallel_ids:
            trigger(eid)
        parallel = wait(parallel_ids)
        cpu_spent, elapsed = _busy_cpu_seconds() - cpu_before, time.monotonic() - t0
        steal = getattr(psutil.cpu_times(), "steal", 0.0) - steal_before
        time.sleep(1.5)  # one more sample
        cpu_roles = {role: round(v - roles_before.get(role, 0.0), 1) for role, v in sampler.cpu_by_role().items()}
        print(f"[{label}] {n} at once: {wall(list(parallel.values())):.1f} s, {cpu_spent:.0f} CPU s", flush=True)
        gaps = [wall([single_runs[eid]]) - task_seconds(eid) for eid in single_ids]
        record = json.loads((home / "artifacts" / single_ids[0] / NIGHT / "audit.json").read_text())
        result = {
            "first_night_wall_s": wall([first]), "first_night_task_s": task_seconds(warm),
            "single_wall_s": [wall([r]) for r in single_runs.values()],
            "single_task_s": [task_seconds(e) for e in single_ids],
            "single_outside_tasks_s": gaps,
            "task_instances": len(tasks(single_ids[0])),
            "stage_timers_s": sum(v["duration_s"] for v in record["timings"].values()),
            "parallel_wall_s": wall(list(parallel.values())), "parallel_elapsed_s": elapsed,
            "parallel_cpu_s": cpu_spent, "parallel_cpu_by_role_s": cpu_roles, "parallel_steal_s": steal,
            "parallel_task_s": [task_seconds(e) for e in parallel_ids],
        }
    finally:
        sampler.stop_flag.set()
    result.update(peak_rss_mb=sampler.peak_rss, peak_pss_mb=sampler.peak_pss, peak_total_pss_mb=sampler.peak_total_pss)
    return result


def _row(label: str, fmt: str, results: dict[str, dict], key) -> str:
    return f"| {label} | " + " | ".join(fmt.format(key(r)) for r in results.values()) + " |"


def report(results: dict[str, dict], in_process: dict) -> str:
    n = next(iter(results.values()))["engagements"]
    med = statistics.median
    rows = [
        _row("first night after start: task time / wall", "{}", results,
             lambda r: f"{r['first_night_task_s']:.1f} s / {r['first_night_wall_s']:.1f} s"),
        _row("one night, median: task time", "**{:.1f} s**", results, lambda r: med(r["single_task_s"])),
        _row("one night, median: wall (queued -> finished)", "{:.1f} s", results, lambda r: med(r["single_wall_s"])),
        _row("one night, median: between tasks", "{:.1f} s", results, lambda r: med(r["single_outside_tasks_s"])),
        _row(f"{n} nights at once: wall", "{:.1f} s", results, lambda r: r["parallel_wall_s"]),
        _row(f"{n} nights at once: task time per night, median", "{:.1f} s", results,
             lambda r: med(r["parallel_task_s"])),
        _row(f"{n} nights at once: CPU spent by the machine", "{:.0f} s", results, lambda r: r["parallel_cpu_s"]),
        _row(f"{n} nights at once: CPU stolen by the hypervisor (not counted)", "{:.0f} s", results,
             lambda r: r["parallel_steal_s"]),
        _row("engagement-nights per core-hour", "**{:.0f}**", results, lambda r: r["nights_per_core_hour"]),
        _row("peak PSS of one executor worker", "{:.0f} MB", results,
             lambda r: r["peak_pss_mb"].get("executor worker", 0)),
        _row("peak RSS of one executor worker", "{:.0f} MB", results,
             lambda r: r["peak_rss_mb"].get("executor worker", 0)),
        _row("peak RSS of one task process", "{:.0f} MB", results, lambda r: r["peak_rss_mb"].get("task", 0)),
        _row("peak PSS of the Celery worker's main process", "{:.0f} MB", results,
             lambda r: r["peak_pss_mb"].get("celery main", 0)),
        _row("peak PSS of every process together", "{:.0f} MB", results, lambda r: r["peak_total_pss_mb"]),
    ]
    header = "| measure | " + " | ".join(results) + " |\n|---|" + "---:|" * len(results)
    def settings(env: dict[str, str]) -> str:
        return ", ".join(f"`{k.split('__')[-1].lower()}={'.'.join(v.split('.')[-2:]) if k.endswith(('EXECUTOR', 'OPTIONS')) else v}`"
                         for k, v in env.items())

    body = f"""## Through the real scheduler: before and after issue 16

`bench/scheduler_parallel.py`, same machine (2 cores), before and after in one run per executor, each engagement a copy of churn_telco running its
first night ({NIGHT}: bootstrap a champion, validate, score, monitor, alerts, audit). **local**: `airflow
standalone` on SQLite (the embedded default). **celery**: the production shape of
tests/services/test_production_shape.py (Postgres metadata, CeleryExecutor on Redis with a worker of concurrency 4, MLflow
tracking server on Postgres). **before**: Airflow's defaults ({settings(MODES["before"])}; Celery: Airflow's
Celery configuration). **after**: steward's (local: `steward.settings.EMBEDDED_SCHEDULER`,
{settings(MODES["after"])}; celery: {settings(CELERY_MODES["after"])}).
Task time is the sum of the task instances' durations; "between tasks" is the rest of the night's wall time.
Engagement-nights per core-hour: {n} nights triggered together, divided by the CPU time the whole machine spent
until the last finished (scheduler, API server and dag-processor included).

{header}
{chr(10).join(rows)}
"""
    # in_process: {"local": ..., "celery": ...} when the pairs ran separately, else one measurement for all
    per_run = in_process if "wall_s" not in in_process else {"local": in_process, "celery": in_process}
    for executor, measured in per_run.items():
        labels = [label for label in results if label.startswith(executor)]
        if not labels:
            continue
        in_process_s = med(measured["wall_s"])
        body += (f"\n\n**{executor}** run: the same first night in one process (`dag.test()`, as the demo runs it; warm, "
                 f"median of {len(measured['wall_s'])}) took **{in_process_s:.2f} s** (stage timers "
                 f"{med(measured['stage_timers_s']):.2f} s). Task time per night against it (target: at most 2x): "
                 + ", ".join(f"{label} **{med(results[label]['single_task_s']) / in_process_s:.1f}x**" for label in labels)
                 + ".")
        before, after = results.get(f"{executor} before"), results.get(f"{executor} after")
        if before and after:
            body += (f" Engagement-nights per core-hour: **{after['nights_per_core_hour'] / before['nights_per_core_hour']:.1f}x**"
                     " before's (target at least 4x).")
    body += (f"\n\nWhere the CPU of the {n} nights at once went (seconds, by process; a worker's count includes the "
             "task processes it forked): " + "; ".join(
                 f"{label}: workers and tasks {r['parallel_cpu_by_role_s'].get('executor worker', 0):.0f}, scheduler "
                 f"{r['parallel_cpu_by_role_s'].get('scheduler', 0):.0f}, API server "
                 f"{r['parallel_cpu_by_role_s'].get('api-server', r['parallel_cpu_by_role_s'].get('other', 0)):.0f}, "
                 f"dag-processor {r['parallel_cpu_by_role_s'].get('dag-processor', 0):.0f}"
                 for label, r in results.items() if "parallel_cpu_by_role_s" in r)
             + ". The rest of the machine's count is Postgres, Redis and the MLflow server (celery) and the sampling "
             "itself.\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 2.8))
    names = list(results)
    tasks = [med(r["single_task_s"]) for r in results.values()]
    between = [med(r["single_outside_tasks_s"]) for r in results.values()]
    left.barh(names, tasks, color="#2ca02c", label="in tasks")
    left.barh(names, between, left=tasks, color="#d62728", label="between tasks")
    left.set_xlabel("seconds of one night")
    left.legend(loc="lower right", fontsize=8)
    right.barh(names, [r["nights_per_core_hour"] for r in results.values()], color="#1f77b4")
    right.set_yticks([])
    right.set_xlabel("engagement-nights per core-hour")
    body += "\n" + save_plot(fig, "scheduler_parallel") + "\n"
    return body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engagements", type=int, default=8)
    parser.add_argument("--singles", type=int, default=3)
    parser.add_argument("--modes", default="before,after")
    parser.add_argument("--executors", default="local,celery",
                        help="local: airflow standalone; celery: the production shape (Postgres, Redis, MLflow server)")
    parser.add_argument("--no-docs", action="store_true", help="print, do not rewrite docs/benchmarks.md")
    parser.add_argument("--from-json", type=Path, help="rewrite the docs from a saved bench/out JSON, run nothing")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="try a setting in the 'after' modes (for experiments; implies --no-docs)")
    args = parser.parse_args()
    for item in args.set:
        key, _, value = item.partition("=")
        MODES["after"][key] = CELERY_MODES["after"][key] = value
        args.no_docs = True
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        in_process = saved.pop("in_process")
        if "celery_in_process" in saved:  # the two executors' pairs ran separately, each with its own
            in_process = {"local": in_process, "celery": saved.pop("celery_in_process")}
        body = report(saved, in_process)
        print(body)
        if not args.no_docs:
            write_section("scheduler", body)
        return
    in_process = in_process_nights(Path(tempfile.mkdtemp(prefix="steward-bench-sched-inproc-")), args.singles)
    print(f"in process: {in_process}", flush=True)
    results = {}
    for executor in args.executors.split(","):
        for mode in args.modes.split(","):
            scratch = Path(tempfile.mkdtemp(prefix=f"steward-bench-sched-{executor}-{mode}-"))
            results[f"{executor} {mode}"] = run_mode(executor, mode, args.engagements, args.singles, scratch)
            print(json.dumps(results[f"{executor} {mode}"], indent=1), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "scheduler_parallel.json").write_text(json.dumps({"in_process": in_process, **results}, indent=1))
    body = report(results, in_process)
    print(body)
    if not args.no_docs:
        write_section("scheduler", body)


if __name__ == "__main__":
    main()
