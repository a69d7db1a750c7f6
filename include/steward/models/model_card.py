"""Model cards (Markdown + HTML) for every registered model version, with its fairness table and feature
importance (JSON + plot), written next to the night's run and logged to the version's MLflow run."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from steward.config import AdoptedSpec, Engagement
from steward.settings import StewardPaths

if TYPE_CHECKING:
    import pandas as pd


def _num(value: Any, digits: int = 4) -> str:
    """A metric for a table: 'n/a' when it was not computable (null), never 'nan'."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def _holdout_text(batches: list[str]) -> str:
    if batches:
        return (f"Out of time: the batches of {', '.join(batches)}, newer than every training row "
                "(`retraining.holdout: newest_nights`).")
    return "A hash-selected share of every batch of the window (rows of the same days as the training rows)."


def render_markdown(eng: Engagement, card: dict[str, Any]) -> str:
    """`card` holds: version, trained_for, reason, window, fingerprint, train_rows, holdout_rows,
    holdout_batches (empty: a sampled holdout), metrics,
    comparison (or None), fairness (or None), importance, importance_plot (file name)."""
    lines = [
        f"# Model card: {eng.registered_model_name} v{card['version']}",
        "",
        "## Intended use",
        f"- Client: **{eng.client}**, use case: **{eng.use_case}** (engagement `{eng.id}`)",
        f"- Problem: {eng.problem_type}; predicts `{eng.target}` per `{eng.id_column}`",
        f"- Owner: {eng.owner}; governance owners: {', '.join(eng.governance.owners)}",
        f"- Data region: {eng.governance.region}; retention {eng.governance.retention_days} days",
        "",
        *_provenance(eng),
        "## Training",
        f"- Estimator: `{eng.retraining.estimator.name}` with {eng.retraining.estimator.params.model_dump()}",
        f"- Trained for night {card['trained_for']}; reason: {card['reason']}",
        f"- Training data: {card['train_rows']} rows; window: {', '.join(card['window']) or 'reference data'}",
        f"- Data fingerprint (sha256): `{card['fingerprint']}`",
        "",
        f"## Metrics on the holdout ({card['holdout_rows']} rows)",
        "",
        _holdout_text(card.get("holdout_batches") or []),
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {k} | {v:.4f} |" for k, v in card["metrics"].items()),
        "",
        "## Comparison with the champion it would replace",
    ]
    cmp = card.get("comparison")
    if cmp:
        lines += [f"Same holdout, {cmp['metric']}: this version **{_num(cmp['challenger'])}**, champion "
                  f"v{cmp['champion_version']} **{_num(cmp['champion'])}**. The promotion decision is recorded in the "
                  "audit record of the night."]
    else:
        lines += ["No champion existed: this version was adopted as handed over; the metrics above are on the "
                  "labelled reference data." if card["reason"].startswith("adopted") else
                  "No champion existed: this version was bootstrapped from the reference data."]
    lines += ["", "## Fairness by group"]
    fairness = card.get("fairness")
    if fairness:
        for attribute, data in fairness.items():
            metrics = list(next(iter(data["by_group"].values())).keys())
            lines += ["", f"Sensitive attribute `{attribute}` (max gap: "
                      + ", ".join(f"{m} {_num(v, 3)}" for m, v in data["gap"].items()) + ")", "",
                      "| group | rows | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
            for group, values in data["by_group"].items():
                lines.append(f"| {group} | {data['count'].get(group, '')} | "
                             + " | ".join(_num(values[m], 3) for m in metrics) + " |")
        policy = eng.governance.fairness
        if policy:
            lines += ["", f"Policy: promotion is refused when the {policy.metric} gap exceeds {policy.max_gap}."]
    else:
        lines += ["No sensitive attributes are declared for this engagement."]
    lines += ["", "## Top features (permutation importance on the holdout)", "",
              "| feature | importance | std |", "|---|---|---|"]
    lines += [f"| {r['feature']} | {_num(r['importance_mean'])} | {_num(r['importance_std'])} |"
              for r in card["importance"]["features"]]
    if card["importance"].get("not_computable"):
        lines += ["", f"Not computable on this holdout: {card['importance']['not_computable']}."]
    if card.get("importance_plot"):
        lines += ["", f"![feature importance]({card['importance_plot']})"]
    lines += [
        "",
        "## Known limitations",
        "- Trained on a short recent window: it follows the latest behaviour and may forget rare older patterns.",
        "- The holdout is the best available stand-in for the nights to come; labels of later nights judge it.",
        f"- Only the features listed in the engagement file are used: {', '.join(eng.features)}.",
        "",
        "## Decision log (from the engagement file)",
        "",
        eng.governance.decision_log.strip() or "_none_",
        "",
    ]
    return "\n".join(lines)


def _provenance(eng: Engagement) -> list[str]:
    """For an adopted model (ADR 0032): where champion v1 came from, and how later versions relate to it."""
    spec = eng.retraining.estimator
    if not isinstance(spec, AdoptedSpec):
        return []
    return ["## Provenance (adopted model)",
            f"- Adopted from `{spec.source}` by {spec.adopted_by} on {spec.adopted_on} (`steward onboard --model`)",
            f"- File sha256 at adoption: `{spec.sha256}`; loaded with skops, reviewed types only",
            f"- The adopted {spec.kind} is version 1 as handed over (MLflow alias `adopted`); every later version is "
            "a fresh clone of it (`sklearn.base.clone`: same steps and parameters) fitted on its training window",
            ""]


def render_html(markdown_text: str, title: str) -> str:
    import html

    import mistune

    # escape=True: the card quotes client data (fairness group values) and YAML (the decision log); raw HTML in
    # either is shown as text, never run (mistune.html passes it through)
    body = mistune.create_markdown(escape=True, plugins=["strikethrough", "footnotes", "table"])(markdown_text)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%}</style></head><body>"
            f"{body}</body></html>\n")


