"""The monitoring budget, measured from what a run left behind (ADR 0012): audit records, incidents, the
model registry. Shared by scripts/realdata.py (real-data scenarios and the demo) and its tests.

- false alarms per 30 stable nights: drift, performance and estimated-performance incidents opened on a
  night known to be stable (target <= 1);
- model versions registered per 30 stable nights (target <= 2);
- detection delay on a known shift: nights from the shift to the first alarm, and to the first promotion;
- worse promotions: each promoted version and the version it replaced, scored on the same labelled rows
  of the (up to) 7 accepted nights after the promotion, with the labels known at the end of the run
  (target 0 nights on which the new champion scores worse);
- what a promotion rule is for: the realised metric of the models that served, mean over the labelled
  nights, and the challengers a shadow period retired (ADR 0015);
- after a known shift, what a retrain could have recovered at best: the engagement's own estimator trained on
  the champion's training rows plus the shifted nights' labelled rows, scored against the champion on
  nights it did not learn from (folds of whole nights). When even that does not beat the champion, "no
  promoted model" after the shift is the right answer, not a missed detection.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

ALARMS = ("drift", "performance", "estimated_performance")
JUDGE_NIGHTS = 7
RECOVERY_FOLDS = 5


def measure(engagement_id: str, first: dt.date, stable: set[int], shift_night: int | None,
            judge_promotions: bool = True, shift_end_night: int | None = None,
            planted: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Numbers for one engagement, from the stores STEWARD_HOME points at (night index = days since `first`);
    a shift lasts from `shift_night` to `shift_end_night` (None: to the end of the run); `planted`: the
    data-quality faults planted on the feed (issue 31)."""
    from steward.governance.audit import read_records
    from steward.operations import incidents
    from steward.settings import StewardPaths

    paths = StewardPaths.from_env()
    records = {dt.date.fromisoformat(r["logical_date"][:10]): r for r in read_records(paths, engagement_id)}
    index = {day: (day - first).days for day in records}
    opened = [(i["condition"], dt.date.fromisoformat(i["opened_on"])) for i in incidents.list_for(paths, engagement_id)
              if i["condition"] in ALARMS]
    stable_days = [d for d, i in index.items() if i in stable]
    candidates = [d for d, r in records.items()
                  if r.get("retraining") and not r["retraining"].get("reused_existing_version")]
    promotions = [d for d, r in records.items() if (r.get("promotion") or {}).get("promoted")]
    false_alarms = [(c, d.isoformat()) for c, d in opened if index.get(d, -1) in stable]
    stable_versions = [d for d in candidates if index[d] in stable]
    out: dict[str, Any] = {
        "engagement": engagement_id, "nights": len(records), "stable_nights": len(stable_days),
        "alarms": [(c, d.isoformat()) for c, d in opened],
        "false_alarms": false_alarms,
        "false_alarms_per_30_stable_nights": _per_30(len(false_alarms), len(stable_days)),
        "versions": len(candidates),
        "versions_on_stable_nights": len(stable_versions),
        "versions_per_30_stable_nights": _per_30(len(stable_versions), len(stable_days)),
        "promotions": [d.isoformat() for d in sorted(promotions)],
        "shift_night": shift_night,
        "detection": None,
        "promotions_judged": [],
    }
    if shift_night is not None:
        shift = first + dt.timedelta(days=shift_night)
        alarm = min((d for _, d in opened if d >= shift), default=None)
        promoted = min((d for d in promotions if d >= shift), default=None)
        out["detection"] = {"shift": shift.isoformat(),
                            "nights_to_alarm": None if alarm is None else (alarm - shift).days,
                            "nights_to_promotion": None if promoted is None else (promoted - shift).days}
        end = None if shift_end_night is None else first + dt.timedelta(days=shift_end_night)
        if end is not None:
            out["detection"]["shift_end"] = end.isoformat()
        if judge_promotions:
            out["recovery"] = recovery(paths, engagement_id, records, shift, end)
    if judge_promotions:
        out["promotions_judged"] = [_judge(paths, engagement_id, records, d) for d in sorted(promotions)]
    out["worse_promotions"] = [j["night"] for j in out["promotions_judged"] if j.get("worse")]
    out.update(quality_faults(paths, engagement_id, records, index, stable_days, planted or []))
    out["series"] = [_night(d, records[d], d in candidates) for d in sorted(records)]
    out["served"] = _served(paths, engagement_id)
    out["counterfactual"] = counterfactual(paths, engagement_id)
    out["targets"] = targets(out)
    out["retired_in_shadow"] = [(d.isoformat(), r["promotion"]["shadow"]["version"]) for d, r in sorted(records.items())
                                if (r.get("promotion") or {}).get("action") == "refuse" and "shadow" in r["promotion"]]
    return out


