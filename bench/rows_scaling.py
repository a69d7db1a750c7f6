"""Validation and drift at 10k, 100k and 1M rows x 30 features: wall time, peak memory, verdicts.

usage: .venv/bin/python bench/rows_scaling.py [--repeats 3] [--sizes 10000 100000 1000000]

Each measurement runs in a fresh child process that generates a seeded reference and batch (25 numeric
and 5 categorical features, an id, a target and the champion's prediction; the batch carries the drift
test set below), returns freed memory to the OS, then runs one stage while a thread samples the process's
resident memory every 2 ms. Memory is reported as the peak growth during the stage divided by the two
DataFrames' own size (pandas deep memory usage). Stages:

- steward validate: `quality.validate_frame` on every row (aggregate expectations, ADR 0010);
- steward drift: `drift.detect_drift` on the seeded sample (`drift.sample_rows`, 100,000 by default) of
  the batch against the reference profile (the reference's sample, built once per reference version and
  timed separately as "reference profile (once)");
- naive GX: the same rules as per-row expectations (the suite steward ran before ADR 0010);
- naive Evidently: DataDriftPreset on every row of both frames (once per size: two minutes at 1M).

Drift test set: the batch's features shift by known amounts (mean shifts from 0 to 1 standard deviation,
scale changes, category re-weightings, a null-share jump that drift cannot see), so the full computation's
per-feature scores spread across the threshold. At the largest size the sampled verdicts are compared
with the full computation's, for several sampling seeds.
Prints medians and rewrites the "rows" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from docs_section import save_plot, write_section

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS, TARGET_MEMORY = 15.0, 3.0
CATEGORIES = ["a", "b", "c", "d", "e"]
BASE_WEIGHTS = [0.4, 0.25, 0.15, 0.1, 0.1]
# feature -> (kind, amount): mean shift in reference standard deviations, scale factor, or category weights
MEAN_SHIFTS = [0, 0, 0, 0, 0, 0.02, 0.04, 0.05, 0.06, 0.07, 0.08, 0.13, 0.14, 0.15, 0.2, 0.3, 0.5, 1.0]
SCALES = [1.05, 1.1, 1.3, 1.6, 2.0]
CATEGORY_SHIFTS = [BASE_WEIGHTS, [0.38, 0.26, 0.16, 0.1, 0.1], [0.3, 0.3, 0.2, 0.1, 0.1],
                   [0.2, 0.2, 0.2, 0.2, 0.2], [0.1, 0.1, 0.1, 0.3, 0.4]]
NULL_JUMP_FEATURE = "x24"  # 30% missing in the batch, none in the reference: invisible to drift, caught by quality


def feature_names() -> tuple[list[str], list[str]]:
    numeric = [f"x{i:02d}" for i in range(len(MEAN_SHIFTS) + len(SCALES) + 2)]
    return numeric, [f"c{j}" for j in range(len(CATEGORY_SHIFTS))]


def frames(rows: int) -> tuple[Any, Any]:
    """(reference, batch) with the champion's prediction column; the batch carries the test set."""
    import numpy as np
    import pandas as pd

    numeric, categorical = feature_names()
    out = []
    for side in ("reference", "batch"):
        rng = np.random.default_rng(1 if side == "reference" else 2)
        cols: dict[str, Any] = {"row_id": np.arange(rows, dtype=np.int64)}
        for i, name in enumerate(numeric):
            mean, scale = 50.0, 10.0
            if side == "batch" and i < len(MEAN_SHIFTS):
                mean += MEAN_SHIFTS[i] * scale
            elif side == "batch" and i < len(MEAN_SHIFTS) + len(SCALES):
                scale *= SCALES[i - len(MEAN_SHIFTS)]
            cols[name] = rng.normal(mean, scale, rows)
        for j, name in enumerate(categorical):
            weights = CATEGORY_SHIFTS[j] if side == "batch" else BASE_WEIGHTS
            cols[name] = rng.choice(np.array(CATEGORIES, dtype=object), rows, p=weights)
        frame = pd.DataFrame(cols)
        if side == "batch":
            frame.loc[rng.random(rows) < 0.3, NULL_JUMP_FEATURE] = np.nan
        frame["prediction"] = 1 / (1 + np.exp(-(frame["x15"].fillna(50) - 50) / 10))
        frame["target"] = (rng.random(rows) < frame["prediction"]).astype(np.int64)
        out.append(frame)
    return out[0], out[1]


