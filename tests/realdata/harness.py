"""Run a real-data scenario end to end and say what happened: onboarding with `steward onboard` (no hand
edits), every night through the real DAG, then one table read back from the audit records.

Shared by the CI suite (tests/realdata/test_realdata.py, a few nights per scenario) and the full run
(scripts/realdata.py, every night, tables into docs/real-data.md).
"""

from __future__ import annotations

import json
import os
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from tests.realdata.scenarios import Scenario


def environment(workspace: Path) -> dict[str, str]:
    """The scenario's own stores: nothing is shared with another scenario or the demo."""
    return {"STEWARD_HOME": str(workspace / "home"), "STEWARD_DATA_ROOT": str(workspace / "data"),
            "STEWARD_ENGAGEMENTS_DIR": str(workspace / "engagements")}


def strict_json(path: Path) -> Any:
    """Parse a JSON file, refusing NaN and Infinity (json accepts them by default)."""
    def refuse(token: str) -> Any:
        raise ValueError(f"{path}: non-finite number {token} in JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def _reason_kind(text: str) -> str:
    """A reason without its numbers, so the same cause on different nights counts once."""
    text = re.sub(r"\([^)]*\)", "", text)
    return re.sub(r"\s+", " ", re.sub(r"-?\d+(\.\d+)?", "N", text)).strip()


def summarize(scenario: Scenario, home: Path, plan: dict[str, Any], nights: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario's numbers: nights run/failed, quarantined vs expected, what was not computable and why."""
    records = {r["logical_date"]: r for r in
               (strict_json(p) for p in sorted((home / "artifacts" / scenario.id).glob("*/audit.json")))}
    failed = [n["date"] for n in nights if not str(n["state"]).endswith("success")]
    quarantined = sorted(d for d, r in records.items() if r["outcome"] == "quarantine")
    expected = sorted(plan["expected_quarantine"])
    not_computable: Counter[str] = Counter()
    label_days = one_class_days = 0
    flagged: list[str] = []
    warnings = outside_classes = 0
    for day, record in records.items():
        if record.get("non_finite_replaced") or _has_flag(record):
            flagged.append(day)
        warnings += (record.get("quality") or {}).get("warnings") or 0
        labels = record.get("labels") or {}
        outside_classes += ((labels.get("outside_classes") or {}).get("rows") or 0)
        for p in labels.get("performance") or []:
            label_days += 1
            if p.get("not_computable"):
                not_computable[f"{p['metric']} (realised): {_reason_kind(p['not_computable'])}"] += 1
                one_class_days += "one class" in p["not_computable"]
        for metric, why in ((record.get("performance") or {}).get("not_computable") or {}).items():
            not_computable[f"{metric} (in batch): {_reason_kind(why)}"] += 1
        for feature, why in ((record.get("drift") or {}).get("features_not_computable") or {}).items():
            not_computable[f"drift of {feature}: {_reason_kind(why)}"] += 1
        for reason in (record.get("decision") or {}).get("reasons") or []:
            if reason.startswith("no candidate tonight"):
                not_computable[f"candidate: {_reason_kind(reason.removeprefix('no candidate tonight: '))}"] += 1
        gate = record.get("promotion") or {}
        for reason in gate.get("reasons") or []:
            if "not computable" in reason:
                not_computable[f"gate: {_reason_kind(reason)}"] += 1
    seconds = [n["seconds"] for n in nights]
    outcomes = Counter(r["outcome"] for r in records.values())
    return {
        "scenario": scenario.id, "title": scenario.title,
        "nights": len(nights), "failed": failed, "quarantined": quarantined, "expected_quarantine": expected,
        "unexpected_quarantine": sorted(set(quarantined) - set(expected)),
        "missed_quarantine": sorted(set(expected) - set(quarantined)),
        "quarantine_reasons": {d: sorted({c["expectation"] for c in records[d]["quality"]["checks"]
                                          if not c["success"] and c.get("severity", "quarantine") == "quarantine"})
                               for d in quarantined},
        "rows": {"min": min(plan["rows"].values()), "median": int(statistics.median(plan["rows"].values())),
                 "max": max(plan["rows"].values()), "reference": plan["reference_rows"]},
        "outcomes": dict(outcomes), "quality_warnings": warnings, "label_outside_classes": outside_classes,
        "label_days": label_days, "one_class_label_days": one_class_days,
        "not_computable": dict(not_computable.most_common()),
        "records_with_non_finite": flagged,
        "seconds_per_night": {"mean": round(statistics.fmean(seconds), 2), "max": round(max(seconds), 2)},
    }


def _has_flag(value: Any) -> bool:
    if isinstance(value, dict):
        return "non_finite_replaced" in value or any(_has_flag(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_flag(v) for v in value)
    return False


def markdown(summary: dict[str, Any]) -> str:
    s = summary
    nc = "; ".join(f"{k}: {v}" for k, v in s["not_computable"].items()) or "none"
    quarantine = ", ".join(f"{d} ({', '.join(s['quarantine_reasons'][d])})" for d in s["quarantined"]) or "none"
    rows = s["rows"]
    lines = [
        f"### {s['scenario']}: {s['title']}",
        "",
        "| | |",
        "|---|---|",
        f"| nights run | {s['nights']} (batches of {rows['min']} to {rows['max']} rows, median {rows['median']}; "
        f"reference {rows['reference']} rows) |",
        f"| nights failed | **{len(s['failed'])}**{(': ' + ', '.join(s['failed'])) if s['failed'] else ''} |",
        f"| nights quarantined | {len(s['quarantined'])}: {quarantine} |",
        f"| nights that should be quarantined | {len(s['expected_quarantine'])}: "
        f"{', '.join(s['expected_quarantine']) or 'none'}"
        + (f"; **unexpected: {', '.join(s['unexpected_quarantine'])}**" if s["unexpected_quarantine"] else "")
        + (f"; **missed: {', '.join(s['missed_quarantine'])}**" if s["missed_quarantine"] else "") + " |",
        f"| outcomes | {', '.join(f'{k} {v}' for k, v in sorted(s['outcomes'].items()))} |",
        f"| quality warnings (batch proceeded) | {s['quality_warnings']} |",
        f"| label days joined | {s['label_days']} ({s['one_class_label_days']} with one class only); label values "
        f"outside the classes set aside: {s['label_outside_classes']} |",
        f"| not computable, and why (count) | {nc} |",
        f"| NaN/inf replaced anywhere | {len(s['records_with_non_finite'])} records |",
        f"| seconds per night | {s['seconds_per_night']['mean']} mean, {s['seconds_per_night']['max']} max |",
    ]
    return "\n".join(lines) + "\n"


def env_scope(workspace: Path):
    """A context manager that points steward at the scenario's stores (in-process runs)."""
    import contextlib

    @contextlib.contextmanager
    def scope():
        saved = {k: os.environ.get(k) for k in environment(workspace)}
        os.environ.update(environment(workspace))
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    return scope()
