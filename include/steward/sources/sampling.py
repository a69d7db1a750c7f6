"""Seeded uniform row samples, so drift on a million-row batch costs what it costs on 100,000 (ADR 0010).

The seed comes from what is sampled (engagement, night, file digest), never from the clock: a rerun or a
backfill draws exactly the same rows and reaches the same verdicts.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def seed_for(*parts: Any) -> int:
    """A 32-bit seed derived from the parts (stable across processes and machines)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return int(digest[:8], 16)


def uniform(frame: pd.DataFrame, rows: int | None, seed: int) -> pd.DataFrame:
    """`rows` rows drawn uniformly without replacement, in their original order; all rows when the frame
    is no larger (or `rows` is None)."""
    import numpy as np

    if rows is None or len(frame) <= rows:
        return frame
    picked = np.sort(np.random.default_rng(seed).choice(len(frame), size=rows, replace=False))
    return frame.iloc[picked].reset_index(drop=True)


def described(total_rows: int, sampled_rows: int, seed: int) -> dict[str, Any]:
    """What goes into the drift result and the audit record about one side of the comparison."""
    return {"rows": total_rows, "sampled_rows": sampled_rows, "sampled": sampled_rows < total_rows, "seed": seed}
