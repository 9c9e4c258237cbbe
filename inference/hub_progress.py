"""Download progress: who hears about it (the thread's listeners) and the log lines that show it.

The device worker registers a listener around each job (`reporting`); a download on that thread then
reaches the job's message, and every download logs percent and MB/s. No torch, no hub client import.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

LOG_EVERY = 5.0  # seconds between two progress log lines of one download
REPORT_EVERY = 0.5  # seconds between two progress events to listeners


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    model: str
    done: int
    total: int
    rate: float  # bytes a second since the download started

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 100.0

    def describe(self) -> str:
        return loading_text(self.model, self.done, self.total)


def loading_text(model: str, done: int, total: int) -> str:
    """'Loading sdxl for the first time: 2.1 / 6.9 GB', the member's queue message and the CLI's line."""
    return f"Loading {model} for the first time: {done / 1e9:.1f} / {total / 1e9:.1f} GB"


Listener = Callable[[DownloadProgress], None]
local = threading.local()


@contextlib.contextmanager
def reporting(listener: Listener) -> Iterator[None]:
    """Send this thread's download progress to ``listener`` while the block runs (the device worker wraps
    each job in it, so a load that downloads reaches that job's message)."""
    stack: list[Listener] = getattr(local, "listeners", None) or []
    local.listeners = [*stack, listener]
    try:
        yield
    finally:
        local.listeners = stack


class Tracker:
    """Bytes received for one model: log lines every LOG_EVERY s, listener events every REPORT_EVERY s."""

    def __init__(self, model: str, total: int, done: int = 0) -> None:
        self.model = model
        self.total = total
        self.done = done
        self.listeners: list[Listener] = list(getattr(local, "listeners", None) or [])
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._base = done
        self._logged = self._reported = float("-inf")

    def snapshot(self) -> DownloadProgress:
        elapsed = max(time.monotonic() - self._start, 1e-6)
        return DownloadProgress(self.model, min(self.done, self.total), self.total, (self.done - self._base) / elapsed)

    def add(self, count: int, *, final: bool = False) -> None:
        with self._lock:
            self.done += count
            now = time.monotonic()
            report = final or now - self._reported >= REPORT_EVERY
            if report:
                self._reported = now
            logged = final or now - self._logged >= LOG_EVERY
            if logged:
                self._logged = now
            event = self.snapshot()
        if logged:
            log.info("downloading %s: %.0f%% (%.2f / %.2f GB) at %.1f MB/s", self.model, event.percent,
                     event.done / 1e9, event.total / 1e9, event.rate / 1e6)
        if report:
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:  # a listener's fault must not break the download
                    log.exception("download progress listener failed")

    def bar_class(self) -> type:
        """A tqdm class for the hub client that feeds this tracker and draws nothing."""
        from tqdm.auto import tqdm

        tracker = self

        class _Bar(tqdm):  # type: ignore[misc, type-arg]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)

            def update(self, n: float | None = 1) -> bool | None:
                tracker.add(int(n or 0))
                return None

        return _Bar
