"""How fast is this machine right now? A fixed piece of pure-Python work, timed in CPU seconds.

The test suite's wall time on the 2-core machine moved by up to 45 % for the same code between sessions, and by
8 to 15 % within an hour (ADR 0018 points 12 and 14): the virtual machine's own speed changes. Timings in the
docs carry this number, measured on an idle machine just before the run, so that a slower suite can be told
from a slower machine. Standard library only; about two seconds. On an idle machine one reading moved between
0.244 and 0.281 within half an hour (2026-12-06): a rough guide to the machine's state, not a correction factor.

    python bench/machine_speed.py
"""

from __future__ import annotations

import time


def _work() -> int:
    """Dict updates, integer arithmetic and a sort of strings: the interpreter's everyday work, no I/O."""
    counts: dict[int, int] = {}
    for i in range(2_000_000):
        counts[i % 1000] = counts.get(i % 1000, 0) + i * 3 // 7
    return len(sorted(str(x) for x in range(300_000))) + len(counts)


def measure(repeats: int = 5) -> float:
    """The fastest of `repeats` runs, in CPU seconds of this process."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        _work()
        best = min(best, time.process_time() - start)
    return best


if __name__ == "__main__":
    print(f"machine speed: {measure():.3f} CPU-s for the fixed work at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
          " (lower is faster)")
