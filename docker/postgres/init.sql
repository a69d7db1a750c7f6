-- Separate databases per store, created once when the Postgres volume is initialised.
-- The Airflow metadata database is created by POSTGRES_DB.
CREATE DATABASE mlflow;
CREATE DATABASE steward;
