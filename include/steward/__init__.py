"""steward: Airflow-native operations for machine-learning models run for many clients.

Importing this package must stay cheap: the DAG factory imports it at parse time, so heavy
libraries (pandas, great_expectations, evidently, mlflow, sklearn) are imported inside functions.

The modules by what they own (one flat package on purpose, ADR 0014):

- the night: `pipeline` (the stages, plain functions the DAG wires), `policy` (decide and gate rules);
- data in: `config`, `clients`, `schema`, `batches`, `sql_source` (PostgreSQL nights and the predictions
  sink, ADR 0023), `object_source` (S3 / file:// objects), `quality`, `sampling`, `labels`, `faults`;
- monitoring: `drift`, `monitoring` (windows, persistence), `reference` (what drift is judged against),
  `outcomes` and `estimate` (realised and estimated performance), `metrics`, `finite`;
- models: `training`, `training_set` (window and holdout, ADR 0024), `evidence` (the gate's paired test,
  pooled over nights), `baselines` (never retrained and a periodic refit, never served, ADR 0025),
  `registry` (MLflow), `shadow` (the nights after the gate, ADR 0015), `model_card` (and each version's
  documents), `explain`, `fairness`, `predictions`, `rollback`, `digests`;
- governance: `audit` (the record), `export` (the night's record written, chained, signed, emitted),
  `ledger`, `signing` (checkpoints of its head, ADR 0017), `lineage`, `bundle`, `retention`;
- operations: `alerts`, `incidents`, `notify`, `status`, `store`, `summary`, `report`, `settings`;
- business: `value` (what realised outcomes are worth), `portfolio` (a client's engagements on one page);
- front doors: `cli`, `onboard`, `demo`; the Airflow layer lives in `steward.airflow` only.
"""

__version__ = "0.1.0"
