"""`steward.frame_stack`: calls made with room never map and unmap frame chunks, however their depth moves."""

from __future__ import annotations

import resource
import sys
import threading

import pytest

from steward.frame_stack import call_with_room

ROUNDS = 4_000


def _down(depth: int) -> int:
    return 0 if depth == 0 else _down(depth - 1) + 1


def _up_and_down() -> int:
    """Each round goes 400 frames deep and back: more than one 16 KiB chunk of frames."""
    return sum(_down(400) for _ in range(ROUNDS))


def _page_faults_in_a_new_thread(fn) -> int:
    """Page faults while `fn` runs on a thread of its own: a fresh frame stack (the test itself runs with room,
    tests/conftest.py), counted for that thread only."""
    faults = []

    def measure() -> None:
        fn()  # warm: the code objects' caches
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        fn()
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

    thread = threading.Thread(target=measure)
    thread.start()
    thread.join()
    return faults[0]


@pytest.mark.skipif(sys.implementation.name != "cpython" or not hasattr(resource, "RUSAGE_THREAD"),
                    reason="frame chunks are CPython's; faults per thread are counted on Linux")
def test_calls_with_room_fault_no_page_in_where_plain_calls_fault_every_round():
    plain = _page_faults_in_a_new_thread(_up_and_down)
    with_room = _page_faults_in_a_new_thread(lambda: call_with_room(_up_and_down))
    assert plain >= ROUNDS  # the cost exists: each round maps a fresh chunk and faults its first page in
    assert with_room < ROUNDS / 50


def test_results_and_errors_pass_through_and_depth_beyond_the_room_still_works():
    assert call_with_room(divmod, 17, 5) == (3, 2)
    assert call_with_room(int, "ff", base=16) == 255
    with pytest.raises(ZeroDivisionError):
        call_with_room(divmod, 1, 0)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(30_000)
    try:  # 20,000 frames of _down need more slots than the claimed chunk has left: CPython chains more chunks
        assert call_with_room(_down, 20_000) == 20_000
    finally:
        sys.setrecursionlimit(limit)