def _served(paths: Any, engagement_id: str) -> dict[str, Any]:
    """The realised metric of whichever model served each night, with the labels known at the end of the run."""
    from steward.sources import labels

    known = [h for h in labels.history(paths, engagement_id) if h["realised_value"] is not None]
    values = [h["realised_value"] for h in known]
    return {"metric": known[0]["metric"] if known else None, "nights": len(values),
            "mean": round(sum(values) / len(values), 4) if values else None}


def counterfactual(paths: Any, engagement_id: str) -> dict[str, Any]:
    """The served models against never retraining and the periodic refit, mean per-date metric over the same
    labelled dates (ADR 0025), with the labels known at the end of the run."""
    from steward.models import baselines

    return baselines.summarize(baselines.history(paths, engagement_id))


FAULT_DELAY_TARGET = 3  # nights from a planted fault's first night to its first flag (issue 31)


def quality_faults(paths: Any, engagement_id: str, records: dict[dt.date, dict[str, Any]], index: dict[dt.date, int],
                   stable_days: list[dt.date], planted: list[dict[str, Any]]) -> dict[str, Any]:
    """Data-quality alarms (ADR 0027): false ones on stable nights (an incident opened per column), and for each
    planted fault the night it is first flagged, by a data-quality alarm or a quarantine naming its column."""
    from steward.operations import incidents

    opened = [(i["subject"], dt.date.fromisoformat(i["opened_on"])) for i in incidents.list_for(paths, engagement_id)
              if i["condition"] == "quality_drift"]
    false = [(c, d.isoformat()) for c, d in opened if d in set(stable_days)]
    faults = []
    for fault in planted:
        found: dict[str, Any] = {"flagged": None, "alarm": None}
        for day in sorted(records):
            if index[day] < fault["first_night"]:
                continue
            for level, named in (("flagged", _named_tonight(records[day])),
                                 ("alarm", _named_tonight(records[day], alarms_only=True))):
                hit = sorted(set(fault["columns"]) & set(named))
                if hit and found[level] is None:
                    found[level] = {"night": day.isoformat(), "delay": index[day] - fault["first_night"],
                                    "columns": hit, "by": sorted({named[c] for c in hit})}
            if found["alarm"] is not None:
                break
        faults.append({**fault, "first": (min(records) + dt.timedelta(days=fault["first_night"])).isoformat(),
                       **found})
    return {"quality_alarms": [(c, d.isoformat()) for c, d in opened], "quality_false_alarms": false,
            "quality_false_alarms_per_30_stable_nights": _per_30(len(false), len(stable_days)),
            "planted_faults": faults}


def _named_tonight(record: dict[str, Any], alarms_only: bool = False) -> dict[str, str]:
    """The columns a night's record flags, and by what: a data-quality rate flagged (or, with `alarms_only`,
    alarming: flagged on 2 of the last 3 nights), or a quarantine naming them."""
    judged = record.get("quality_drift") or {}
    out = {c: "data-quality alarm" for c in judged.get("alarm_columns") or []}
    if not alarms_only:
        out.update({c: "data-quality flag" for c in judged.get("flagged_columns") or [] if c not in out})
    if record["outcome"] == "quarantine":
        for check in ((record.get("quality") or {}).get("checks") or []):
            if not check["success"] and check.get("column") and check.get("severity") == "quarantine":
                out.setdefault(check["column"], "quarantine")
    return out


def _se(cf: dict[str, Any]) -> str:
    se = cf.get("vs_periodic_refit_se")
    return "" if se is None else f" (standard error of the paired per-date difference {se:.3f})"


