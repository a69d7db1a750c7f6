"""Pure decisions with reasons: retrain or keep, promote or refuse. No I/O, no libraries.

Every decision returns the reasons in words an auditor can read; the audit record stores them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from steward.config import Engagement, threshold_kind, within
from steward.results import Action, DecisionResult, Growth


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # triggers that fired but could not be acted on tonight

    def to_dict(self) -> DecisionResult:
        return DecisionResult(action=self.action, reasons=list(self.reasons), triggers=list(self.triggers),
                              deferred=list(self.deferred))


def breaches(metric: str, value: float, threshold: float) -> bool:
    """A floor for higher-is-better metrics, a ceiling for error metrics."""
    return not within(metric, value, threshold)


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
    quiet_candidates_last_30_days: int = 0  # of those, trained on a night nothing alarmed on (ADR 0034)


def decide_retrain(
    eng: Engagement,
    *,
    drift: dict[str, Any] | None,
    performance: dict[str, Any] | None,
    champion_age_days: int | None,
    performance_request: str | None = None,
    refit_evidence: dict[str, Any] | None = None,
    champion_days: int | None = None,
    growth: Growth | None = None,
) -> Decision:
    """Retrain when a configured trigger fires: dataset drift that persisted, performance breach (tonight's
    labelled rows, or a realised-performance SLA breach whose response asks for a retrain), scheduled
    refresh (`champion_age_days`: days since the last model was trained, champion or candidate), and the
    periodic-refit baseline beating the models it was fitted after (`refit_evidence`, judged like the gate's
    evidence: its lower bound clears `promotion.min_improvement`), at most once per refit period of the
    champion (`champion_days`: days since the champion was trained), and the labelled data growing (`growth`:
    `new_rows` accepted labelled rows the champion has not learnt against the `champion_rows` it learnt from,
    ADR 0028), at most once per refit period too."""
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
            kind = threshold_kind(policy.metric)
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
    if refit_evidence is not None and "refit" in triggers:
        b = refit_evidence["bounds"]
        text = (f"the periodic-refit baseline against the champion on {refit_evidence['rows']} labelled rows of "
                f"{refit_evidence['nights']} night(s): {refit_evidence['challenger']:.4f} vs "
                f"{refit_evidence['champion']:.4f}, gain {refit_evidence['gain']:+.4f}, bounds [{b['lower']:+.4f}, "
                f"{b['upper']:+.4f}]")
        every, age = eng.baselines.refit_every_days, champion_age_days if champion_days is None else champion_days
        if b["lower"] > eng.promotion.min_improvement and age is not None and age < every:
            reasons.append(f"{text}: refitting pays, but the champion was trained {age} day(s) ago "
                           f"(a refit at most every {every} days, baselines.refit_every_days)")
        elif b["lower"] > eng.promotion.min_improvement:
            fired.append("refit")
            reasons.append(f"{text}: a refit on the labels known beats the champion")
        else:
            reasons.append(f"{text}: no evidence yet that a refit would beat the champion")
    if growth is not None and "growth" in triggers:
        every = eng.baselines.refit_every_days
        need = eng.retraining.growth_factor * growth["champion_rows"]
        text = (f"{growth['new_rows']} labelled rows of {growth['nights']} night(s) v{growth.get('version', '?')} "
                f"(the newest model trained) has not learnt, against the {growth['champion_rows']} it learnt from "
                f"(a candidate at "
                f"{eng.retraining.growth_factor:g}x, retraining.growth_factor)")
        age = champion_age_days if champion_days is None else champion_days
        if growth["new_rows"] >= need and age is not None and age < every:
            reasons.append(f"{text}: the data grew, but the champion was trained {age} day(s) ago "
                           f"(at most every {every} days, baselines.refit_every_days)")
        elif growth["new_rows"] >= need:
            fired.append("growth")
            reasons.append(f"{text}: the labelled data grew enough to learn from")
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


# The triggers fired by what the labelled data showed (drift, a performance breach, the refit's win) rather than
# by how much data or time has passed (growth, the scheduled refresh): a data-quality fault can fire them by
# itself (ADR 0027), and a candidate they ask for keeps their rules at the gate (ADR 0028).
OBSERVED_CHANGE_TRIGGERS = ("drift", "performance", "refit")
# The triggers that say something alarmed (ADR 0034): what a data-quality alarm holds (the faulty rows themselves
# fire them; the refit trigger is judged on dates no alarm flagged, and its candidate learns a window without them),
# and what makes a night not quiet (growth, the refit's evidence and the scheduled refresh fire on quiet nights too).
ALARM_TRIGGERS = ("drift", "performance")


def held_for_quality(eng: Engagement, decision: Decision, quality_drift: dict[str, Any] | None) -> Decision:
    """While a data-quality alarm lasts, `responses.quality_drift: hold` trains no candidate for what the fault
    may have caused (ADR 0027, 0028): drift and performance triggers are deferred, with the columns named.
    Growth, the scheduled refresh and the refit trigger (judged on the dates no alarm flagged, ADR 0034) still
    train one: its window leaves the flagged nights out."""
    columns = (quality_drift or {}).get("alarm_columns") or []
    if decision.action != "retrain" or not columns or eng.responses.quality_drift != "hold":
        return decision
    held = [t for t in decision.triggers if t in ALARM_TRIGGERS]
    if not held:
        return decision
    reason = (f"data-quality alarm on {', '.join(columns)} (responses.quality_drift: hold): {', '.join(held)} "
              "waits until it clears")
    kept = [t for t in decision.triggers if t not in held]
    if kept:
        return Decision("retrain", [*decision.reasons, reason], kept, deferred=[*decision.deferred, *held])
    return Decision("keep", [*decision.reasons, f"no candidate tonight: {reason}"], [],
                    deferred=[*decision.deferred, *held])


@dataclass(frozen=True)
class InShadow:
    """A challenger serving in shadow since a night (ADR 0015)."""

    version: int
    since: str


def supersedes(decision: Decision, shadow: InShadow | None) -> bool:
    """The refit trigger says fresher data wins (ADR 0025): a challenger still waiting in shadow is superseded by
    a new candidate; any other trigger waits for the shadow's verdict (the candidate trained is being checked)."""
    return shadow is not None and decision.action == "retrain" and "refit" in decision.triggers