def engagement(rows: int) -> Any:
    """A binary-classification engagement over the 30 features, its quality rules bounded from the reference."""
    import yaml

    from steward.config import Engagement

    doc = yaml.safe_load((ROOT / "include" / "engagements" / "churn_telco.yaml").read_text())
    numeric, categorical = feature_names()
    columns: dict[str, Any] = {"row_id": {"not_null": True, "unique": True}}
    for name in numeric:
        columns[name] = {"min": -1000, "max": 1000, "max_null_share": 0.01}
    for name in categorical:
        columns[name] = {"not_null": True, "allowed_values": CATEGORIES}
    doc.update(id="rows_bench", id_column="row_id", target="target",
               features={**dict.fromkeys(numeric, "numeric"), **dict.fromkeys(categorical, "categorical")},
               quality={"row_count": {"min": 1, "max": 10 * rows}, "columns": columns},
               drift={"stattest": "wasserstein", "threshold": 0.1, "drift_share": 0.5})
    doc["governance"]["sensitive_attributes"] = ["c0"]
    return Engagement.model_validate(doc)


# --- child: one stage, measured ------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Peak resident memory while the block runs, sampled every 2 ms by a thread."""

    def __enter__(self) -> PeakRss:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give back what generating the data freed
        self.before = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def child(rows: int, stage: str, repeats: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "include"))
    import great_expectations as gx

    from steward.checks import quality
    from steward.monitoring import drift
    from steward.sources import sampling

    eng = engagement(rows)
    reference, batch = frames(rows)
    frames_bytes = int(reference.memory_usage(deep=True).sum() + batch.memory_usage(deep=True).sum())
    out_dir = Path(tempfile.mkdtemp(prefix="steward-bench-rows-"))
    batch_cols = [c for c in batch.columns if c != "prediction"]
    seeds = [sampling.seed_for("bench", rows, k) for k in range(repeats)]
    profile = sampling.uniform(reference, eng.drift.sample_rows, sampling.seed_for("reference", rows))

    def naive_gx() -> Any:
        context = gx.get_context(mode="ephemeral")
        asset = context.data_sources.add_pandas("naive").add_dataframe_asset("batch")
        suite = gx.ExpectationSuite(name="naive")
        for expectation in quality.row_level_expectations(eng):
            suite.add_expectation(expectation)
        batch_gx = asset.add_batch_definition_whole_dataframe("all").get_batch(
            batch_parameters={"dataframe": batch[batch_cols]})
        return batch_gx.validate(suite, result_format="SUMMARY").success

    def steward_drift(k: int) -> Any:
        current = sampling.uniform(batch, eng.drift.sample_rows, seeds[k])
        return drift.detect_drift(eng, profile, current, out_dir / str(k))

    work = {
        "validate": lambda k: quality.validate_frame(eng, batch[batch_cols]),
        "profile": lambda k: sampling.uniform(reference, eng.drift.sample_rows, seeds[k]),
        "drift": steward_drift,
        "naive_gx": lambda k: naive_gx(),
        "naive_evidently": lambda k: preset_drift(eng, reference, batch),
    }[stage]
    if stage in ("validate", "naive_gx"):  # first calls pay for lazy imports and registries: not the stage's cost
        quality.validate_frame(eng, batch[batch_cols].head(1000))
    if stage in ("drift", "naive_evidently"):
        drift.detect_drift(eng, reference.head(1000), batch.head(1000), out_dir / "warm-up")
    runs, verdicts = [], []
    for k in range(repeats):
        with PeakRss() as mem:
            t0 = time.perf_counter()
            result = work(k)
            seconds = time.perf_counter() - t0
        runs.append({"seconds": seconds, "peak_growth": mem.peak - mem.before, "peak_rss": mem.peak})
        if stage in ("drift", "naive_evidently"):  # each sampled repeat draws with its own seed
            verdicts.append({name: [e["score"], e["drifted"]] for name, e in result["features"].items()})
        del result
    record: dict[str, Any] = {"rows": rows, "stage": stage, "frames_bytes": frames_bytes, "runs": runs,
                              "verdicts": verdicts}
    if stage == "validate":
        found = quality.validate_frame(eng, batch[batch_cols])
        record["failed"] = sorted(f"{c['expectation']}({c['column']})" for c in found["failed"])
    return record


