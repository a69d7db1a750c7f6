"""What the decision stages return, typed (issue 33). TypedDicts, so that XCom still carries plain JSON and
a task reads its upstream's result as a dict; mypy checks the producers (`make test` runs it on the typed
core: config, policy and this module)."""

from __future__ import annotations

from typing import Literal, TypedDict

# what a decision can be: retrain or keep (the night's decision), promote, refuse, wait (the gate and the
# shadow), shadow (a night that waits for a challenger in shadow instead of training another)
Action = Literal["keep", "retrain", "promote", "refuse", "wait", "shadow", "approval"]
# what a trigger is called in the records (steward.config.RetrainTrigger and the performance SLA's request)
Trigger = Literal["drift", "performance", "schedule", "refit", "growth"]


class DecisionResult(TypedDict):
    """A policy decision as the record and XCom carry it (steward.policy.Decision.to_dict)."""

    action: Action
    reasons: list[str]
    triggers: list[str]
    deferred: list[str]  # triggers that fired but could not be acted on tonight


class LastCandidate(TypedDict):
    version: int
    day: str
    triggers: list[str]


class RetrainDecision(DecisionResult):
    """The night's `decide` stage: retrain or keep, and what it was decided from."""

    champion_age_days: int | None
    decided_by: str
    supersedes: int | None  # a challenger in shadow the new candidate replaces
    drift_reference_sha256: str | None
    last_candidate: LastCandidate | None
    candidates_last_30_days: int
    quiet: bool  # nothing alarmed tonight (ADR 0034)
    quiet_candidates_last_30_days: int


class PromotionResult(DecisionResult):
    """The gate's or the shadow's verdict, with where the champion alias stands after it."""

    promoted: bool
    champion_before: int
    champion_after: int
    champion_alias_now: int | None
    decided_by: str


class Growth(TypedDict):
    """Trigger `growth` (ADR 0028): the labelled rows the newest model has not learnt, against its own."""

    new_rows: int
    nights: int
    champion_rows: int
    version: int
