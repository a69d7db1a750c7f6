"""Pure decisions with reasons: retrain or keep, promote or refuse. No I/O, no libraries.

Every decision returns the reasons in words an auditor can read; the audit record stores them.
"""

from __future__ import annotations

import datetime as dt
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


@dataclass(frozen=True)
class Candidate:
    """A candidate trained on an earlier night (what tonight's decision compares itself with)."""

    version: int
    day: dt.date
    triggers: tuple[str, ...]
    fingerprint: str
    drift_reference: str = ""  # sha256 of the drift reference of the night it was trained
    retired_in_shadow: str = ""  # night the nights after its gate refuted it (ADR 0015), "" if they did not


@dataclass(frozen=True)
class TrainingHistory:
    """The versions trained before tonight: the newest candidate, and how many in the last 30 days."""

    last_candidate: Candidate | None = None
    candidates_last_30_days: int = 0


def decide_retrain(
    eng: Engagement,
    *,
    drift: dict[str, Any] | None,
    performance: dict[str, Any] | None,
    champion_age_days: int | None,
    performance_request: str | None = None,
) -> Decision:
    """Retrain when a configured trigger fires: dataset drift that persisted, performance breach (tonight's
    labelled rows, or a realised-performance SLA breach whose response asks for a retrain), scheduled
    refresh (`champion_age_days`: days since the last model was trained, champion or candidate)."""
    triggers = set(eng.retraining.triggers) | ({"drift"} if eng.responses.drift == "retrain" else set())
    fired: list[str] = []
    reasons: list[str] = []
    if performance_request:
        fired.append("performance")
        reasons.append(performance_request)
    if drift is not None:
        share, limit = drift["drift_share"], drift["share_threshold"]
        drifted = ", ".join(drift["drifted_features"]) or "none"
        held = drift.get("persistence") or {}
        if drift.get("state") == "not_enough_data":
            reasons.append(f"drift not judged: {drift['reason']}")
        elif drift["dataset_drift"] and not drift.get("persistent", True):
            reasons.append(f"dataset drift tonight ({share:.0%} of features: {drifted}) on {held.get('nights_drifted')} "
                           f"of the last {held.get('of_last')} judged nights; it must hold on {held.get('needs')} "
                           "before it retrains")
        elif drift["dataset_drift"]:
            since = f" on {held['nights_drifted']} of the last {held['of_last']} nights" if held else ""
            if "drift" in triggers:
                fired.append("drift")
                reasons.append(f"dataset drift{since}: {share:.0%} of features drifted (limit {limit:.0%}): {drifted}")
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
            reasons.append(f"scheduled refresh: the last model was trained {champion_age_days} days ago "
                           f"(every {eng.retraining.refresh_every_days})")
    if fired:
        return Decision("retrain", reasons, fired)
    if not reasons:
        reasons.append("no trigger fired: no dataset drift, performance within policy, champion fresh")
    return Decision("keep", reasons, [])


def without_acted_drift(decision: Decision, last: Candidate | None, reference_sha256: str | None) -> Decision:
    """Drift already acted on is not new information: when the last candidate was trained for drift judged
    against tonight's reference (the champion did not change since), the same drift trains no second one.
    A promotion (a new reference), a performance breach or the scheduled refresh still do, and so does a
    candidate retired in shadow: the nights that refuted it are labelled data it never learnt from (the
    cooldown and the budget still bound the retries)."""
    if "drift" not in decision.triggers or last is None or "drift" not in last.triggers \
            or not reference_sha256 or last.drift_reference != reference_sha256 or last.retired_in_shadow:
        return decision
    reason = (f"drift already acted on: candidate v{last.version} of {last.day} was trained for drift against the "
              "same reference, and the champion has not changed since")
    triggers = [t for t in decision.triggers if t != "drift"]
    if triggers:
        return Decision("retrain", [*decision.reasons, reason], triggers, deferred=["drift"])
    return Decision("keep", [*decision.reasons, f"no candidate tonight: {reason}"], [], deferred=["drift"])


def why_no_candidate(eng: Engagement, day: dt.date, triggers: list[str], fingerprint: str,
                     history: TrainingHistory) -> list[str]:
    """Why a trigger that fired should not train a candidate tonight ([] when it should): a candidate is
    trained only on new information (new labelled rows, or a trigger that was not firing before), at most
    once per cooldown for the same triggers and within the 30-day budget."""
    rules = eng.retraining
    last = history.last_candidate
    out: list[str] = []
    if last is not None and fingerprint == last.fingerprint:
        out.append(f"no new labelled rows since candidate v{last.version} of {last.day}: the same data would "
                   "train the same model")
    if history.candidates_last_30_days >= rules.max_candidates_per_30_days:
        out.append(f"budget spent: {history.candidates_last_30_days} candidates in the last 30 days "
                   f"(retraining.max_candidates_per_30_days {rules.max_candidates_per_30_days})")
    if last is not None and (day - last.day).days < rules.min_days_between and set(triggers) <= set(last.triggers):
        out.append(f"cooldown: candidate v{last.version} was trained {(day - last.day).days} day(s) ago for the same "
                   f"trigger(s) ({', '.join(last.triggers) or 'none'}); retraining.min_days_between "
                   f"{rules.min_days_between}")
    return out


