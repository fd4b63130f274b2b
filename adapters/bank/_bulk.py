"""Helpers for building a million records in one synchronous call."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk build.

    Parsing a statement or reconciling it allocates a million acyclic records; each
    allocation burst otherwise triggers full collections that walk every record built so
    far, which costs more than the work itself. Reference counting still frees garbage,
    and the collector runs again on exit. Nothing else runs on this thread meanwhile (the
    call is synchronous), and a paused collector that was already paused stays paused.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
