"""The optional model layers' shared life: loaded on first use, once per process, from any thread.

A model that cannot load (a missing package, a broken file) makes its layer unavailable, with the
reason in ``error``, instead of taking the bot down: the list layer never depends on one.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod


class LazyModel(ABC):
    """Subclasses load in ``_load`` and say in ``_loaded`` whether they have; ``_lock`` also guards
    their own use of a model that is not thread-safe."""

    unavailable = "moderation layer unavailable"  # the log line's words when loading fails

    def __init__(self, *, available: bool, missing: str) -> None:
        self._lock = threading.Lock()
        self.available = available
        self.error: str | None = None if available else missing

    def load(self) -> bool:
        """Load the model once; False (and ``error`` set) when it can't be."""
        if self._loaded() or not self.available:
            return self._loaded()
        with self._lock:
            if not self._loaded():
                try:
                    self._load()
                except Exception as exc:  # degrade to the other layers, never crash the caller
                    self.available = False
                    self.error = f"{type(exc).__name__}: {exc}"
                    logging.getLogger(type(self).__module__).warning("%s: %s", self.unavailable, self.error)
                    return False
        return True

    @abstractmethod
    def _loaded(self) -> bool:
        """Whether the model is in memory."""

    @abstractmethod
    def _load(self) -> None:
        """Load the model (called once, under the lock); raise when it can't be."""
