"""Pausing Python's cyclic garbage collector for a build or a verify.

Both create millions of small acyclic objects (cells, expression nodes, values) that
reference counting frees on its own; the cyclic collector would otherwise rescan all of
them again and again as they accumulate (measured at 300,000 formula cells: building
the plan 2.3 s -> 0.8 s, the engine 4.2 s -> 1.8 s).
"""

import gc
from contextlib import contextmanager


@contextmanager
def paused_gc():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
