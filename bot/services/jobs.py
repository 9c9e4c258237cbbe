"""JobService: a command's parameters -> hooks (quotas, moderation) -> the database, the queue.

Submissions, rerolls, cancellation and lookups; the pool's events and recovery are the layers it
is built on (bot/services/live.py lists them). The database is the queue, so what the service
accepted survives a restart and is delivered exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import InvalidOption, NotHere, QueueFull, UnknownJob
from bot.params.imagine import ImagineOptions
from bot.services.access import Place, check_cancel
from bot.services.hooks import Origin, Submission, notify
from bot.services.imagine_checks import imagine_params, model_spec, reresolve
from bot.services.inputs import split_inputs
from bot.services.recovery import HEARTBEAT_SECONDS, Recovery
from db import queue as job_queue
from db.models import Job, JobStatus
from db.repositories import access as access_repo
from db.repositories import jobs as jobs_repo
from db.repositories import users as users_repo
from inference.limits import SEED_LIMIT
from inference.models import TEXT_TO_IMAGE_KINDS, ModelRegistry, ModelSpec

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Ticket:
    job: Job
    position: int
    total: int
    eta_seconds: float | None
    # The job's server paused its queue (/admin pause): it starts when its admins resume.
    paused: bool = False


def starts_in(per_job: float | None, position: int, running: int, workers: int) -> float | None:
    """Seconds until the job at 1-based ``position`` in the queue starts, or None before the model
    has a run time: the jobs ahead of it and those running now, shared by ``workers`` devices."""
    if per_job is None:
        return None
    return per_job * (position - 1 + min(running, workers)) / max(workers, 1)


def check_repeatable(job: Job) -> None:
    """A training job is not run again from its result (🔄, Reroll, Rerun): that would train past
    /train's checks (the server's rules, the name, consent), which run at the command only."""
    if job.params.get("task") == "train":
        raise InvalidOption(f"Job #{job.id} trained a LoRA; /train again to train another.")


class JobService(Recovery):
    """The one way a job enters the queue and leaves it by a member's hand; what the pool reports
    and what recovery finishes are the layers below (pool_events.py, recovery.py)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], registry: ModelRegistry, *,
                 progress_interval: float = 1.5, max_queued_per_user: int = 10, max_queue: int = 500,
                 clock: Callable[[], float] = time.monotonic,
                 reads: async_sessionmaker[AsyncSession] | None = None, owner: str = "main",
                 dm_allowed: bool = True, sweep_seconds: float = HEARTBEAT_SECONDS) -> None:
        super().__init__(sessions, reads=reads, owner=owner, sweep_seconds=sweep_seconds,
                         progress_interval=progress_interval, clock=clock)
        self.registry = registry
        self.max_queued_per_user = max_queued_per_user
        self.max_queue = max_queue
        # Whether jobs may be made in direct messages (ATELIER_DM): a DM has no server, so no
        # server's moderators, bans or allowances watch it.
        self.dm_allowed = dm_allowed
        # The owner's wildcard and embedding folders (settings), for rerolls of dynamic prompts.
        self.prompt_folders: tuple[Path | None, Path | None] = (None, None)

    # ----- validation (fast: runs before the interaction is deferred; bot/services/imagine_checks.py) -----

    def prepare_imagine(self, options: ImagineOptions) -> dict[str, Any]:
        """Check every option against the model's limits; return request parameters (no job id)."""
        return imagine_params(self.registry, options)

    def model_spec(self, name: str | None, *, kinds: tuple[str, ...] = TEXT_TO_IMAGE_KINDS) -> ModelSpec:
        """The named model (or the default) among those of `kinds`; the error lists only those."""
        return model_spec(self.registry, name, kinds=kinds)

    # ----- submission -----

    async def precheck(self, params: dict[str, Any], origin: Origin, *, budget: float = 0.3) -> None:
        """Fast read-only checks (e.g. quota) a command runs before it acknowledges, so refusals stay private.

        Bounded by `budget` seconds: under a burst the acknowledgement matters more, and the same
        rules are enforced again, atomically, when the job is submitted."""
        self.check_place(origin)
        if not self.hooks.before_acknowledge:
            return
        try:
            async with asyncio.timeout(budget):
                for check in self.hooks.before_acknowledge:
                    await check(params, origin)
        except TimeoutError:
            log.info("pre-acknowledgement checks took over %.1f s; they run again at submission", budget)

    def check_place(self, origin: Origin) -> None:
        """Refuse work where this bot does none: direct messages when ATELIER_DM is off."""
        if origin.guild_id is None and not self.dm_allowed:
            raise NotHere("This bot creates images in servers only, not in direct messages. "
                          "Use the command in a server you share with it.")

    async def submit(self, *, command: str, params: dict[str, Any], origin: Origin,
                     parent_job_id: int | None = None) -> Ticket:
        self.check_place(origin)
        # Acknowledgements first (bot/services/acks.py), unless the devices have nothing to do: then this job
        # is stored and started at once rather than after a burst's other commands are answered.
        if self.acks is not None and (self.pool is None or self.pool.busy > 0):
            await self.acks.quiet()
        submission = Submission(params, origin)
        for screen in self.hooks.screen:  # slow checks (moderation's models) before the write lock
            submission = await screen(submission)
        params, new_inputs, copied_inputs = await split_inputs(submission.params)
        async with self.sessions.begin() as session:
            await users_repo.ensure_user(session, user_id=origin.user_id, name=origin.user_name)
            mine, everyone = await jobs_repo.active_counts(session, user_id=origin.user_id)
            if mine >= self.max_queued_per_user:
                raise QueueFull(f"You already have {mine} jobs waiting; the limit is {self.max_queued_per_user}. "
                                "Wait for one to finish or cancel one.")
            if everyone >= self.max_queue:
                raise QueueFull(f"The queue is full ({everyone} jobs). Try again in a few minutes.")
            # Whether a result is private follows who asks now (their /settings), not the job it was made from.
            params = {**{k: v for k, v in params.items() if k != "private"}, "nsfw_channel": origin.nsfw_channel,
                      **({"private": True} if origin.private else {})}
            job = await jobs_repo.create_job(session, job=Job(
                command=command, user_id=origin.user_id, guild_id=origin.guild_id, channel_id=origin.channel_id,
                application_id=origin.application_id, interaction_token=origin.interaction_token,
                interaction_at=origin.interaction_at, upload_limit=origin.upload_limit,
                message_id=origin.message_id, parent_job_id=parent_job_id, model=params["model"], prompt=params["prompt"],
                seed=params["seed"], params=params,
            ))
            if new_inputs or copied_inputs:
                refs = await jobs_repo.add_inputs(session, job_id=job.id, inputs=new_inputs) if new_inputs else {}
                if copied_inputs:
                    refs = await jobs_repo.copy_inputs(session, job_id=job.id, refs=copied_inputs)
                job.params = {**job.params, "inputs": refs}
            for before_submit in self.hooks.before_submit:
                await before_submit(session, job, submission)
        # Read after the commit: in a burst of commands the next member's submission need not wait
        # for this one's place in line to be worked out. The worker is woken after it, so the place
        # is one in the queue, not a job already running.
        async with self.reads() as session:
            position, total = await job_queue.queue_position(session, job=job)
            per_job, running = await jobs_repo.run_times(session, model=job.model)
            paused = await access_repo.is_paused(session, guild_id=job.guild_id)
        if self.pool is not None:
            self.pool.wake()
        eta = None if paused else starts_in(per_job, position, running, self.workers)
        return Ticket(job, position, total, eta, paused)

    @property
    def workers(self) -> int:
        """Devices taking this process's jobs (at least one, for estimates)."""
        return max(self.pool.size if self.pool is not None else 1, 1)

    async def reroll(self, *, job_id: int, origin: Origin) -> Ticket:
        """Run a finished job again with a new seed, charged to whoever asked."""
        async with self.reads() as session:
            parent = await jobs_repo.get_job(session, job_id=job_id)
        if parent is None:
            raise UnknownJob(f"Job #{job_id} no longer exists (it may have been deleted).")
        check_repeatable(parent)
        params = dict(parent.params)
        params["seed"] = secrets.randbelow(SEED_LIMIT)
        if params["model"] not in self.registry.names():
            raise InvalidOption(f"The model {params['model']!r} of job #{job_id} is no longer installed.")
        if params.get("prompt_template"):  # {a|b} and __wildcards__: the new seed picks again (files: off the loop)
            params = await asyncio.to_thread(reresolve, params, *self.prompt_folders)
        return await self.submit(command=parent.command, params=params, origin=origin, parent_job_id=parent.id)

    async def pause_guild(self, guild_id: int, *, by: int | None = None) -> bool:
        """Hold the server's queued jobs (running ones finish); other servers' jobs go on. False if
        it was paused already. Stored, so every process sharing the database honours it."""
        async with self.sessions.begin() as session:
            return await access_repo.pause_guild(session, guild_id=guild_id, by=by)

    async def resume_guild(self, guild_id: int) -> bool:
        """Let the server's queued jobs start again; False if it was not paused."""
        async with self.sessions.begin() as session:
            resumed = await access_repo.resume_guild(session, guild_id=guild_id)
        if resumed and self.pool is not None:
            self.pool.wake()
        return resumed

    async def guild_paused(self, guild_id: int | None) -> bool:
        async with self.reads() as session:
            return await access_repo.is_paused(session, guild_id=guild_id)

    async def job_for_message(self, message_id: int) -> Job | None:
        async with self.reads() as session:
            return await jobs_repo.get_job_by_message(session, message_id=message_id)

    async def attach_message(self, job_id: int, message_id: int, channel_id: int | None = None) -> None:
        async with self.sessions.begin() as session:
            await jobs_repo.set_message(session, job_id=job_id, message_id=message_id, channel_id=channel_id)

    async def cancel(self, *, job_id: int, user_id: int, is_admin: bool = False, guild_id: int | None = None) -> str:
        """Cancel a job for its owner, or for a moderator (``is_admin``: Manage Server in
        ``guild_id``) of the server it was made in; another server's moderator gets NotYours."""
        async with self.sessions.begin() as session:
            job = await jobs_repo.get_job(session, job_id=job_id)
            if job is None:
                raise UnknownJob(f"There is no job #{job_id}.")
            check_cancel(job, Place(user_id, guild_id, manages_guild=is_admin))
            previous = await jobs_repo.cancel_job(session, job_id=job_id)
            if previous == JobStatus.queued:
                await session.refresh(job)
                await notify(self.hooks.on_ended, session, job)
        if previous is None:
            raise InvalidOption(f"Job #{job_id} is already {job.status}.")
        if previous == JobStatus.running and self.pool is not None:
            self.pool.cancel(job_id)
        elif self.delivery is not None:
            await self.delivery.deliver_failure(job, "Canceled before it started.")
        return previous

