"""The asyncio face of the GPU side: one worker per device, fed from a durable job source.

The pool owns no queue of its own. Jobs live in the database (or Redis, for remote workers) and a
worker asks its `JobSource` for the next one whenever it is idle, so a restart loses nothing and
the order of work is decided in one place (the source).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from inference.types import GenerationRequest, GenerationResult, Progress
from inference.worker import Batching, EngineLike, Worker

log = logging.getLogger(__name__)


class JobSource(Protocol):
    async def claim(self, worker: str) -> GenerationRequest | None:
        """Atomically take the next job for this worker, or None when nothing is queued."""

    # Optional: async def claim_partners(worker, request, room) -> list[GenerationRequest]:
    # other members' next jobs with request's batch_key(), at most `room` images, claimed.

    async def progress(self, event: Progress) -> None: ...

    async def finished(self, result: GenerationResult) -> None: ...

    async def failed(self, job_id: int, error: BaseException) -> None:
        """The job raised (JobCancelled included); the source decides what the member is told."""


def default_devices() -> list[str]:
    """Every CUDA device, else the CPU. Imports torch, so call it off the event loop at start-up."""
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"]


class Pausable:
    """Pause and resume shared by the embedded and the remote pool: queued jobs wait, nothing is lost.

    Subclasses set `self._resume` (an Event, set while running) and define wake()."""

    _resume: asyncio.Event

    def wake(self) -> None:
        raise NotImplementedError

    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()
        self.wake()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()


class InferencePool(Pausable):
    def __init__(self, source: JobSource, engine_factory: Callable[[str], EngineLike], devices: list[str],
                 *, poll_interval: float = 2.0, batch_window: float = 0.05, owner: str = "main",
                 run_timeout: float | None = None) -> None:
        if not devices:
            raise ValueError("the pool needs at least one device")
        self._wake = asyncio.Event()
        self._resume = asyncio.Event()
        self._resume.set()
        self._cancelled: set[int] = set()
        # Compatible jobs share a pipeline call when the source offers partners (claim_partners)
        # and the engine can run them (run_batch, batch_max > 1); see inference/batching.py.
        self.batching = Batching(window=batch_window)
        self.workers = [
            # "<process>/<device>#n": the job rows name the process that runs them (bot/services/recovery.py).
            Worker(f"{owner}/{device}#{n}", device, engine_factory, source, self._wake, self._resume,
                   self._cancelled, poll_interval=poll_interval, batching=self.batching, run_timeout=run_timeout)
            for n, device in enumerate(devices)
        ]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for worker in self.workers:
            self._tasks.append(asyncio.create_task(worker.run_forever(), name=f"atelier-worker-{worker.name}"))
        log.info("inference pool started on %s", ", ".join(w.device for w in self.workers))

    def wake(self) -> None:
        """A job was queued: idle workers look for it at once instead of at the next poll."""
        self.batching.last_submission = time.monotonic()
        self._wake.set()

    def cancel(self, job_id: int) -> None:
        """Ask the runner to stop the job between two denoising steps."""
        self._cancelled.add(job_id)

    @property
    def busy(self) -> int:
        return sum(1 for w in self.workers if w.current is not None)

    @property
    def size(self) -> int:
        return len(self.workers)

    def resident_models(self, worker: str) -> set[str]:
        """The models ready on ``worker``'s device (none before its engine is built)."""
        for candidate in self.workers:
            if candidate.name == worker:
                cache = getattr(candidate.engine, "cache", None)
                on_device = getattr(cache, "on_device", None)
                return set(on_device(candidate.device)) if on_device is not None else set()
        return set()

    def note_demand(self, worker: str, queued: dict[str, int]) -> None:
        """Queued jobs per model, told before ``worker``'s device loads one: when it must make room,
        the model the fewest of them want goes (inference/residency.py)."""
        for candidate in self.workers:
            if candidate.name == worker and (cache := getattr(candidate.engine, "cache", None)) is not None:
                cache.queued = dict(queued)

    def residents(self) -> list[Any]:
        """Every model loaded by this process's engines (one shared cache or one per device), for admins."""
        caches = {id(c): c for w in self.workers if (c := getattr(w.engine, "cache", None)) is not None}
        return [r for cache in caches.values() if hasattr(cache, "residents") for r in cache.residents()]

    async def warmup(self, models: list[str]) -> None:
        await asyncio.gather(*(w.warmup(models) for w in self.workers))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        settling = [task for worker in self.workers for task in worker.settling]
        if settling:  # results already made are stored before the pool goes
            await asyncio.wait(settling, timeout=10)
        self._tasks.clear()
        for worker in self.workers:
            worker.close()