def _waiting_for(decision: Decision, shadow: InShadow) -> Decision:
    return Decision("shadow", [*decision.reasons, f"no candidate tonight: challenger v{shadow.version} is in shadow "
                               f"since {shadow.since}; tonight's labels judge it first"],
                    [], deferred=[*decision.deferred, *decision.triggers])


def facing_shadow(decision: Decision, shadow: InShadow | None) -> Decision:
    """Tonight's decision with a challenger in shadow: it waits for the shadow's verdict, unless it supersedes it."""
    if shadow is None or supersedes(decision, shadow):
        return decision
    return _waiting_for(decision, shadow)


def with_training_problems(decision: Decision, problems: list[str], shadow: InShadow | None) -> Decision:
    """A retrain decision once the training set is known: no candidate when the set or the rules say so
    (`problems`: why), the shadow keeps waiting then; otherwise the retrain, saying what it supersedes."""
    if decision.action != "retrain":
        return decision
    superseding = supersedes(decision, shadow)
    no_candidate = [f"no candidate tonight: {p}" for p in problems]
    if problems and superseding and shadow is not None:
        waiting = _waiting_for(decision, shadow)
        return Decision("shadow", [*waiting.reasons, *no_candidate], [], deferred=waiting.deferred)
    if problems:
        return Decision("keep", [*decision.reasons, *no_candidate], [], deferred=[*decision.deferred, *decision.triggers])
    if superseding and shadow is not None:
        return Decision("retrain", [*decision.reasons, f"the new candidate supersedes challenger v{shadow.version} in "
                                    f"shadow since {shadow.since}: it learns from the labelled nights since"],
                        decision.triggers, decision.deferred)
    return decision


def is_quiet(decision: Decision, quality_drift: dict[str, Any] | None) -> bool:
    """Nothing alarmed tonight: no drift or performance trigger fired (acted on or deferred), no data-quality
    alarm. Candidates trained on such nights share the quiet-night budget."""
    fired = set(decision.triggers) | set(decision.deferred)
    return not fired & set(ALARM_TRIGGERS) and not (quality_drift or {}).get("alarm_columns")


