"""A folder's files by name, listed again at most every few seconds: the LoRA and embedding folders
(inference/lora.py, inference/embeddings.py) are read on every command's autocomplete and check, and
an owner may drop a file in at any time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path


class ListedFolder:
    """``scan(root)`` (name -> file), kept for ``ttl`` seconds; a name missing from the listing is
    looked for again at once, so a file added a moment ago is found."""

    def __init__(self, root: Path, scan: Callable[[Path], dict[str, Path]], *, ttl: float) -> None:
        self.root = root
        self.ttl = ttl
        self._scan = scan
        self._index: dict[str, Path] = {}
        self._listed_at = float("-inf")
        self._lock = threading.Lock()

    def current(self, *, refresh: bool = False) -> dict[str, Path]:
        with self._lock:
            if refresh or time.monotonic() - self._listed_at > self.ttl:
                self._index = self._scan(self.root)
                self._listed_at = time.monotonic()
            return self._index

    def names(self) -> list[str]:
        """Every name, sorted case-insensitively."""
        return sorted(self.current(), key=str.lower)

    def find(self, name: str) -> Path | None:
        """The file behind ``name``, listing the folder again if it is not (yet) known."""
        return self.current().get(name) or self.current(refresh=True).get(name)
