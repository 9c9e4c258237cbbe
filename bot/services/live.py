"""What the job service holds while this process runs jobs, shared by its parts.

The job service is written in layers, each in its own module and each building on the one
before: this state (the ports it talks through, the jobs it is running, its background tasks);
pool_events.py (the inference pool's events -> database -> delivery); recovery.py (start-up
recovery and the periodic sweep); jobs.py (submissions, cancellation, lookups). No discord import:
a `Delivery` (implemented in bot/ui/delivery.py) turns jobs and outputs into Discord messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.acks import AckGate
from bot.services.hooks import Hooks
from db.models import Job, Output
from db.repositories import jobs as jobs_repo
from inference.types import GenerationResult

log = logging.getLogger(__name__)

# What failed on the way (a delivery Discord refused, the recording of a job's end that hit a
# database error) is retried by the sweep; each is given up after this many tries (logged).
MAX_RETRIES = 10


class Delivery(Protocol):
    """Shows a job's life to its member. Implemented over Discord in bot/ui/delivery.py."""

    async def show_queued(self, job: Job, position: int, total: int, eta_seconds: float | None, *,
                          paused: bool = False) -> int | None:
        """Show the queue position (``paused``: the job's server paused its queue); returns the id
        of the job's message when known."""

    async def show_progress(self, job: Job, step: int, total: int) -> None: ...

    # Optional: ``async show_sample(job, step, total, png)``, progress with a preview (a training sample).
    # Optional: ``async show_loading(job, model, done_bytes, total_bytes)``, the job's model downloading
    # for its first use ("Loading sdxl for the first time: 2.1 / 6.9 GB").

    async def deliver(self, job: Job, outputs: list[Output]) -> int | None:
        """Post the result; returns the id of the message that now carries it."""

    async def deliver_failure(self, job: Job, message: str) -> None: ...


class PoolLike(Protocol):
    def wake(self) -> None: ...

    def cancel(self, job_id: int) -> None: ...

    @property
    def size(self) -> int: ...

    @property
    def busy(self) -> int: ...


@dataclass
class LiveJob:
    """A job this process claimed and has not finished recording: its row as claimed, its tasks."""

    job: Job
    last_progress: float = 0.0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    # The job's result or error when recording it failed (a database error): the sweep retries.
    outcome: GenerationResult | BaseException | None = None
    tries: int = 0
    loading_shown: bool = False


class JobState:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, reads: async_sessionmaker[AsyncSession] | None,
                 owner: str, sweep_seconds: float, progress_interval: float, clock: Callable[[], float]) -> None:
        self.sessions = sessions
        # Read-only lookups (never wait behind a writer on SQLite; see db/engine.py).
        self.reads = reads or sessions
        self.progress_interval = progress_interval
        self.delivery: Delivery | None = None
        self.pool: PoolLike | None = None
        # worker name -> the models loaded on its device (the embedded pool's), for the claim's tie-break.
        self.resident: Callable[[str], Collection[str]] | None = None
        # (worker name, queued jobs per model): told before its device loads a model, so making room
        # moves the model the fewest queued jobs want (the embedded pool's note_demand).
        self.demand: Callable[[str, dict[str, int]], None] | None = None
        # Devices of this process allowed to run LoRA training jobs (ATELIER_TRAIN_DEVICES); others never claim them.
        self.train_devices: Collection[str] = ()
        # A running job's newest preview to show with its progress, once each (training samples), or None.
        self.sample_of: Callable[[Job], Awaitable[bytes | None]] | None = None
        # What other features do at fixed points of a job's life (bot/services/hooks.py); bot/client.py wires them.
        self.hooks = Hooks()
        # Scores finished images; returns why they must not be posted, or None (see bot/services/moderation.py).
        self.image_check: Callable[[Job, list[bytes]], Awaitable[str | None]] | None = None
        # Lets pending acknowledgements go first under a burst (bot/services/acks.py); the bot sets it.
        self.acks: AckGate | None = None
        # This process's name among the bot processes sharing the database (Settings.instance): the
        # prefix of its workers' names, so recovery and the heartbeat know which jobs are its own.
        self.owner = owner
        # How often the sweep runs (heartbeat, retries, recovery of stuck jobs); see Recovery.sweep().
        self.sweep_seconds = sweep_seconds
        self._clock = clock
        self._live: dict[int, LiveJob] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._delivering: set[int] = set()
        self._delivery_tries: dict[int, int] = {}
        # Set when a delivery failed: only then does the sweep look for undelivered jobs.
        self._redeliver = False

    async def get_job(self, job_id: int) -> Job | None:
        async with self.reads() as session:
            return await jobs_repo.get_job(session, job_id=job_id)

    def _spawn(self, job_id: int, coro: Awaitable[None]) -> None:
        live = self._live.get(job_id)
        task = self._track(coro)
        if live is not None:
            live.tasks.add(task)
            task.add_done_callback(live.tasks.discard)

    def _track(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background delivery failed", exc_info=task.exception())

    def _forget(self, job_id: int) -> None:
        self._live.pop(job_id, None)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for deliveries in flight (used at shutdown and by tests)."""
        if self._background:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*list(self._background), return_exceptions=True), timeout)