def why_no_candidate(eng: Engagement, day: dt.date, triggers: list[str], fingerprint: str,
                     history: TrainingHistory, quiet: bool = False) -> list[str]:
    """Why a trigger that fired should not train a candidate tonight ([] when it should): a candidate is
    trained only on new information (new labelled rows, or a trigger that was not firing before), at most
    once per cooldown for the same triggers and within the 30-day budget; on a quiet night (`is_quiet`), also
    within the quiet-night budget (ADR 0034): a stable feed gets at most that many new versions a month, however
    much growth and the refit's evidence ask for (`credit_channel` trained 3 in its 35 stable nights without it)."""
    rules = eng.retraining
    last = history.last_candidate
    out: list[str] = []
    quiet_budget = rules.max_quiet_candidates_per_30_days
    if quiet and quiet_budget is not None and history.quiet_candidates_last_30_days >= quiet_budget:
        out.append(f"quiet-night budget spent: {history.quiet_candidates_last_30_days} candidates in the last 30 days "
                   "on nights nothing alarmed on (retraining.max_quiet_candidates_per_30_days "
                   f"{quiet_budget})")
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


def looks(eng: Engagement) -> int:
    """How often one challenger's evidence can be judged: at the gate, then at most once a night in shadow."""
    return 1 + eng.promotion.shadow_max_days


def alpha_per_look(eng: Engagement) -> float:
    """`promotion.alpha` split evenly over the looks (Bonferroni): judging the pooled evidence again every
    night must not raise the chance of promoting a challenger that is no better (ADR 0024)."""
    return eng.promotion.alpha / looks(eng)


def gate(
    eng: Engagement,
    *,
    champion_version: int | None,
    challenger_version: int,
    evidence: dict[str, Any] | None,
    fairness_gap: tuple[str, float] | None = None,
    holdout_rows: int = 0,
    why_not_comparable: str | None = None,
    refit_proven: bool = False,
    grown: bool = False,
) -> Decision:
    """The gate night: refuse an unfair or older challenger; otherwise judge the holdout's evidence
    (`judge_evidence`): promote, retire, or `wait` (the challenger goes into shadow and the nights after the
    gate add their labelled rows). `grown`: trained only because the labelled data grew (ADR 0028): a
    conclusive holdout promotes it without shadow nights."""
    metric = eng.promotion.metric
    policy = eng.governance.fairness
    if policy is not None and fairness_gap is not None and fairness_gap[1] > policy.max_gap:
        attribute, gap = fairness_gap
        return Decision("refuse", [
            f"fairness: challenger v{challenger_version} {policy.metric} gap {gap:.3f} between groups of "
            f"'{attribute}' exceeds the limit {policy.max_gap}"])
    if champion_version is None:
        return Decision("promote", [f"no champion yet: challenger v{challenger_version} becomes champion"])
    if challenger_version == champion_version:
        return Decision("keep", [f"v{challenger_version} is already the champion"])
    if challenger_version < champion_version:
        return Decision(
            "refuse",
            [f"v{challenger_version} is older than champion v{champion_version}: the champion never moves backwards"],
        )
    if evidence is None:
        return Decision("refuse", [f"{metric} cannot compare the models on the {holdout_rows}-row holdout "
                                   f"({why_not_comparable or 'not computable'}): the champion stays"])
    fast = REFIT_PROVEN if refit_proven else GROWN if grown else None
    floor = eng.performance.min_labelled_rows
    if fast is not None and evidence["rows"] >= floor:
        return _not_contradicted(eng, challenger_version, champion_version, evidence, fast)
    judged = judge_evidence(eng, challenger_version=challenger_version, champion_version=champion_version,
                            evidence=evidence, unseen_nights=0, waited_days=0)
    if fast is None:
        return judged
    # Too few rows to contradict anything is not "not contradicted" (ADR 0035): `credit_channel` promoted a refit
    # candidate on an 82-row holdout (+0.015 [-0.019, +0.049]) that then lost 0.006 on the next 7 nights.
    return replace(judged, reasons=[f"{fast[0]}, but its holdout has {evidence['rows']} labelled rows, under the "
                                    f"{floor} a night's metric needs (performance.min_labelled_rows): judged like "
                                    "any challenger", *judged.reasons])