def preset_drift(eng: Any, reference: Any, batch: Any) -> dict[str, Any]:
    """The naive way: Evidently's DataDriftPreset on every row; its per-column scores are the full computation."""
    from evidently import Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    from steward.monitoring import drift

    definition = drift._drift_definition(eng, with_prediction=True)
    cols = [eng.id_column, *eng.features, drift.PREDICTION]
    snapshot = Report([DataDriftPreset(columns=list(eng.features), num_method="wasserstein", cat_method="jensenshannon",
                                       threshold=eng.drift.threshold, drift_share=eng.drift.drift_share),
                       ValueDrift(column=drift.PREDICTION, method="wasserstein", threshold=eng.drift.threshold)]).run(
        current_data=Dataset.from_pandas(batch[cols], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[cols], data_definition=definition))
    features = {}
    for m in snapshot.dict()["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith(":ValueDrift") and cfg["column"] != drift.PREDICTION:
            score = float(m["value"])
            features[cfg["column"]] = {"score": score, "drifted": score >= eng.drift.threshold}
    return {"features": features}


# --- parent: run children, summarise, write docs -------------------------------------------------


def measure(rows: int, stage: str, repeats: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", str(rows), stage, str(repeats)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{stage} at {rows} rows failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rows, stage, repeats = args.child
        print(json.dumps(child(int(rows), stage, int(repeats))))
        return
    results: dict[tuple[int, str], dict[str, Any]] = {}
    for rows in args.sizes:
        for stage, repeats in (("validate", args.repeats), ("profile", args.repeats), ("drift", args.repeats),
                               ("naive_gx", 1), ("naive_evidently", 1)):
            t0 = time.perf_counter()
            results[rows, stage] = measure(rows, stage, repeats)
            print(f"{rows:>9,} rows  {stage:<16} median {median(results[rows, stage]):7.2f} s  "
                  f"peak +{peak_ratio(results[rows, stage]):.2f}x frames  ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
    write_docs(results, max(args.sizes), args.repeats)


def median(record: dict[str, Any]) -> float:
    return statistics.median(r["seconds"] for r in record["runs"])


def peak_ratio(record: dict[str, Any]) -> float:
    return max(r["peak_growth"] for r in record["runs"]) / record["frames_bytes"]


def designed_shift(feature: str) -> str:
    numeric, categorical = feature_names()
    if feature == NULL_JUMP_FEATURE:
        return "30% missing"
    if feature in categorical:
        weights = CATEGORY_SHIFTS[categorical.index(feature)]
        return "same weights" if weights == BASE_WEIGHTS else "weights " + "/".join(f"{w:g}" for w in weights)
    i = numeric.index(feature)
    if i < len(MEAN_SHIFTS):
        return f"mean +{MEAN_SHIFTS[i]:g} sd"
    return f"sd x{SCALES[i - len(MEAN_SHIFTS)]:g}" if i < len(MEAN_SHIFTS) + len(SCALES) else "none"


def write_docs(results: dict[tuple[int, str], dict[str, Any]], largest: int, repeats: int) -> None:
    sizes = sorted({rows for rows, _ in results})
    lines = ["| rows per side | both frames | steward validate | steward drift (nightly) | validate + drift | "
             "reference sample (once) | naive GX (per-row suite) | naive Evidently (DataDriftPreset, every row) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for rows in sizes:
        r = {stage: results[rows, stage] for _, stage in results if _ == rows}
        total = median(r["validate"]) + median(r["drift"])
        lines.append(f"| {rows:,} | {r['validate']['frames_bytes'] / 1e6:,.0f} MB | {median(r['validate']):.2f} s "
                     f"(+{peak_ratio(r['validate']):.2f}x) | {median(r['drift']):.2f} s (+{peak_ratio(r['drift']):.2f}x) | "
                     f"**{total:.2f} s** | {median(r['profile']):.2f} s | {median(r['naive_gx']):.2f} s "
                     f"(+{peak_ratio(r['naive_gx']):.2f}x) | {median(r['naive_evidently']):.1f} s "
                     f"(+{peak_ratio(r['naive_evidently']):.2f}x) |")
    top = {stage: results[largest, stage] for rows, stage in results if rows == largest}
    total = median(top["validate"]) + median(top["drift"])
    memory = max(peak_ratio(top["validate"]), peak_ratio(top["drift"]))
    full = top["naive_evidently"]["verdicts"][0]
    sampled = top["drift"]["verdicts"]
    agree = sum(s[f][1] == full[f][1] for s in sampled for f in full)
    errors = [abs(s[f][0] - full[f][0]) for s in sampled for f in full]
    numeric_errors = [abs(s[f][0] - full[f][0]) for s in sampled for f in full if f.startswith("x")]
    categorical_errors = [abs(s[f][0] - full[f][0]) for s in sampled for f in full if f.startswith("c")]
    threshold = 0.1
    verdict_rows = ["| feature | designed change | full score (every row) | sampled scores | full verdict | sampled agree |",
                    "|---|---|---:|---:|---|---:|"]
    for f in full:
        scores = [s[f][0] for s in sampled]
        same = sum(s[f][1] == full[f][1] for s in sampled)
        verdict_rows.append(f"| {f} | {designed_shift(f)} | {full[f][0]:.4f} | {min(scores):.4f} - {max(scores):.4f} | "
                            f"{'drift' if full[f][1] else 'no drift'} | {same}/{len(sampled)} |")
    closest = min(abs(full[f][0] - threshold) for f in full)
    failed = ", ".join(top["validate"]["failed"]) or "none"
    met_time = "MET" if total < TARGET_SECONDS else "MISSED"
    met_memory = "MET" if memory < TARGET_MEMORY else "MISSED"
    body = f"""## Validation and drift vs rows (30 features)

`bench/rows_scaling.py`: a seeded reference and batch of 25 numeric + 5 categorical features (plus id,
target, prediction) at each size, the batch carrying the drift test set below; each stage in a fresh
process, median of {repeats} repeats (naive baselines: one run); memory is the peak growth of resident
memory during the stage, as a multiple of the two DataFrames' own size. 2-core machine.

Target at {largest:,} rows against a {largest:,}-row reference: validation + drift under {TARGET_SECONDS:g} s
and under {TARGET_MEMORY:g}x the frames' memory.

- validation + drift: **{total:.2f} s** ({met_time}); naive: {median(top['naive_gx']) + median(top['naive_evidently']):.0f} s
- peak memory growth: **{memory:.2f}x** the two frames ({met_memory}); the frames themselves are
  {top['validate']['frames_bytes'] / 1e6:,.0f} MB
- drift verdicts, sampled vs every row: **{agree} of {len(errors)} agree** ({len(full)} features x {len(sampled)} sampling seeds);
  largest score difference {max(errors):.4f} (numeric, normalised Wasserstein: {max(numeric_errors):.4f};
  categorical, Jensen-Shannon: {max(categorical_errors):.4f}); the test set's closest full score to the
  threshold {threshold} is {closest:.4f} away
- validation found, on every row: {failed} (the 30% null-share jump that drift cannot see)

{chr(10).join(lines)}

How (ADR 0010): validation reads every row but asks Great Expectations for one aggregate per rule (min,
max, non-null share, distinct values, unique share) and runs a rule's per-row expectation only when the
aggregate fails, to count and show the offending rows; drift runs one Evidently ValueDrift per column
(DataDriftPreset computes each column's test three times) on a uniform sample of at most
`drift.sample_rows` (default 100,000) rows per side, seeded from the engagement, the night and the batch's
sha256, against a reference sample scored once per reference file and champion version.

What was traded: drift scores on large batches are estimates. In this test set ({len(errors)} comparisons)
the sampled score was never further than {max(errors):.3f} from the full one, so a feature whose full-data
score lies a few times that from its threshold gets the same verdict; one closer may flip either way. The
audit record says when a sample was used (rows, sampled rows, seed) and reruns draw the same rows. Tests with a p-value (ks, chisquare, z) get the power of the sample, not of the full data: at
100,000 rows per side a two-sample KS test at alpha 0.05 detects a largest CDF gap of
1.36 x sqrt(2/100000) = 0.006, where a million rows would detect 0.002. The HTML drift report shows
one panel per column instead of DataDriftPreset's summary table. Validation gives up nothing: every row
is checked, and a failed rule still reports its count and examples.

Drift test set at {largest:,} rows:

{chr(10).join(verdict_rows)}
"""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for stage, label in (("validate", "steward validate"), ("drift", "steward drift"),
                         ("naive_gx", "naive GX per-row suite"), ("naive_evidently", "naive DataDriftPreset")):
        left.plot(sizes, [median(results[rows, stage]) for rows in sizes], marker="o", label=label)
    left.plot(sizes, [median(results[rows, "validate"]) + median(results[rows, "drift"]) for rows in sizes],
              marker="s", color="black", label="steward validate + drift")
    left.axhline(TARGET_SECONDS, color="red", linestyle="--", label=f"target {TARGET_SECONDS:g} s at 1M")
    left.set(xscale="log", yscale="log", xlabel="rows per side (30 features)", ylabel="seconds (median)",
             title="Wall time vs rows")
    left.legend(fontsize=7)
    xs = [full[f][0] for s in sampled for f in full]
    ys = [s[f][0] for s in sampled for f in full]
    right.scatter(xs, ys, s=12)
    right.plot([0, max(xs)], [0, max(xs)], color="grey", linewidth=0.8)
    right.axvline(threshold, color="red", linestyle="--", linewidth=0.8)
    right.axhline(threshold, color="red", linestyle="--", linewidth=0.8)
    right.set(xscale="symlog", yscale="symlog", xlabel="score on every row", ylabel="score on the sample",
              title=f"Drift scores at {largest:,} rows: sample vs full ({len(sampled)} seeds)")
    right.set_xscale("symlog", linthresh=0.01)
    right.set_yscale("symlog", linthresh=0.01)
    right.set_xlim(0, 1.2 * max(xs))
    right.set_ylim(0, 1.2 * max(ys))
    body += "\n" + save_plot(fig, "rows_scaling") + "\n"
    write_section("rows", body)
    print(body)


if __name__ == "__main__":
    main()
