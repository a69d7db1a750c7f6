# One image for every service of the production shape (Airflow components, Celery workers, MLflow server).
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow \
    STEWARD_HOME=/opt/steward-state

RUN useradd --create-home --uid 50000 airflow \
 && mkdir -p /opt/airflow /opt/steward-state /opt/steward \
 && chown -R airflow /opt/airflow /opt/steward-state /opt/steward

WORKDIR /opt/steward
# Same pinned lock as the embedded default: configuration, not code, changes between shapes.
COPY requirements.txt pyproject.toml README.md ./
COPY include ./include
RUN pip install -r requirements.txt && pip install --no-deps -e .
COPY dags ./dags
COPY plugins ./plugins

USER airflow
