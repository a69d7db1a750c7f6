"""Pure decisions with reasons: retrain or keep, promote or refuse. No I/O, no libraries.

Every decision returns the reasons in words an auditor can read; the audit record stores them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from steward.config import LOWER_IS_BETTER, Engagement


@dataclass(frozen=True)
class Decision:
    action: str
    reasons: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # triggers that fired but could not be acted on tonight

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def breaches(metric: str, value: float, threshold: float) -> bool:
    """A floor for higher-is-better metrics, a ceiling for error metrics."""
    return value > threshold if metric in LOWER_IS_BETTER else value < threshold


def decide_retrain(
    eng: Engagement,
    *,
    drift: dict[str, Any] | None,
    performance: dict[str, Any] | None,
    champion_age_days: int | None,
    performance_request: str | None = None,
) -> Decision:
    """Retrain when a configured trigger fires: dataset drift, performance breach (tonight's labelled rows,
    or a realised-performance SLA breach whose response asks for a retrain), scheduled refresh."""
    triggers = set(eng.retraining.triggers) | ({"drift"} if eng.responses.drift == "retrain" else set())
    fired: list[str] = []
    reasons: list[str] = []
    if performance_request:
        fired.append("performance")
        reasons.append(performance_request)
    if drift is not None:
        share, limit = drift["drift_share"], drift["share_threshold"]
        drifted = ", ".join(drift["drifted_features"]) or "none"
        if drift["dataset_drift"]:
            if "drift" in triggers:
                fired.append("drift")
                reasons.append(f"dataset drift: {share:.0%} of features drifted (limit {limit:.0%}): {drifted}")
            else:
                reasons.append(f"dataset drift {share:.0%} observed, but 'drift' is not a retraining trigger")
    policy = eng.performance
    if performance is not None:
        value = performance["metrics"].get(policy.metric)
        rows = performance["rows"]
        if rows == 0 and eng.labels is not None:
            reasons.append("performance judged on realised outcomes as labels arrive (see the performance SLA)")
        elif rows < policy.min_labelled_rows:
            reasons.append(f"performance not judged: {rows} labelled rows < minimum {policy.min_labelled_rows}")
        elif value is None:
            why = (performance.get("not_computable") or {}).get(policy.metric, "not computable")
            reasons.append(f"performance not judged: {policy.metric} not computable on {rows} labelled rows ({why})")
        elif breaches(policy.metric, value, policy.threshold):
            kind = "ceiling" if policy.metric in LOWER_IS_BETTER else "floor"
            text = f"performance breach: {policy.metric}={value:.4f} vs {kind} {policy.threshold} on {rows} labelled rows"
            if "performance" in triggers and "performance" not in fired:
                fired.append("performance")
                reasons.append(text)
            else:
                reasons.append(text + " ('performance' is not a retraining trigger)")
    if champion_age_days is not None and champion_age_days >= eng.retraining.refresh_every_days:
        if "schedule" in triggers:
            fired.append("schedule")
            reasons.append(
                f"scheduled refresh: champion trained {champion_age_days} days ago (every {eng.retraining.refresh_every_days})"
            )
    if fired:
        return Decision("retrain", reasons, fired)
    if not reasons:
        reasons.append("no trigger fired: no dataset drift, performance within policy, champion fresh")
    return Decision("keep", reasons, [])


def gate(
    eng: Engagement,
    *,
    champion_version: int | None,
    champion_score: float | None,
    challenger_version: int,
    challenger_score: float | None,
    holdout_rows: int,
    fairness_gap: tuple[str, float] | None = None,
) -> Decision:
    """Promote the challenger only if it beats the champion on the same holdout by the margin,
    and its worst per-group gap (if a fairness policy is set) stays within the limit."""
    metric, margin = eng.promotion.metric, eng.promotion.min_improvement
    policy = eng.governance.fairness
    if policy is not None and fairness_gap is not None and fairness_gap[1] > policy.max_gap:
        attribute, gap = fairness_gap
        return Decision("refuse", [
            f"fairness: challenger v{challenger_version} {policy.metric} gap {gap:.3f} between groups of "
            f"'{attribute}' exceeds the limit {policy.max_gap}"])
    if champion_version is None:
        return Decision("promote", [f"no champion yet: challenger v{challenger_version} becomes champion"])
    if challenger_score is None or champion_score is None:
        who = "challenger" if challenger_score is None else "champion"
        return Decision("refuse", [f"{metric} of the {who} is not computable on the {holdout_rows}-row holdout: "
                                   "the models cannot be compared, the champion stays"])
    if challenger_version == champion_version:
        return Decision("keep", [f"v{challenger_version} is already the champion"])
    if challenger_version < champion_version:
        return Decision(
            "refuse",
            [f"v{challenger_version} is older than champion v{champion_version}: the champion never moves backwards"],
        )
    gain = champion_score - challenger_score if metric in LOWER_IS_BETTER else challenger_score - champion_score
    text = (
        f"{metric} on the same {holdout_rows}-row holdout: challenger v{challenger_version} {challenger_score:.4f} "
        f"vs champion v{champion_version} {champion_score:.4f} (gain {gain:+.4f}, required {margin:+.4f})"
    )
    if gain >= margin and gain > 0:
        return Decision("promote", [text])
    return Decision("refuse", [text + ": challenger not better enough"])
