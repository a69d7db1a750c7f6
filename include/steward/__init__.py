"""steward: Airflow-native operations for machine-learning models run for many clients.

Importing this package must stay cheap: the DAG factory imports it at parse time, so heavy
libraries (pandas, great_expectations, evidently, mlflow, sklearn) are imported inside functions.
"""

__version__ = "0.1.0"
