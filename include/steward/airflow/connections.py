"""SQL engines for the Airflow connection ids an engagement names (ADR 0023).

The Postgres provider's hook builds the SQLAlchemy URL from the connection (whatever keeps it: a secrets
backend, `AIRFLOW_CONN_<ID>`, the metadata database); the password is registered with Airflow's secret
masker, and one engine is kept per connection id in the task process. Domain code receives `engine_for`
as its `Connect` and never imports Airflow.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa


class ConnectionNotDefinedError(LookupError):
    """An engagement names a connection id Airflow does not know."""


@cache
def engine_for(conn_id: str) -> sa.Engine:
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.log import mask_secret
    from sqlalchemy import create_engine

    try:
        hook = PostgresHook(postgres_conn_id=conn_id)
        url = hook.sqlalchemy_url
    except AirflowNotFoundException:
        raise ConnectionNotDefinedError(
            f"connection {conn_id!r} is not defined (Admin > Connections, AIRFLOW_CONN_{conn_id.upper()}, "
            "or the secrets backend)") from None
    if url.password:
        mask_secret(str(url.password))
    # pool_pre_ping: a connection the database dropped between tasks is replaced, not reported as an outage
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