SERVED_TOLERANCE = 0.005  # served must reach the better baseline within this (issue 30)


def targets(m: dict[str, Any]) -> dict[str, Any]:
    """The issue-30 targets, each with whether it holds (None: nothing to judge)."""
    from steward.config import lower_is_better

    cf = m.get("counterfactual") or {}
    served_ok = None
    if cf.get("served") is not None:
        lower = lower_is_better(cf["metric"])
        best = min(cf["never_retrained"], cf["periodic_refit"]) if lower else \
            max(cf["never_retrained"], cf["periodic_refit"])
        tolerance = SERVED_TOLERANCE * (abs(best) if lower else 1)  # error metrics: 0.5% of the error
        served_ok = cf["served"] <= best + tolerance if lower else cf["served"] >= best - tolerance
    versions = m.get("versions_per_30_stable_nights")
    quality = m.get("quality_false_alarms_per_30_stable_nights")
    faults = m.get("planted_faults") or []
    return {"served_vs_better_baseline": served_ok, "worse_promotions": not m.get("worse_promotions"),
            "versions_per_30_stable_nights": None if versions is None else versions <= 2,
            "quality_false_alarms_per_30_stable_nights": None if quality is None else quality <= 1,
            "planted_faults_flagged_within_3_nights": None if not faults else all(
                f["flagged"] is not None and f["flagged"]["delay"] <= FAULT_DELAY_TARGET for f in faults)}


def _per_30(count: int, nights: int) -> float | None:
    return None if nights == 0 else round(count * 30 / nights, 2)


def _night(day: dt.date, record: dict[str, Any], trained: bool) -> dict[str, Any]:
    drift = record.get("drift") or {}
    return {"date": day.isoformat(), "drift_share": drift.get("drift_share"), "state": drift.get("state"),
            "dataset_drift": drift.get("dataset_drift"), "persistent": drift.get("persistent"),
            "reference_version": (drift.get("reference") or {}).get("model_version"),
            "candidate": trained, "promoted": bool((record.get("promotion") or {}).get("promoted")),
            "quality_drift": (record.get("quality_drift") or {}).get("state"),
            "outcome": record["outcome"]}


def _judge(paths: Any, engagement_id: str, records: dict[dt.date, dict[str, Any]], night: dt.date) -> dict[str, Any]:
    """The promoted version against the one it replaced, on the labelled rows of the nights after."""
    from steward.config import improvement, load_engagement
    from steward.models import registry, training
    from steward.monitoring import outcomes
    from steward.settings import engagements_dir

    eng = load_engagement(engagements_dir() / f"{engagement_id}.yaml")
    gate = records[night]["promotion"]
    old, new = gate["champion_before"], gate["champion_after"]
    after = [d for d in sorted(records) if d > night and records[d]["outcome"] != "quarantine"][:JUDGE_NIGHTS]
    last = max(records)
    frame = outcomes.window_frame(eng, paths, last, [d.isoformat() for d in after])
    out: dict[str, Any] = {"night": night.isoformat(), "old": old, "new": new, "rows": int(len(frame)),
                           "metric": eng.promotion.metric}
    if frame.empty:
        return {**out, "note": "no labelled rows after the promotion yet"}
    c = registry.client(paths)
    scores = {k: training.score(eng, registry.load(c, registry.get_version(c, eng, v)), frame, eng.promotion.metric)
              for k, v in (("old_score", old), ("new_score", new))}
    out.update(scores)
    if None in scores.values():
        return {**out, "note": "metric not computable on these rows"}
    before, now = scores["old_score"], scores["new_score"]
    gain = improvement(eng.promotion.metric, now, before)
    return {**out, "gain": round(gain, 4), "worse": gain < 0}


