"""Python's cyclic garbage collector paused over bulk work that builds millions of objects.

A full collection walks every tracked object, and one starts whenever the objects that
outlived the young collections reach a quarter of the old generation. While a phase builds
millions of lists, tuples and dicts that live until it ends, the collector walks the whole
heap again and again and frees nothing: their references form no cycles. In a full_match
run over a million records, full collections took 23 s, 22 of them in two such phases: the
normalisation of the records (7 s, 6 collections) and the asset that decides every pair
(15 s, 11 collections). None of those found any garbage. Reference counting still frees
everything meanwhile. A cycle made while the collector is paused waits for the next
collection after it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside; nested pauses end with the outermost."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