def document_version(
    eng: Engagement,
    paths: StewardPaths,
    c: Any,
    ref: Any,
    model: Any,
    holdout: pd.DataFrame,
    *,
    day: dt.date,
    reason: str,
    window: list[str],
    fingerprint: str,
    train_rows: int,
    comparison: dict[str, Any] | None,
    holdout_batches: list[str] | None = None,
    log_to_mlflow: bool = True,
) -> dict[str, Any]:
    """Model card (Markdown + HTML), fairness table and feature importance (JSON + plot) for a version.

    Written under `<artifacts>/<id>/<date>/model_v<N>/` and logged to the version's MLflow run.
    """
    from steward.models import explain, fairness, registry, training
    from steward.sources import batches

    out = paths.run_dir(eng.id, day.isoformat()) / f"model_v{ref.version}"
    out.mkdir(parents=True, exist_ok=True)
    fair = fairness.group_metrics(eng, training.predict(eng, model, holdout))
    importance = explain.permutation_importance(eng, model, holdout)
    plot = explain.plot(importance, f"{eng.registered_model_name} v{ref.version}", out / "feature_importance.png")
    batches.atomic_write_json(out / "feature_importance.json", importance)
    batches.atomic_write_json(out / "fairness.json", fair)
    card = {"version": ref.version, "trained_for": day.isoformat(), "reason": reason, "window": window,
            "fingerprint": fingerprint, "train_rows": train_rows, "holdout_rows": len(holdout),
            "holdout_batches": holdout_batches or [],
            "metrics": training.holdout_metrics(eng, model, holdout), "comparison": comparison,
            "fairness": fair, "importance": importance, "importance_plot": plot.name}
    text = render_markdown(eng, card)
    batches.atomic_write_bytes(out / "model_card.md", text.encode())
    title = f"{eng.registered_model_name} v{ref.version}"
    batches.atomic_write_bytes(out / "model_card.html", render_html(text, title).encode())
    files = [out / n for n in ("model_card.md", "model_card.html", "feature_importance.json",
                               "feature_importance.png", "fairness.json")]
    if log_to_mlflow and ref.run_id:
        registry.log_files(c, ref.run_id, files)
    return {"fairness": fair, "files": [str(f) for f in files]}
