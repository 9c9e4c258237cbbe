"""Keep Python's cyclic garbage collector off the objects of loaded models.

A loaded pipeline (and the moderation models) are hundreds of thousands of long-lived Python
objects: modules, parameters, tokenizer tables. Each full collection walks all of them while
holding the GIL, which stalls the event loop and the device worker's kernel launches alike, for
longer the more models are loaded. After a big load the survivors are moved out of the collector's sight
(``gc.freeze``); reference counting still frees them when a model is evicted. Eviction thaws the
frozen set first so cycles among the evicted objects are collected too.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

log = logging.getLogger(__name__)
_lock = threading.Lock()


def settle(reason: str, *, thaw: bool = False) -> None:
    """Collect now, then freeze what survived (``thaw``: unfreeze first, after objects were dropped)."""
    with _lock:
        started = time.perf_counter()
        if thaw:
            gc.unfreeze()
        gc.collect()
        gc.freeze()
        log.debug("heap settled after %s: %d objects frozen in %.0f ms", reason, gc.get_freeze_count(),
                  (time.perf_counter() - started) * 1000)
