"""Strict JSON for everything steward writes: no NaN or infinity in an XCom, a record or a report.

Metrics that cannot be computed are `None` with a reason (steward.models.metrics); this is the net under that
rule. A non-finite float that still reaches a stage result is replaced by null and the place it was
found is listed under `non_finite_replaced`, so the night's record shows it and a test can fail on it.
"""

from __future__ import annotations

import math
from typing import Any

FLAG = "non_finite_replaced"


def scrub(value: Any, where: str = "$", found: list[str] | None = None) -> Any:
    """A copy of `value` with NaN/inf floats (numpy's too) replaced by None; their paths appended to `found`."""
    if isinstance(value, dict):
        return {k: scrub(v, f"{where}.{k}", found) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, f"{where}[{i}]", found) for i, v in enumerate(value)]
    if isinstance(value, float) or type(value).__name__ in {"float64", "float32", "float16"}:
        number = float(value)
        if not math.isfinite(number):
            if found is not None:
                found.append(where)
            return None
        return number
    return value


def flagged(result: Any) -> Any:
    """A stage result with non-finite floats replaced and listed under FLAG (absent when there were none)."""
    found: list[str] = []
    clean = scrub(result, found=found)
    if found and isinstance(clean, dict):
        clean[FLAG] = found
    return clean