def recovery(paths: Any, engagement_id: str, records: dict[dt.date, dict[str, Any]], shift: dt.date,
             end: dt.date | None = None) -> dict[str, Any]:
    """The best a retrain could have done during the shift (`shift` to `end`, or to the last night), with the
    labels known at the end of the run.

    The shifted nights are cut into RECOVERY_FOLDS blocks of whole nights; for each block, a candidate is
    trained by the engagement's own estimator on the champion's training rows plus the other blocks (and one
    on the other blocks only), and both are scored against the champion on the block. Training on nights
    after the judged block is generous to the candidate (it is a ceiling, not a replay of the gate)."""
    from steward.config import load_engagement
    from steward.models import registry, training
    from steward.monitoring import outcomes, reference
    from steward.settings import engagements_dir

    eng = load_engagement(engagements_dir() / f"{engagement_id}.yaml")
    c = registry.client(paths)
    champion = registry.champion_for_night(c, eng, shift.isoformat())
    if champion is None:
        return {"note": "no champion on the night of the shift"}
    kept = training.labelled(eng, reference.read(eng, reference.for_champion(eng, paths, champion.to_dict())))
    last = max(records)
    nights = [d for d in sorted(records) if shift <= d <= (end or last) and records[d]["outcome"] != "quarantine"]
    frames = {d: outcomes.window_frame(eng, paths, last, [d.isoformat()]) for d in nights}
    nights = [d for d in nights if not frames[d].empty]
    out: dict[str, Any] = {"metric": eng.promotion.metric, "champion_version": champion.version, "champion_rows": int(len(kept)),
                           "nights": len(nights), "rows": int(sum(len(frames[d]) for d in nights))}
    if len(nights) < RECOVERY_FOLDS:
        return {**out, "note": f"{len(nights)} labelled nights after the shift: too few to judge"}
    return {**out, **retrain_ceiling(eng, registry.load(c, champion), kept, [frames[d] for d in nights])}


def retrain_ceiling(eng: Any, champion: Any, kept: Any, nights: list[Any]) -> dict[str, Any]:
    """The champion against the engagement's estimator retrained with (and without) its training rows `kept`,
    on RECOVERY_FOLDS interleaved blocks of the labelled `nights` (each block judged by models that did not
    learn from it); mean scores and the best gain of a retrain (positive: a retrain could have recovered).
    A judged row identical to a row learnt from (every feature and the label) is left out: resampled feeds
    repeat rows, and a forest that memorised them would score a recovery that new applicants never see."""
    import pandas as pd

    from steward.config import improvement, lower_is_better
    from steward.models import training

    metric = eng.promotion.metric
    blocks = [list(range(i, len(nights), RECOVERY_FOLDS)) for i in range(RECOVERY_FOLDS)]
    scores: dict[str, list[float]] = {"champion": [], "champion_data_and_shifted": [], "shifted_only": []}
    judged_rows = 0
    for block in blocks:
        judged = pd.concat([nights[i] for i in block], ignore_index=True)
        learnt = pd.concat([f for i, f in enumerate(nights) if i not in block], ignore_index=True)
        judged = judged[~_row_keys(eng, judged).isin(set(_row_keys(eng, pd.concat([kept, learnt]))))]
        judged_rows += len(judged)
        for name, fitted in (("champion", champion),
                             ("champion_data_and_shifted", training.train(eng, pd.concat([kept, learnt],
                                                                                        ignore_index=True))),
                             ("shifted_only", training.train(eng, learnt))):
            value = training.score(eng, fitted, judged, metric)
            if value is not None:
                scores[name].append(value)
    means = {k: round(sum(v) / len(v), 4) if v else None for k, v in scores.items()}
    retrained = [v for k, v in means.items() if k != "champion" and v is not None]
    gain = None
    if retrained and means["champion"] is not None:
        best = min(retrained) if lower_is_better(metric) else max(retrained)
        gain = round(improvement(metric, best, means["champion"]), 4)
    fold_gains = [round(improvement(metric, r, c), 4) for c, r in
                  zip(scores["champion"], scores["champion_data_and_shifted"], strict=False)]
    return {**means, "best_gain": gain, "folds": RECOVERY_FOLDS, "judged_rows": judged_rows,
            "fold_gains": fold_gains}


def _row_keys(eng: Any, frame: Any) -> Any:
    columns = [*eng.features, eng.target]
    return frame[columns].astype(str).agg("|".join, axis=1)


