"""Room for deep calls: keep a thread's Python frames in one chunk of memory while it does a night's work.

CPython 3.11 keeps each thread's frames in chunks of 16 KiB. When a call does not fit in the current chunk it
maps a new one, and when the frame at the base of that chunk returns it unmaps it at once. A night's work
(pandas, scikit-learn, MLflow, Evidently, Airflow's task runner) calls up and down across those boundaries
all the time: six churn nights of 1,500 rows in one process made 393,000 mmap/munmap pairs of exactly 16 KiB,
each with its page fault, about an eighth of the CPU (strace and perf, 2026-12-06; ADR 0018 point 11).

`call_with_room(fn, ...)` calls `fn` from a frame whose code object claims a value stack of 1 MiB that it
never uses. CPython cannot fit that frame in a 16 KiB chunk, so it gives it a chunk of its own of 2 MiB
(address space: the pages it never touches are never faulted in), and every call made under it lands in the
free half of that chunk, where nothing is mapped or unmapped however the depth goes up and down. Claiming a
larger stack than a code object needs is safe: the size is an upper bound that CPython reserves, nothing more.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Value-stack slots the calling frame claims (8 bytes each): 1 MiB, so its chunk is 2 MiB and the calls
# under it have about 130,000 slots, far deeper than any night goes (the chunks after it still work if not).
CLAIMED_SLOTS = 1 << 17


def call_with_room(fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
    """`fn(*args, **kwargs)`, with every frame it pushes in one chunk (see the module's docstring)."""
    return fn(*args, **kwargs)


if sys.implementation.name == "cpython" and sys.version_info >= (3, 11):  # the versions with frame chunks
    call_with_room.__code__ = call_with_room.__code__.replace(co_stacksize=CLAIMED_SLOTS)
