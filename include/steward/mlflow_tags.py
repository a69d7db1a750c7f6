"""The MLflow tag names steward writes on runs and model versions, in one place. An auditor reading MLflow,
a test and every module use these names; changing one here changes it everywhere (and breaks the reading
of versions registered before, so don't)."""

from __future__ import annotations

# on every run and version
ENGAGEMENT = "steward.engagement"
CLIENT = "steward.client"  # on the registered model
DAG_ID = "steward.dag_id"
AIRFLOW_RUN_ID = "steward.airflow_run_id"
RUN_NAME = "steward.run_name"

# what a version was trained for and on
TRAINED_FOR = "steward.trained_for"  # the logical date of the night that trained it
KIND = "steward.kind"  # bootstrap | candidate
REASON = "steward.reason"  # why it was trained, in words
TRIGGERS = "steward.triggers"  # the triggers a candidate was trained for (comma-separated)
QUIET = "steward.quiet"  # "true" when trained on a night nothing alarmed on (ADR 0034: the quiet-night budget)
DATA_FINGERPRINT = "steward.data_fingerprint"  # digest of the training window
TRAINING_KEY = "steward.training_key"  # idempotency key: engagement, night and window (ADR 0003)
DRIFT_REFERENCE = "steward.drift_reference"  # sha256 of the drift reference the night a candidate was trained
MODEL_SHA = "steward.model_sha256"  # the skops file's digest, recorded when the version is registered
ADOPTED_FROM = "steward.adopted_from"  # where an adopted model came from (a path or models:/ URI, ADR 0032)
ADOPTED_SHA = "steward.adopted_sha256"  # the adopted file's digest as the engagement file pins it
GATE_FIT_SHA = "steward.gate_fit_sha256"  # a version whose served model is not the one its gate judged (ADR 0026)

# its life as challenger and champion
PROMOTED_FOR = "steward.promoted_for"  # logical date of the night that promoted this version
REPLACED = "steward.replaced_version"  # the champion it replaced ("" for the first)
RESTORED_FOR = "steward.restored_for"  # day a rollback made this version champion again
SHADOW_SINCE = "steward.shadow_since"  # night the gate passed it into shadow
SHADOW_DECIDED = "steward.shadow_decided_for"  # night its shadow period ended
SHADOW_VERDICT = "steward.shadow_verdict"  # promoted | retired
APPROVAL_REQUESTED = "steward.approval_requested_for"  # night the gate (or shadow) asked for an approval (issue 35)
APPROVAL = "steward.approval"  # approved | rejected | timed_out | superseded, with who and when in the ledger
HOLDOUT_NIGHTS = "steward.holdout_nights"  # the gate's out-of-time holdout nights (comma-separated dates)
HOLDOUT_SAMPLE = "steward.holdout_sample"  # nights whose hash-selected share was the gate's holdout instead