def markdown(m: dict[str, Any]) -> str:
    judged = "; ".join(
        f"{j['night']} v{j['old']}->v{j['new']}: "
        + (f"{j['metric']} gain {j['gain']:+.3f} on {j['rows']} rows" if "gain" in j else j.get("note", ""))
        for j in m["promotions_judged"]) or "none"
    detection = m["detection"]
    lines = [
        "| monitoring budget | |",
        "|---|---|",
        f"| stable nights | {m['stable_nights']} of {m['nights']} |",
        f"| false alarms per 30 stable nights (target <= 1) | **{_fmt(m['false_alarms_per_30_stable_nights'])}** "
        f"({len(m['false_alarms'])}: {', '.join(f'{c} {d}' for c, d in m['false_alarms']) or 'none'}) |",
        f"| model versions per 30 stable nights (target <= 2) | **{_fmt(m['versions_per_30_stable_nights'])}** "
        f"({m['versions_on_stable_nights']} on stable nights; {m['versions']} in all) |",
        f"| alarms (all nights) | {len(m['alarms'])}: "
        f"{', '.join(f'{c} {d}' for c, d in m['alarms'][:8]) or 'none'}{' ...' if len(m['alarms']) > 8 else ''} |",
    ]
    if "quality_alarms" in m:
        false = m["quality_false_alarms"]
        lines.append(f"| data-quality alarms per 30 stable nights (target <= 1; ADR 0027) | "
                     f"**{_fmt(m['quality_false_alarms_per_30_stable_nights'])}** ({len(false)}: "
                     f"{', '.join(f'{c} {d}' for c, d in false[:6]) or 'none'}); in all "
                     f"{len(m['quality_alarms'])}: "
                     f"{', '.join(f'{c} {d}' for c, d in m['quality_alarms'][:6]) or 'none'}"
                     f"{' ...' if len(m['quality_alarms']) > 6 else ''} |")
    for f in m.get("planted_faults") or []:
        hit, alarm = f["flagged"], f.get("alarm")
        found = (f"flagged on {hit['night']} by {', '.join(hit['by'])} naming {', '.join(hit['columns'])}: "
                 f"**{hit['delay']} night(s)** (target <= {FAULT_DELAY_TARGET}); alarm (incident): "
                 + (f"{alarm['delay']} night(s)" if alarm else "none")) if hit else "**never flagged**"
        lines.append(f"| planted fault `{f['kind']}` on {', '.join(f['columns'])}, nights {f['first']} + "
                     f"{f['last_night'] - f['first_night']} | {found} |")
    if detection:
        until = f" to {detection['shift_end']}, then the old concept again" if detection.get("shift_end") else ""
        lines.append(f"| detection delay (shift on {detection['shift']}{until}) | to the first alarm: "
                     f"{_fmt(detection['nights_to_alarm'])} nights; to a promoted model: "
                     f"{_fmt(detection['nights_to_promotion'])} nights |")
    rec = m.get("recovery")
    if rec and "best_gain" in rec:
        spread = ", ".join(f"{g:+.3f}" for g in rec["fold_gains"])
        lines.append(
            f"| what a retrain could recover during the shift ({rec['folds']} folds of whole nights; "
            f"{rec['judged_rows']} of {rec['rows']} labelled rows judged, repeats of a learnt row left out) | "
            f"{rec['metric']}: champion v{rec['champion_version']} {_num(rec['champion'])}; retrained on its "
            f"{rec['champion_rows']} rows + the shifted nights {_num(rec['champion_data_and_shifted'])} "
            f"(per fold {spread}); on the shifted nights only {_num(rec['shifted_only'])}: "
            f"best gain **{rec['best_gain']:+.3f}** |")
    elif rec:
        lines.append(f"| what a retrain could recover during the shift | {rec['note']} |")
    lines.append(f"| promotions, each judged on the next {JUDGE_NIGHTS} nights' labels (worse: target 0) | "
                 f"{len(m['promotions'])}; worse: **{len(m['worse_promotions'])}**; {judged} |")
    retired = m.get("retired_in_shadow") or []
    lines.append(f"| challengers retired in shadow (ADR 0015) | {len(retired)}"
                 f"{': ' + ', '.join(f'v{v} on {d}' for d, v in retired) if retired else ''} |")
    cf = m.get("counterfactual") or {}
    if cf.get("dates"):
        money = ""
        if cf.get("value_added_vs_never_retrained") is not None:
            money = (f"; net value {cf['served_net']:,.0f} vs {cf['never_retrained_net']:,.0f} never retrained vs "
                     f"{cf['periodic_refit_net']:,.0f} periodic refit {cf['currency'] or ''}")
        held = (m.get("targets") or {}).get("served_vs_better_baseline")
        lines.append(f"| realised {cf['metric']} per labelled date, same rows (ADR 0025): served / never retrained / "
                     f"refit every 7 nights, no gate | **{cf['served']:.3f}** / {cf['never_retrained']:.3f} / "
                     f"{cf['periodic_refit']:.3f} over {cf['dates']} dates ({cf['labelled_rows']} rows); added vs never "
                     f"retrained {cf['added_vs_never_retrained']:+.3f}, vs the refit {cf['vs_periodic_refit']:+.3f}{_se(cf)}"
                     f"{money}; served >= the better baseline - 0.005: **{_verdict(held)}** |")
    served = m.get("served") or {}
    if served.get("nights"):
        lines.append(f"| realised {served['metric']} of the models that served | {served['mean']:.3f} mean over "
                     f"{served['nights']} labelled nights |")
    return "\n".join(lines) + "\n"


