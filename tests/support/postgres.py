"""Scratch databases on the machine's PostgreSQL (127.0.0.1:5432, trust auth) for the SQL-source tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

HOST, PORT = "127.0.0.1", 5432


@contextlib.contextmanager
def scratch_database(prefix: str = "steward_sql") -> Iterator[str]:
    """A new, empty database; yields its name and drops it (connections and all) afterwards."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host=HOST, port=PORT, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def url(database: str, user: str = "postgres", password: str | None = None, port: int = PORT) -> str:
    secret = f":{password}" if password else ""
    return f"postgresql+psycopg://{user}{secret}@{HOST}:{port}/{database}"


@contextlib.contextmanager
def password_cluster(admin_password: str) -> Iterator[int]:
    """A private PostgreSQL cluster that asks every connection for its password (scram-sha-256), on a free
    port, for as long as the context lasts: the machine's own server trusts every local connection, so a test
    of a real password needs its own. Yields the port; the superuser is `postgres` with `admin_password`.
    PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user."""
    import os
    import shutil
    import socket
    import subprocess
    import tempfile
    from pathlib import Path

    bindir = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip())
    initdb, pg_ctl = bindir / "initdb", bindir / "pg_ctl"
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="steward_pg_"))
    (root / "pw").write_text(admin_password + "\n")
    if as_owner:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    try:
        subprocess.run([*as_owner, str(initdb), "-D", str(root / "data"), "-A", "scram-sha-256", "-U", "postgres",
                        f"--pwfile={root / 'pw'}"], check=True, capture_output=True)
        subprocess.run([*as_owner, str(pg_ctl), "-D", str(root / "data"), "-l", str(root / "log"), "-w", "-o",
                        f"-p {port} -k {root} -c listen_addresses={HOST}", "start"], check=True, capture_output=True)
        yield port
    finally:
        subprocess.run([*as_owner, str(pg_ctl), "-D", str(root / "data"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