def _better(metric: str, challenger: float, champion: float) -> bool:
    return challenger < champion if metric in LOWER_IS_BETTER else challenger > champion


def gate(
    eng: Engagement,
    *,
    champion_version: int | None,
    champion_score: float | None,
    challenger_version: int,
    challenger_score: float | None,
    holdout_rows: int,
    fairness_gap: tuple[str, float] | None = None,
    win_share: float | None = None,
    scores_by_batch: dict[str, dict[str, float | None]] | None = None,
) -> Decision:
    """Promote the challenger only if it beats the champion on the same holdout by the margin, on enough
    bootstrap resamples, and on each night of an out-of-time holdout, and its worst per-group gap (if a
    fairness policy is set) stays within the limit."""
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
    if gain >= margin and gain > 0 and win_share is not None and win_share < eng.promotion.min_win_share:
        return Decision("refuse", [text + f", but it wins on only {win_share:.0%} of paired bootstrap resamples of "
                                          f"the holdout (required {eng.promotion.min_win_share:.0%}): not confirmed"])
    losses = [f"{day} ({s['challenger']:.4f} vs {s['champion']:.4f})" for day, s in (scores_by_batch or {}).items()
              if s["challenger"] is not None and s["champion"] is not None
              and not _better(metric, s["challenger"], s["champion"])]
    if gain >= margin and gain > 0 and losses:
        return Decision("refuse", [text + f", but it does not beat the champion on every night of the out-of-time "
                                          f"holdout: {', '.join(losses)}: not confirmed"])
    if gain >= margin and gain > 0:
        return Decision("promote", [text + ("" if win_share is None else
                                            f"; wins on {win_share:.0%} of paired bootstrap resamples")])
    return Decision("refuse", [text + ": challenger not better enough"])


def shadow_verdict(
    eng: Engagement,
    *,
    challenger_version: int,
    champion_version: int,
    since: dt.date,
    day: dt.date,
    nights: dict[str, dict[str, Any]],
    pooled: dict[str, float | None] | None,
) -> Decision:
    """Promote a challenger out of shadow, retire it, or wait (ADR 0015).

    `nights` holds each labelled night after `since` (oldest first) with both models' scores on it; the first
    `promotion.shadow_nights` nights on which the metric is computable decide, and `pooled` holds both scores
    on their rows together. A challenger that loses any of them is retired; one that wins all of them and
    gains at least `min_improvement` on their pooled rows is promoted; a period with no verdict after
    `shadow_max_days` ends with the champion kept."""
    rules = eng.promotion
    metric, needed = rules.metric, rules.shadow_nights
    judged = [(d, s) for d, s in nights.items() if s["challenger"] is not None and s["champion"] is not None][:needed]
    shown = ", ".join(f"{d} {s['challenger']:.4f} vs {s['champion']:.4f}" for d, s in judged) or "none yet"
    head = (f"challenger v{challenger_version} in shadow since {since} against champion v{champion_version}, "
            f"{metric} on the labelled nights it never saw: {shown}")
    if not needed:  # the engagement switched its shadow period off while this challenger waited
        return Decision("promote", [f"{head}; promotion.shadow_nights is now 0: the gate's verdict of {since} stands, "
                                    "promoted"])
    lost = [d for d, s in judged if not _better(metric, s["challenger"], s["champion"])]
    if lost:
        return Decision("refuse", [f"{head}; it lost {', '.join(lost)}: retired, the champion stays"])
    if len(judged) == needed and pooled is not None and None not in (pooled["challenger"], pooled["champion"]):
        chall, champ = float(pooled["challenger"]), float(pooled["champion"])  # type: ignore[arg-type]
        gain = champ - chall if metric in LOWER_IS_BETTER else chall - champ
        text = (f"{head}; on their {pooled['rows']:.0f} rows together {chall:.4f} vs {champ:.4f} "
                f"(gain {gain:+.4f}, required {rules.min_improvement:+.4f})")
        if gain >= rules.min_improvement and gain > 0:
            return Decision("promote", [f"{text}: confirmed, promoted"])
        return Decision("refuse", [f"{text}: not better enough, retired"])
    waited = (day - since).days
    if waited >= rules.shadow_max_days:
        return Decision("refuse", [f"{head}; {len(judged)} of {needed} nights judged after {waited} days "
                                   f"(promotion.shadow_max_days {rules.shadow_max_days}): retired, the champion stays"])
    return Decision("wait", [f"{head}; {len(judged)} of {needed} nights judged: it stays in shadow"])
