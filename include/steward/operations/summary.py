"""The per-night summary table, read from the audit records (never recomputed)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from steward.governance.audit import read_records
from steward.settings import StewardPaths


def rows(paths: StewardPaths, engagement_id: str) -> list[dict[str, Any]]:
    out = []
    for rec in read_records(paths, engagement_id):
        quality = rec.get("quality")
        failed = [c for c in (quality or {}).get("checks", []) if not c["success"]]
        perf = rec.get("performance") or {}
        metric_items = sorted((perf.get("metrics") or {}).items())
        drift = rec.get("drift")
        gate = rec.get("promotion")
        out.append(
            {
                "date": rec["logical_date"],
                "rows": (rec["data"].get("profile") or {}).get("rows"),
                "quality": "-" if quality is None else ("pass" if quality["success"] else f"FAIL ({len(failed)})"),
                "drift_share": None if drift is None else drift["drift_share"],
                "dataset_drift": bool(drift and drift["dataset_drift"]),
                "drift_state": (drift or {}).get("state"),
                "persistence": (drift or {}).get("persistence"),
                "reference": (drift or {}).get("reference"),
                "deferred": (rec.get("decision") or {}).get("deferred", []),
                "no_candidate": [r.split("no candidate tonight: ", 1)[1] for r in
                                 (rec.get("decision") or {}).get("reasons", []) if "no candidate tonight: " in r],
                "performance": dict(metric_items),
                "decision": rec["outcome"],
                "triggers": (rec.get("decision") or {}).get("triggers", []),
                "gate": None if gate is None else gate["reasons"][0],
                "champion_before": rec["models"]["champion_before"],
                "champion_after": rec["models"]["champion_after"],
                "challenger": ((rec.get("retraining") or {}).get("challenger") or {}).get("version"),
                "realised": [(p["prediction_date"], p["realised_value"])
                             for p in (rec.get("labels") or {}).get("performance") or []],
                "estimated": (((rec.get("predictions") or {}).get("estimate")) or {}).get("value"),
                "rollback": ((rec.get("outcomes") or {}).get("response") or {}).get("rollback"),
                "shadow": shadow_cell(gate),
            }
        )
    return out


def table(paths: StewardPaths, engagement_id: str, scenarios: dict[str, str] | None = None) -> Table:
    from steward.config import load_engagement
    from steward.settings import engagements_dir

    metric = load_engagement(engagements_dir() / f"{engagement_id}.yaml").performance.metric
    t = Table(title=f"{engagement_id}: nightly summary (from audit records)", header_style="bold")
    for col in ("night", "scenario", "rows", "quality", "drift share", "vs", metric, "est.", "decision", "why",
                "champion"):
        t.add_column(col, justify="right" if col in {"rows", "drift share", metric, "est."} else "left", no_wrap=True)
    for r in rows(paths, engagement_id):
        value = r["performance"].get(metric)
        drift = drift_cell(r)
        decision = r["decision"]
        why = "+".join(r["triggers"]) + (f" -> v{r['challenger']}" if r["challenger"] else "")
        if r["deferred"] and r["no_candidate"]:  # a trigger fired, no candidate: say why in a few words
            why = "+".join(r["deferred"]) + ": " + r["no_candidate"][0].split(":")[0]
        if r["shadow"]:
            why = r["shadow"] if r["decision"] != "retrain" else f"{why}; {r['shadow']}"
        if r["decision"] == "quarantine":
            why = r["quality"]
        if r["rollback"]:
            why = f"rollback v{r['rollback']['from_version']} -> v{r['rollback']['to_version']}" + (f"; {why}" if why else "")
        shown = "-" if value is None else f"{value:.3f}"
        if value is None and r["realised"]:  # labels arrive later: the realised value that landed tonight
            shown = ", ".join(f"{v:.3f} ({d[5:]})" for d, v in r["realised"] if v is not None) or "-"
        before, after = r["champion_before"], r["champion_after"]
        champion = "-" if after is None else (f"v{before} -> v{after}" if before != after else f"v{after}")
        style = {"quarantine": "red", "promote": "green", "retrain": "yellow", "failed": "bold red"}.get(r["decision"])
        t.add_row(
            r["date"],
            (scenarios or {}).get(r["date"], ""),
            "-" if r["rows"] is None else str(r["rows"]),
            r["quality"],
            drift,
            reference_cell(r["reference"]),
            shown,
            "-" if r["estimated"] is None else f"{r['estimated']:.3f}",
            f"[{style}]{decision}[/]" if style else decision,
            why,
            champion,
        )
    return t


def shadow_cell(gate: dict[str, Any] | None) -> str:
    """"in shadow" on the gate night; "shadow v3: 412 rows pooled", "confirmed" or "retired" on the nights after."""
    if not gate:
        return ""
    if gate["action"] == "shadow":  # the gate passed tonight
        return "in shadow"
    shadow = gate.get("shadow")  # only judge_shadow's verdicts carry it
    if shadow is None:
        return ""
    pooled = shadow.get("pooled") or {}
    waiting = f"{pooled['rows']} rows pooled" if pooled else "waiting for labels"
    word = {"wait": waiting, "promote": "confirmed", "refuse": "retired",
            "approval": "confirmed, awaiting approval"}.get(gate["action"], gate["action"])
    return f"shadow v{shadow['version']}: {word}"


def drift_cell(r: dict[str, Any]) -> str:
    """0.67 DRIFT 2/3 (persistent), 0.50 drift 1/3 (not yet), "too few rows" (not enough data yet)."""
    if r["drift_state"] == "not_enough_data":
        return "too few rows"
    if r["drift_share"] is None:
        return "-"
    text = f"{r['drift_share']:.2f}"
    if r["dataset_drift"]:
        held = r["persistence"] or {}
        persistent = held.get("persistent", True)
        text += (" DRIFT" if persistent else " drift") + (f" {held['nights_drifted']}/{held['of_last']}" if held else "")
    return text


def reference_cell(reference: dict[str, Any] | None) -> str:
    """What drift was judged against: the champion's training data (vN) or the reference file."""
    if not reference:
        return "-"
    return f"v{reference['model_version']} data" if reference["kind"] == "champion_training_data" else "file"