def grown_only(triggers: list[str]) -> bool:
    """A candidate trained because the labelled data grew, with no trigger that says the world changed: drift,
    a performance breach or the refit's evidence keep their own rules at the gate (ADR 0028)."""
    return "growth" in triggers and not set(OBSERVED_CHANGE_TRIGGERS) & set(triggers)


REFIT_PROVEN = ("trained on the refit trigger", "the periodic refit beat the champion on labelled nights it had "
                "not seen")
GROWN = ("trained because the labelled data grew", "the same recipe on more of the same feed: a fixed recipe "
         "does not learn worse from more of the rows it was built for")


def _not_contradicted(eng: Engagement, challenger_version: int, champion_version: int, evidence: dict[str, Any],
                      why: tuple[str, str]) -> Decision:
    """A candidate of the refit trigger (ADR 0025, 0026) or of growth alone (ADR 0028, 0034) is the champion's
    recipe fitted on more rows of the same feed: that it serves better is already shown (the refit's evidence on
    nights neither model had seen) or expected (more rows of the same feed), so its own holdout only has to not
    contradict it: promoted at the gate when the holdout's gain is not negative, whatever its bounds; refused
    when it points the other way. No shadow nights. (A growth candidate judged for superiority on its own
    holdout could almost never conclude on small nights: `credit_scoring` kept its go-live model 57 of 60 nights
    while a weekly refit gained 0.007 ROC AUC, ADR 0034.)"""
    trained, because = why
    b = evidence["bounds"]
    text = (f"{evidence['metric']} on {evidence['rows']} holdout rows of {evidence['nights']} night(s): challenger "
            f"v{challenger_version} {evidence['challenger']:.4f} vs champion v{champion_version} "
            f"{evidence['champion']:.4f}, gain {evidence['gain']:+.4f}, {1 - b['alpha']:.2%} bounds "
            f"[{b['lower']:+.4f}, {b['upper']:+.4f}] ({evidence['method']})")
    if evidence["gain"] < 0:
        return Decision("refuse", [f"{trained}, but {text}: its holdout points the other way "
                                   "(the champion did better on it), retired"])
    return Decision("promote", [f"{trained} ({because}); {text}: the holdout does not contradict it, promoted "
                                "without shadow nights"])


def judge_evidence(
    eng: Engagement,
    *,
    challenger_version: int,
    champion_version: int,
    evidence: dict[str, Any],
    unseen_nights: int,
    waited_days: int,
    shadow_nights: int | None = None,
) -> Decision:
    """Promote, retire or wait on the pooled evidence (ADR 0024). `evidence` is an `Evidence` dict with its
    `bounds` (one-sided, at `alpha_per_look`, against `min_improvement`) and `target` (the gain worth finding).

    - promote: the lower bound of the gain is above `min_improvement`, and the challenger has been judged on
      at least `shadow_nights` labelled nights after the gate;
    - retire: the upper bound rules out the gain worth finding, or the rows could detect it (minimum
      detectable effect at most the target) and the lower bound still does not clear the margin, or
      `shadow_max_days` passed without a conclusion;
    - wait: otherwise (in shadow, pooling the next labelled nights).
    A night the challenger lost is part of the evidence, not a verdict on its own."""
    rules = eng.promotion
    shadow = rules.shadow_nights if shadow_nights is None else shadow_nights
    b, target, required = evidence["bounds"], evidence["target"], rules.min_improvement
    text = (f"{evidence['metric']} on {evidence['rows']} labelled rows of {evidence['nights']} night(s) unseen by the "
            f"judged fit of challenger v{challenger_version}: {evidence['challenger']:.4f} vs champion v{champion_version} "
            f"{evidence['champion']:.4f}, gain {evidence['gain']:+.4f}, {1 - b['alpha']:.2%} bounds "
            f"[{b['lower']:+.4f}, {b['upper']:+.4f}] (required above {required:+.4f}; p {b['p_value']:.2g}; "
            f"{evidence['method']}); minimum detectable effect on these rows {b['mde']:.4f}, the gain worth finding "
            f"{target:.4f}")
    if b["lower"] > required:
        if unseen_nights >= shadow:
            return Decision("promote", [f"{text}: the evidence clears the margin, promoted"])
        return Decision("wait", [f"{text}: the evidence clears the margin; judged on {unseen_nights} of the "
                                 f"{shadow} labelled nights after the gate it must also see "
                                 "(promotion.shadow_nights)"])
    if b["upper"] < required + target:
        return Decision("refuse", [f"{text}: the evidence rules out a gain of {target:.4f} over the margin, retired"])
    if b["mde"] <= target:
        return Decision("refuse", [f"{text}: these rows could detect a gain of {target:.4f} and do not show one, "
                                   "retired"])
    if waited_days >= rules.shadow_max_days:
        return Decision("refuse", [f"{text}: not conclusive {waited_days} days after the gate "
                                   f"(promotion.shadow_max_days {rules.shadow_max_days}), retired"])
    return Decision("wait", [f"{text}: not conclusive yet, the next labelled nights are pooled"])


