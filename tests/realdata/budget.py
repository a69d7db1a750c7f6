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
  nights, and the challengers a shadow period retired (ADR 0015).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

ALARMS = ("drift", "performance", "estimated_performance")
JUDGE_NIGHTS = 7


def measure(engagement_id: str, first: dt.date, stable: set[int], shift_night: int | None,
            judge_promotions: bool = True) -> dict[str, Any]:
    """Numbers for one engagement, from the stores STEWARD_HOME points at (night index = days since `first`)."""
    from steward import incidents
    from steward.audit import read_records
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
    if judge_promotions:
        out["promotions_judged"] = [_judge(paths, engagement_id, records, d) for d in sorted(promotions)]
    out["worse_promotions"] = [j["night"] for j in out["promotions_judged"] if j.get("worse")]
    out["series"] = [_night(d, records[d], d in candidates) for d in sorted(records)]
    out["served"] = _served(paths, engagement_id)
    out["retired_in_shadow"] = [(d.isoformat(), r["promotion"]["shadow"]["version"]) for d, r in sorted(records.items())
                                if (r.get("promotion") or {}).get("action") == "refuse" and "shadow" in r["promotion"]]
    return out


def _served(paths: Any, engagement_id: str) -> dict[str, Any]:
    """The realised metric of whichever model served each night, with the labels known at the end of the run."""
    from steward import labels

    known = [h for h in labels.history(paths, engagement_id) if h["realised_value"] is not None]
    values = [h["realised_value"] for h in known]
    return {"metric": known[0]["metric"] if known else None, "nights": len(values),
            "mean": round(sum(values) / len(values), 4) if values else None}


def _per_30(count: int, nights: int) -> float | None:
    return None if nights == 0 else round(count * 30 / nights, 2)


def _night(day: dt.date, record: dict[str, Any], trained: bool) -> dict[str, Any]:
    drift = record.get("drift") or {}
    return {"date": day.isoformat(), "drift_share": drift.get("drift_share"), "state": drift.get("state"),
            "dataset_drift": drift.get("dataset_drift"), "persistent": drift.get("persistent"),
            "reference_version": (drift.get("reference") or {}).get("model_version"),
            "candidate": trained, "promoted": bool((record.get("promotion") or {}).get("promoted")),
            "outcome": record["outcome"]}


def _judge(paths: Any, engagement_id: str, records: dict[dt.date, dict[str, Any]], night: dt.date) -> dict[str, Any]:
    """The promoted version against the one it replaced, on the labelled rows of the nights after."""
    from steward import outcomes, registry, training
    from steward.config import LOWER_IS_BETTER, load_engagement
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
    gain = before - now if eng.promotion.metric in LOWER_IS_BETTER else now - before
    return {**out, "gain": round(gain, 4), "worse": gain < 0}


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
    if detection:
        lines.append(f"| detection delay (shift on {detection['shift']}) | to the first alarm: "
                     f"{_fmt(detection['nights_to_alarm'])} nights; to a promoted model: "
                     f"{_fmt(detection['nights_to_promotion'])} nights |")
    lines.append(f"| promotions, each judged on the next {JUDGE_NIGHTS} nights' labels (worse: target 0) | "
                 f"{len(m['promotions'])}; worse: **{len(m['worse_promotions'])}**; {judged} |")
    retired = m.get("retired_in_shadow") or []
    lines.append(f"| challengers retired in shadow (ADR 0015) | {len(retired)}"
                 f"{': ' + ', '.join(f'v{v} on {d}' for d, v in retired) if retired else ''} |")
    served = m.get("served") or {}
    if served.get("nights"):
        lines.append(f"| realised {served['metric']} of the models that served | {served['mean']:.3f} mean over "
                     f"{served['nights']} labelled nights |")
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return "n/a" if value is None else str(value)


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
