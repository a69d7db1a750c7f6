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
