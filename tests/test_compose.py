"""docker-compose.yaml: valid against the official Compose schema, and everything it names exists.

No Docker engine runs here, so the file is checked statically (tests/schemas/compose-spec).
"""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from steward.settings import PROJECT_ROOT

SPEC = PROJECT_ROOT / "tests" / "schemas" / "compose-spec" / "compose-spec.json"  # vendored, with its licence
COMPOSE = PROJECT_ROOT / "docker-compose.yaml"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def test_valid_against_official_schema(compose):
    jsonschema.Draft7Validator(json.loads(SPEC.read_text())).validate(compose)


def test_expected_services_with_healthchecks(compose):
    services = compose["services"]
    assert {"postgres", "redis", "mlflow", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer", "airflow-worker", "airflow-init"} <= set(services)
    for name, svc in services.items():
        if name != "airflow-init":
            assert "healthcheck" in svc, name


def test_no_secret_in_the_file_and_every_variable_documented(compose):
    text = COMPOSE.read_text()
    assert not re.search(r"(PASSWORD|SECRET|FERNET)[A-Z_]*:\s*[^$\s{]", text), "a literal secret in compose"
    documented = {line.split("=", 1)[0] for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#")}
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", text)) | set(re.findall(r"\$\$\{([A-Z_]+)\}", text))
    assert used - {"HOSTNAME"} <= documented, used - documented  # HOSTNAME is the container's own


def test_build_and_mounts_refer_to_files_in_the_repo(compose):
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    for svc in compose["services"].values():
        if "build" in svc:
            assert (PROJECT_ROOT / svc["build"] / "Dockerfile").exists()
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (PROJECT_ROOT / source).exists(), source
    for copied in ("requirements.txt", "include", "dags", "plugins"):
        assert f"COPY {copied}" in dockerfile or f" {copied} " in dockerfile
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/steward/dags" and "WORKDIR /opt/steward" in dockerfile
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "FabAuthManager" in env["AIRFLOW__CORE__AUTH_MANAGER"]
    # the ledger's anchor lives in steward's own database, not on the state volume and not in Airflow's
    assert env["STEWARD_DB_URL"].startswith("postgresql+psycopg2://") and env["STEWARD_DB_URL"].endswith("@postgres/steward")
    assert "CREATE DATABASE steward;" in (PROJECT_ROOT / "docker/postgres/init.sql").read_text()


def test_commands_exist_in_the_pinned_stack(compose):
    import importlib.util

    lock = (PROJECT_ROOT / "requirements.txt").read_text()
    for package in ("apache-airflow-providers-celery", "apache-airflow-providers-fab", "psycopg2-binary", "mlflow"):
        assert f"\n{package}==" in lock, package
    assert importlib.util.find_spec("airflow.providers.celery.executors.celery_executor")
    assert importlib.util.find_spec("airflow.providers.fab.auth_manager.fab_auth_manager")
