"""Settling the started process's heap: what exists is frozen, what comes later is not."""

from __future__ import annotations

import gc

from core import heap


def test_settle_freezes_what_exists_and_leaves_new_objects_to_the_collector():
    keep = [object() for _ in range(1000)]
    try:
        frozen = heap.settle()
        assert frozen == gc.get_freeze_count() >= 1000
        later = [[] for _ in range(10)]
        assert gc.get_freeze_count() == frozen, "objects made after settling are not frozen"
        gc.collect()  # a full pass after settling still runs
        assert later and keep
    finally:
        gc.unfreeze()
