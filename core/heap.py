"""The long-lived process's heap, set apart from the garbage collector once started.

A started application holds some 200,000 objects that live as long as it does
(modules, settings, SQLAlchemy's tables, compiled templates, the directory).
CPython's full collection walks all of them: in the public site's read bench
(``bench/public_reads.py``) each full pass stopped the event loop for about
100 ms, every request waiting behind it.  :func:`settle` collects once and
freezes what is left (``gc.freeze``): later full passes walk only what was
made since, the requests' own short-lived objects.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def settle() -> int:
    """Collect, then move every surviving object out of the collector's passes.

    Call it once the process has started serving; returns how many objects
    were frozen.
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("heap settled: %d objects set apart from the garbage collector", frozen)
    return frozen
