"""Evidently's categorical drift scores, the same in every process.

Evidently (0.7) lists a categorical column's values from a Python set (`stattests/utils.py`,
`get_unique_not_nan_values_list_from_series`, and the Hellinger distance's own), so Jensen-Shannon, PSI, KL,
chi-square, G, TVD, Z and Hellinger sum over the categories in an order set by the process's string-hash seed. The
same night computed in another process (a scheduler retry, a backfill, the CLI) therefore recorded scores that
differed from the 15th digit on: `payment_method`'s Jensen-Shannon distance was 0.0037007070908443265, ...443157 and
...40518 under hash seeds 1, 2 and 3 (2026-12-06). Those two modules now see a set that iterates in a fixed order, so
each sum runs in the same order everywhere and a rerun records the same digits (ADR 0039).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

# The modules whose functions build a set of category values and sum over it (their global name `set` is replaced;
# Python's own `set` is untouched everywhere else).
MODULES = (
    "evidently.legacy.calculations.stattests.utils",
    "evidently.legacy.calculations.stattests.hellinger_distance",
)


def _order(value: Any) -> tuple[str, str]:
    """A total order on any mix of category values (text, numbers, booleans): by type name, then by text."""
    return type(value).__name__, str(value)


class OrderedIterationSet(set):
    """A set that iterates in `_order`, whatever the hash seed. A union stays one: Evidently builds its categories as
    `set(reference) | set(current)`, and a plain set's `|` would hand back a plain set."""

    def __iter__(self) -> Iterator[Any]:
        return iter(sorted(super().__iter__(), key=_order))

    def __or__(self, other: Any) -> OrderedIterationSet:
        return OrderedIterationSet(set.__or__(self, other))

    __ror__ = __or__

    def union(self, *others: Any) -> OrderedIterationSet:
        return OrderedIterationSet(set.union(self, *others))


def install() -> None:
    """Give the MODULES the ordered set (idempotent; cheap enough to call before every report)."""
    for name in MODULES:
        module = importlib.import_module(name)
        if module.__dict__.get("set") is not OrderedIterationSet:
            module.set = OrderedIterationSet  # type: ignore[attr-defined]
