"""Test session setup: every store points into a fresh temp dir before Airflow is imported."""

from __future__ import annotations

import functools
import gc
import os
import tempfile
from pathlib import Path

# The suite's CPU, measured on the monitoring months suite alone (ADR 0018 point 9; 122.7 -> 95.3 CPU-s with the
# figures of steward.monitoring.report_figures; the whole suite gained 2 %, a spinning pool mostly yields its core
# to another worker): the processes already fill both cores (three xdist workers),
# so the BLAS and OpenMP thread pools only spin while waiting for work, 2 % of all samples in OpenBLAS's
# thread server alone (perf); and a night allocates so many objects that the young generation was collected
# all the time, 12 % of the samples in the collector. Set before numpy is imported, inherited by every worker,
# subprocess and server the suite starts (tests/test_repository.py checks the thread pools).
for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")
gc.set_threshold(20_000, 20, 20)

from tests.support import ram_temp  # noqa: E402

_RAM_TEMP = ram_temp.claim()  # this run's temporary files in RAM when the machine has room (ADR 0018 point 14)
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="steward-tests-"))
os.environ["STEWARD_HOME"] = str(_SESSION_HOME)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("STEWARD_DATA_ROOT", None)
os.environ.pop("STEWARD_ENGAGEMENTS_DIR", None)
os.environ["AIRFLOW_HOME"] = str(_SESSION_HOME / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
# A failing task retries after a second, not two minutes: a bug shows up as a failure, not a stalled suite.
os.environ.setdefault("STEWARD_RETRY_DELAY_SECONDS", "1")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_SESSION_HOME / 'airflow' / 'airflow.db'}"
(_SESSION_HOME / "airflow").mkdir(parents=True, exist_ok=True)

import pytest  # noqa: E402

from steward.config import Engagement, load_engagement  # noqa: E402
from steward.settings import PROJECT_ROOT, StewardPaths  # noqa: E402

ENGAGEMENTS = PROJECT_ROOT / "include" / "engagements"


@pytest.fixture
def churn() -> Engagement:
    return load_engagement(ENGAGEMENTS / "churn_telco.yaml")


@pytest.fixture
def demand() -> Engagement:
    return load_engagement(ENGAGEMENTS / "demand_retail.yaml")


@pytest.fixture
def paths(tmp_path, monkeypatch) -> StewardPaths:
    """A private STEWARD_HOME per test (data, landed, quarantine, artifacts, MLflow)."""
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    return StewardPaths.from_env()


# Longest first, as measured per file with the whole suite running (2026-11-28; the FAB api-server's access suite
# moved up on 2026-12-05: last in the queue, it ran alone for the final 41 s): with three workers
# (`make test`, xdist --dist loadfile) the long files start at once and the short ones fill the end, instead of
# a long file starting last and running alone. The Makefile passes --no-loadscope-reorder, or xdist would put
# the files with the most tests first.
SLOW_FIRST = ("test_production_shape.py", "test_standalone.py", "test_monitoring_months.py",
              "realdata/test_realdata.py", "test_managed_service.py", "e2e/test_nightly_dag.py", "servers/test_access.py",
              "badinput/test_catalogue.py",
              "test_outages.py", "test_adopted_model.py", "badinput/test_shapes.py", "test_secrets.py", "test_sql_source.py",
              "dags/test_dag_integrity.py", "test_clients.py", "test_object_source.py", "test_cli.py",
              "test_onboard.py", "test_labels_never_stop_the_night.py", "test_rollback.py", "test_monitoring.py",
              "test_training_registry.py", "test_config_fuzz.py", "test_sampling.py", "test_servers_support.py")


# Markers by folder (docs/testing.md): the folders of slow tests mark every test in them, so that a new file lands
# in the right run by where it is put. A few slow tests sit beside the fast tests of their module (they share its
# fixtures) and carry their marker themselves.
FOLDER_MARKERS = {
    "e2e": ("e2e",),  # nights through the real DAG (dag.test())
    "badinput": ("e2e",),  # corrupt batches and configs through the real DAG
    "realdata": ("e2e", "realdata"),  # the first nights of each real-data scenario
    "servers": ("browser",),  # real servers: airflow standalone, api-server with FAB, mlflow ui, Chromium
    "services": ("services",),  # the machine's PostgreSQL and Redis, Celery workers
}


def folder_markers(nodeid: str) -> tuple[str, ...]:
    parts = nodeid.split("::")[0].split("/")
    folder = parts[1] if len(parts) > 2 and parts[0] == "tests" else ""
    return FOLDER_MARKERS.get(folder, ())


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on them
def pytest_collection_modifyitems(config, items):
    for item in items:
        for name in folder_markers(item.nodeid):
            item.add_marker(getattr(pytest.mark, name))

    def rank(item) -> int:
        path = item.nodeid.split("::")[0]
        return next((i for i, name in enumerate(SLOW_FIRST) if path.endswith(name)), len(SLOW_FIRST))

    items.sort(key=rank)  # stable: the order inside a file is kept


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """Each test body runs with room for deep calls (steward.frame_stack): a test that builds its nights' data
    with pandas otherwise maps and unmaps a 16 KiB frame chunk at every crossing, as a night's tasks did
    (49,600 of them on the monitoring months' persistent shift alone; nights already run with room)."""
    from steward.frame_stack import call_with_room

    body = pyfuncitem.obj
    pyfuncitem.obj = functools.partial(call_with_room, body)
    try:
        yield
    finally:
        pyfuncitem.obj = body


@pytest.fixture(autouse=True, scope="session")
def _seeded_mlflow_stores():
    """Fresh homes get MLflow's empty store copied, not migrated again (tests/support/mlflow_store.py)."""
    from steward.models import registry
    from tests.support.mlflow_store import seeding

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "client", seeding(registry.client))
        yield


def pytest_sessionfinish(session, exitstatus):
    """The process that put this run's temporary files in RAM removes them after a run that passed."""
    message = ram_temp.release(_RAM_TEMP, passed=exitstatus == 0)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if message and reporter is not None:
        reporter.write("\n")
        reporter.write_line(message)