def into_shadow(eng: Engagement, verdict: Decision, challenger: int, champion: int) -> Decision:
    """The gate could not decide yet: the challenger serves in shadow, and what will decide it (ADR 0015, 0024)."""
    rules = eng.promotion
    return Decision("shadow", [*verdict.reasons, (
        f"v{challenger} serves in shadow: the labelled nights after the gate are pooled with its holdout, and it is "
        f"promoted once the evidence clears the margin over champion v{champion} (after at least "
        f"{rules.shadow_nights} such nights), retired when the evidence rules the gain out or after "
        f"{rules.shadow_max_days} days without a conclusion (ADR 0015, 0024)")])


def champion_moved_on(verdict: Decision, current: int) -> Decision:
    """A promotion that comes too late: the champion never moves backwards."""
    return Decision("refuse", [*verdict.reasons, f"champion already moved on to v{current}"])


def awaiting_approval(eng: Engagement, verdict: Decision, challenger: int) -> Decision:
    """The evidence would promote, and the engagement requires a person to approve first (issue 35)."""
    rules = eng.promotion.approval
    return Decision("approval", [*verdict.reasons, (
        f"v{challenger} waits for an approval by {', '.join(rules.approvers)} (Airflow: Required Actions, DAG "
        f"{eng.id}__approval); no answer within {rules.timeout_hours:g} h means rejected")], list(verdict.triggers))


def not_newer(challenger: int, champion: int) -> Decision:
    return Decision("refuse", [f"v{challenger} is not newer than champion v{champion}: retired"])


def shadow_verdict(
    eng: Engagement,
    *,
    challenger_version: int,
    champion_version: int,
    since: dt.date,
    day: dt.date,
    evidence: dict[str, Any] | None,
    unseen_nights: int,
    why_not_comparable: str | None = None,
) -> Decision:
    """Promote a challenger out of shadow, retire it, or wait (ADR 0015, 0024), on the evidence pooled from
    its gate's holdout and the labelled nights since (`unseen_nights` of them)."""
    rules = eng.promotion
    waited = (day - since).days
    head = f"challenger v{challenger_version} in shadow since {since} against champion v{champion_version}"
    if evidence is None:
        why = f"{head}: {rules.metric} cannot compare them yet ({why_not_comparable or 'no labelled rows'})"
        if waited >= rules.shadow_max_days:
            return Decision("refuse", [f"{why}; {waited} days after the gate (promotion.shadow_max_days "
                                       f"{rules.shadow_max_days}): retired, the champion stays"])
        return Decision("wait", [f"{why}: it stays in shadow"])
    verdict = judge_evidence(eng, challenger_version=challenger_version, champion_version=champion_version,
                             evidence=evidence, unseen_nights=unseen_nights, waited_days=waited)
    return Decision(verdict.action, [f"{head}; {verdict.reasons[0]}"])
