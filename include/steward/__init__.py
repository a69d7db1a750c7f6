"""steward: Airflow-native operations for machine-learning models run for many clients.

Importing this package must stay cheap: the DAG factory imports it at parse time, so heavy
libraries (pandas, great_expectations, evidently, mlflow, sklearn) are imported inside functions.

The package by what each part does (ADR 0030; the layers are an import-linter contract in pyproject.toml):

- `sources/`: data in: `schema`, `batches` (land, fingerprint, quarantine; atomic writes), `sql_source`
  (PostgreSQL nights and the predictions sink, ADR 0023), `object_source` (S3 / file://), `sampling`, `labels`;
- `checks/`: data quality: `quality` (the Great Expectations suite), `quality_rates` (rates drift, ADR 0027);
- `monitoring/`: `drift` (Evidently), `windows` (windows and persistence), `reference` (what drift is judged
  against), `outcomes` (realised performance and SLAs), `estimate` (CBPE while labels are pending);
- `models/`: `training`, `training_set` (window and holdout, ADR 0024), `evidence` (the gate's paired test),
  `gate_fit`, `shadow` (ADR 0015), `registry` (MLflow), `baselines` (ADR 0025), `metrics`, `model_card`,
  `explain`, `fairness`, `predictions`, `rollback`;
- `governance/`: `audit` (the record), `export`, `ledger`, `signing` (ADR 0017), `lineage`, `bundle`,
  `retention`;
- `operations/`: `alerts`, `incidents`, `notify`, `status`, `report`, `portfolio`, `value`, `summary`, `faults`;
- the core, at the top: `config`, `clients`, `config_reference`, `settings`, `store`, `digests`, `finite`,
  `mlflow_tags`, `results`, `stages` (the nightly graph), `policy` (every decision), `pipeline` (the stages as
  plain functions the DAG wires);
- front doors: `cli`, `onboard`, `demo`; the Airflow layer lives in `steward.airflow` only.
"""

__version__ = "0.1.0"
