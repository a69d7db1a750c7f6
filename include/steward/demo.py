"""Seeded generators for the shipped demo engagements: reference data and nightly batches.

Each night follows a documented scenario (see SCENARIOS) so the demo exercises every branch of the
pipeline: stable nights, gradual covariate drift, one corrupt batch, and a sudden concept shift.
Same seed, same bytes: the demo and the tests are reproducible.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DEFAULT_START = dt.date(2026, 3, 1)
DEFAULT_NIGHTS = 16
BATCH_ROWS = 1500
REFERENCE_ROWS = 4000

# Night index (0-based) -> scenario. Anything not listed is "stable".
SCENARIOS: dict[int, str] = {
    4: "gradual_drift",
    5: "corrupt",
    6: "gradual_drift",
    7: "gradual_drift",
    8: "gradual_drift",
    9: "concept_shift",
    10: "concept_shift",
    11: "concept_shift",
    12: "concept_shift",
    13: "concept_shift",
    14: "concept_shift",
    15: "concept_shift",
}
SCENARIO_TEXT = {
    "stable": "same distribution and concept as the reference",
    "gradual_drift": "features shift gradually (covariate drift); the concept is unchanged",
    "corrupt": "broken batch: strings in a numeric column, negative values, missing ids (must be quarantined)",
    "concept_shift": "sudden change in how features relate to the target (performance drops)",
}


# prepaid_churn: labels arrive 3 nights late. A temporary concept shift (a competitor's offer, nights 4-8)
# that reverts on night 9: the pipeline retrains onto the shifted concept when the first bad labels land
# (night 7), and rolls back automatically when labels show the retrained model failing on the reverted
# concept while its predecessor would not (night 12). Night 2 is corrupt: its late labels are set aside.
PREPAID_SCENARIOS: dict[int, str] = {2: "corrupt", 4: "concept_shift", 5: "concept_shift", 6: "concept_shift",
                                     7: "concept_shift", 8: "concept_shift"}
LABEL_DELAY = 3
UNKNOWN_LABEL_IDS = 5  # every label file also carries a few ids that were never served
DUPLICATED_LABELS = 10  # ... and some ids twice: first with the wrong label, then corrected (last one wins)


def scenario_for(night: int, scenarios: dict[int, str] | None = None) -> str:
    return (SCENARIOS if scenarios is None else scenarios).get(night, "stable")


def _drift_level(night: int, scenarios: dict[int, str] | None = None) -> float:
    """0 on stable nights, growing over the drift nights; concept-shift nights keep the last drift."""
    drift_nights = sorted(n for n, s in (SCENARIOS if scenarios is None else scenarios).items() if s == "gradual_drift")
    return float(sum(1 for n in drift_nights if n <= night)) / max(len(drift_nights), 1)


def _onset(level: float, start: float) -> float:
    """Features start drifting at different levels, so drift spreads feature by feature."""
    return max(0.0, (level - start) / (1 - start)) if level > start else 0.0


# --- churn_telco: binary classification ---------------------------------------------------------


def _churn_frame(rng: np.random.Generator, n: int, id_start: int, drift: float, shifted: bool) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    tenure = rng.gamma(2.0, 12.0 + 8.0 * _onset(drift, 0.6), n).clip(0, 119).round(0)
    charges = rng.normal(70 + 25 * drift, 20, n).clip(15, 200).round(2)
    calls = rng.poisson(1.5 + 1.5 * _onset(drift, 0.4), n)
    usage = rng.lognormal(2.5 + 0.3 * _onset(drift, 0.6), 0.5, n).round(2)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n, p=[0.5, 0.3, 0.2])
    payment = rng.choice(["card", "bank_transfer", "electronic_check"], n, p=[0.4, 0.3, 0.3])
    contract_effect = pd.Series(contract).map({"month-to-month": 1.0, "one-year": -0.5, "two-year": -1.5}).to_numpy()
    if not shifted:
        logit = -1.0 + 0.03 * (charges - 70) - 0.06 * (tenure - 24) + 0.5 * (calls - 1.5) + contract_effect
    else:
        # After the shift long-tenure, low-charge customers leave (a competitor's loyalty offer).
        logit = -0.5 - 0.03 * (charges - 70) + 0.06 * (tenure - 24) - 0.3 * (calls - 1.5) - contract_effect
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "customer_id": [f"C{id_start + i:07d}" for i in range(n)],
            "tenure_months": tenure.astype(int),
            "monthly_charges": charges,
            "support_calls": calls.astype(int),
            "data_usage_gb": usage,
            "contract": contract,
            "payment_method": payment,
            "churned": churned,
        }
    )


def _corrupt_churn(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    df = df.copy()
    df["monthly_charges"] = df["monthly_charges"].astype(object)
    idx = rng.choice(len(df), 40, replace=False)
    df.loc[idx, "monthly_charges"] = "N/A"
    df.loc[df.index[:25], "tenure_months"] = -5
    df.loc[df.index[30:60], "customer_id"] = None
    return df


# --- demand_retail: regression -------------------------------------------------------------------


def _demand_frame(rng: np.random.Generator, n: int, id_start: int, drift: float, shifted: bool) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    store = rng.choice(["north", "south", "east", "west"], n)
    temperature = rng.normal(15 + 8 * drift, 7, n).round(1)
    price = rng.normal(10 + 2.5 * _onset(drift, 0.4), 1.5, n).clip(3, 30).round(2)
    competitor = (price + rng.normal(0.5 - 1.0 * _onset(drift, 0.6), 1.0, n)).clip(2, 35).round(2)
    promo = rng.choice(["yes", "no"], n, p=[0.2, 0.8])
    store_base = pd.Series(store).map({"north": 60, "south": 80, "east": 70, "west": 50}).to_numpy()
    promo_on = (promo == "yes").astype(float)
    if not shifted:
        units = store_base + 1.5 * temperature - 6.0 * price + 4.0 * competitor + 25 * promo_on
    else:
        # A new channel: demand no longer follows temperature and promotions stop working.
        units = store_base * 1.6 - 1.5 * temperature - 2.0 * price + 1.0 * competitor - 10 * promo_on
    units = (units + rng.normal(0, 6, n)).clip(0).round(0)
    return pd.DataFrame(
        {
            "sale_id": np.arange(id_start, id_start + n),
            "store": store,
            "temperature_c": temperature,
            "price": price,
            "competitor_price": competitor,
            "promo": promo,
            "units_sold": units.astype(int),
        }
    )


def _corrupt_demand(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    df = df.drop(columns=["competitor_price"]).copy()
    df.loc[df.index[:50], "price"] = -1.0
    df.loc[df.index[100:110], "store"] = "atlantis"
    return df


Generator = Callable[["np.random.Generator", int, int, float, bool], "pd.DataFrame"]


@dataclass(frozen=True)
class DemoSpec:
    frame: Generator
    corrupt: Callable[..., pd.DataFrame]
    seed: int
    target: str
    id_column: str
    scenarios: dict[int, str] = field(default_factory=lambda: SCENARIOS)
    label_delay: int | None = None  # None: the target travels inside each batch
    adoption: tuple[float, float] | None = None  # share of rows the client acts on, first and last night


DEMOS: dict[str, DemoSpec] = {
    "churn_telco": DemoSpec(_churn_frame, _corrupt_churn, 11, "churned", "customer_id", adoption=(0.55, 0.8)),
    "demand_retail": DemoSpec(_demand_frame, _corrupt_demand, 23, "units_sold", "sale_id"),
    "prepaid_churn": DemoSpec(_churn_frame, _corrupt_churn, 37, "churned", "customer_id", PREPAID_SCENARIOS,
                              label_delay=LABEL_DELAY),
}


def night_dates(start: dt.date = DEFAULT_START, nights: int = DEFAULT_NIGHTS) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(nights)]


def generate(
    engagement_id: str,
    data_root: Path,
    start: dt.date = DEFAULT_START,
    nights: int = DEFAULT_NIGHTS,
    batch_rows: int = BATCH_ROWS,
) -> dict[str, str]:
    """Write `<data_root>/<id>/reference.csv` and `<data_root>/<id>/incoming/<date>.csv`.

    Returns the scenario per date. Existing files are left as they are (the generator is
    deterministic, and a landed batch must never change under the pipeline's feet).
    """
    import numpy as np

    spec = DEMOS[engagement_id]
    root = data_root / engagement_id
    (root / "incoming").mkdir(parents=True, exist_ok=True)
    ref_path = root / "reference.csv"
    if not ref_path.exists():
        ref = spec.frame(np.random.default_rng(spec.seed), REFERENCE_ROWS, 0, 0.0, False)
        _write_csv_atomic(ref, ref_path)
    plan: dict[str, str] = {}
    for night, day in enumerate(night_dates(start, nights)):
        scenario = scenario_for(night, spec.scenarios)
        plan[day.isoformat()] = scenario
        path = root / "incoming" / f"{day.isoformat()}.csv"
        rng = np.random.default_rng([spec.seed, night])
        df = spec.frame(rng, batch_rows, 1_000_000 + night * batch_rows, _drift_level(night, spec.scenarios),
                        scenario == "concept_shift")
        if spec.adoption is not None:
            _write_feedback(df, spec, night, nights, root / "feedback" / f"{day.isoformat()}.csv")
        if scenario == "corrupt":
            df = spec.corrupt(df, rng)
        if spec.label_delay is None:
            if not path.exists():
                _write_csv_atomic(df, path)
            continue
        if not path.exists():
            _write_csv_atomic(df.drop(columns=[spec.target]), path)
        arrival = night + spec.label_delay
        label_path = root / "labels" / f"{(start + dt.timedelta(days=arrival)).isoformat()}.csv"
        if arrival < nights and not label_path.exists():
            label_path.parent.mkdir(parents=True, exist_ok=True)
            _write_csv_atomic(_label_file(df, spec, np.random.default_rng([spec.seed, night, 1])), label_path)
    (root / "scenarios.json").write_text(json.dumps(plan, indent=2) + "\n")
    return plan


def _write_feedback(batch: pd.DataFrame, spec: DemoSpec, night: int, nights: int, path: Path) -> None:
    """The client's answer for one prediction date: per served id, whether its team acted on the score
    (adoption grows as the team comes to trust the model)."""
    import numpy as np

    if path.exists():
        return
    assert spec.adoption is not None
    first, last = spec.adoption
    share = first + (last - first) * night / max(nights - 1, 1)
    acted = np.random.default_rng([spec.seed, night, 2]).random(len(batch)) < share
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_csv_atomic(batch[[spec.id_column]].assign(acted=np.where(acted, "yes", "no")), path)


def _label_file(batch: pd.DataFrame, spec: DemoSpec, rng: np.random.Generator) -> pd.DataFrame:
    """The client's label export for one night: the truth per id, plus ids never served and duplicates
    whose first row is wrong and whose last row is right."""
    import pandas as pd

    labels = batch[[spec.id_column, spec.target]].copy()
    unknown = pd.DataFrame({spec.id_column: [f"X{9_000_000 + i}" for i in range(UNKNOWN_LABEL_IDS)],
                            spec.target: rng.integers(0, 2, UNKNOWN_LABEL_IDS)})
    dup_rows = labels.sample(DUPLICATED_LABELS, random_state=int(rng.integers(1 << 30)))
    wrong = dup_rows.assign(**{spec.target: 1 - dup_rows[spec.target]})
    return pd.concat([wrong, labels, unknown], ignore_index=True)


def _write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)