def _verdict(held: bool | None) -> str:
    return "n/a" if held is None else ("yes" if held else "NO")


def _fmt(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def plot(m: dict[str, Any], title: str, out: Path) -> Path:
    """Drift share per night (alarms, persistence, not enough data), candidates, promotions, the shift."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = m["series"]
    x = list(range(len(series)))
    fig, ax = plt.subplots(figsize=(10, 3.2))
    judged = [(i, s["drift_share"]) for i, s in zip(x, series, strict=True) if s["state"] == "judged"]
    ax.plot([i for i, _ in judged], [v for _, v in judged], color="#4c72b0", lw=1, label="share of drifted features")
    persistent = [(i, s["drift_share"]) for i, s in zip(x, series, strict=True) if s["persistent"]]
    ax.scatter([i for i, _ in persistent], [v for _, v in persistent], color="#c44e52", zorder=3, s=18,
               label="persistent drift (alarm)")
    waiting = [i for i, s in zip(x, series, strict=True) if s["state"] == "not_enough_data"]
    ax.scatter(waiting, [0] * len(waiting), marker="|", color="grey", label="not enough data yet")
    for i, s in zip(x, series, strict=True):
        if s["candidate"]:
            ax.axvline(i, color="#dd8452", lw=0.8, ls=":")
        if s["promoted"]:
            ax.axvline(i, color="#55a868", lw=1.6)
    for f in m.get("planted_faults") or []:
        ax.axvspan(f["first_night"] - 0.5, f["last_night"] + 0.5, color="#8172b3", alpha=0.12, lw=0)
        ax.text(f["first_night"], 0.97, f["kind"].replace("_", " "), fontsize=6, color="#5a4a9a", va="top")
    flagged = [i for i, s in zip(x, series, strict=True) if s.get("quality_drift") == "flagged"]
    alarmed = [i for i, s in zip(x, series, strict=True) if s.get("quality_drift") == "alarm"]
    ax.scatter(flagged, [0.9] * len(flagged), marker="v", color="#b8a9e3", s=16, label="data-quality rate flagged")
    ax.scatter(alarmed, [0.9] * len(alarmed), marker="v", color="#5a4a9a", s=22, label="data-quality alarm")
    if m.get("detection"):
        shift = dt.date.fromisoformat(m["detection"]["shift"])
        first = dt.date.fromisoformat(series[0]["date"])
        ax.axvline((shift - first).days, color="#c44e52", ls="--", lw=1.2, label="known shift")
    ax.plot([], [], color="#dd8452", ls=":", label="candidate trained")
    ax.plot([], [], color="#55a868", lw=1.6, label="promotion")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel(f"night (from {series[0]['date']})")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", ncol=3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
